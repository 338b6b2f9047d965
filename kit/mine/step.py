"""`kit run`'s mine step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from dataclasses import replace

from ..io import KitError
from ..pipeline import Pipeline, Stage, existing, summary_of
from ..encode.options import scale_options
from .options import MineOptions


def mine_options(p: Pipeline, o: MineOptions) -> MineOptions:
    return o if o.model else replace(o, model=p.model)


def _run_mine(p: Pipeline, o: MineOptions) -> dict:
    """Negatives come from the chunks training may see (split's train_corpus.jsonl), and the leakage check
    runs again on what was mined: no eval passage among the negatives."""
    from ..mine import mine
    from ..split import training_leakage

    summary = summary_of(mine(p.wd.train, p.wd.train_corpus, p.wd.train_hn, mine_options(p, o), *scale_options(p)))
    summary["leakage"] = training_leakage(p.wd.train_hn, p.wd.eval, p.wd.train_corpus)
    leaks = {k: v for k, v in summary["leakage"].items() if k != "rows_checked" and v}
    if leaks:
        raise KitError(f"{p.wd.train_hn}: eval text among the training rows ({leaks}); not marked done")
    return summary


STEP = (Stage("mine", MineOptions, _run_mine, lambda p, o: [p.wd.train_hn],
               reads=lambda p, o: [p.wd.train, p.wd.train_corpus, p.wd.eval] + existing(mine_options(p, o).model)
               + (existing(o.reranker[len("local:"):]) if str(o.reranker).startswith("local:") else []),
               enabled=lambda p: p.configured("mine"), help="data/train.jsonl -> data/train_hn.jsonl"))
