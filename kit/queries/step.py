"""`kit run`'s queries step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from ..pipeline import Pipeline, Stage, summary_of
from .options import QueryOptions


def _run_queries(p: Pipeline, o: QueryOptions) -> dict:
    from ..queries import gen_queries

    result = gen_queries(p.wd.corpus, p.wd.pairs, o)
    return summary_of(result)


STEP = (Stage("queries", QueryOptions, _run_queries, lambda p, o: [p.wd.pairs],
               reads=lambda p, o: [p.wd.corpus], enabled=lambda p: p.configured("queries"),
               help="corpus -> pairs.jsonl"))
