"""`kit run`'s split step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from ..logs import note
from ..pipeline import Pipeline, Stage, existing, summary_of
from .options import SplitOptions


def _run_split(p: Pipeline, o: SplitOptions) -> dict:
    from ..split import split

    extra = None
    if p.configured("logs"):   # the question log's labelled questions (kit/questionlog/) train as real ones
        from ..io import ReadReport
        from ..questionlog import training_questions

        report = ReadReport()
        extra = training_questions(p.wd.log_labels, report)
        for e in report.errors[:20]:
            note(f"[split] {e}")
    return summary_of(split(p.wd.pairs, p.wd.corpus, p.wd.data, o, extra_questions=extra,
                          extra_source=str(p.wd.log_labels)))


STEP = (Stage("split", SplitOptions, _run_split, lambda p, o: [p.wd.train, p.wd.eval, p.wd.train_corpus],
               reads=lambda p, o: [p.wd.pairs, p.wd.corpus] + existing(o.eval_queries, o.train_queries)
               + ([p.wd.log_labels] if p.configured("logs") else []),   # kit/questionlog/: edits re-run split
               help="pairs -> data/train.jsonl + data/eval/"))
