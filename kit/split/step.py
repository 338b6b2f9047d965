"""`kit run`'s split step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from ..pipeline import Pipeline, Stage, existing, summary_of
from .options import SplitOptions


def _run_split(p: Pipeline, o: SplitOptions) -> dict:
    from ..questionlog import log_questions
    from ..split import split

    # the question log's labelled questions (kit/questionlog/) train as real ones
    extra = log_questions(p, "split")
    return summary_of(split(p.wd.pairs, p.wd.corpus, p.wd.data, o, extra_questions=extra,
                          extra_source=str(p.wd.log_labels)))


STEP = (Stage("split", SplitOptions, _run_split, lambda p, o: [p.wd.train, p.wd.eval, p.wd.train_corpus],
               reads=lambda p, o: [p.wd.pairs, p.wd.corpus] + existing(o.eval_queries, o.train_queries)
               + ([p.wd.log_labels] if p.configured("logs") else []),   # kit/questionlog/: edits re-run split
               help="pairs -> data/train.jsonl + data/eval/"))
