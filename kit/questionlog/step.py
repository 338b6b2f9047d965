"""`kit run`'s logs step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from pathlib import Path

from ..logs import note
from ..pipeline import Pipeline, Stage, existing, model_reads


def _log_files(p: Pipeline):
    from ..questionlog import LogFiles

    return LogFiles(corpus=str(p.wd.corpus), model=p.model, labels=str(p.wd.log_labels), report=str(p.wd.log_report),
                    eval_queries=p.options["split"].eval_queries)


def _run_logs(p: Pipeline, o) -> dict:
    from ..questionlog import run

    result = run(_log_files(p), o, progress=o.progress)
    note(result.summary())
    return result.record()


def _logs_outputs(p: Pipeline, o) -> list[Path]:
    # log_labels.jsonl counts as an output only until it exists: the runner deletes a stage's outputs before running
    # it again, and this file holds the labels a person corrected, which the stage keeps over its judge's.
    return [p.wd.log_report] + ([] if p.wd.log_labels.exists() else [p.wd.log_labels])


def _logs_stage() -> Stage:
    from ..questionlog import LogOptions

    return Stage("logs", LogOptions, _run_logs, _logs_outputs,
                 reads=lambda p, o: [Path(x) for x in o.paths()] + [p.wd.corpus] + model_reads(p)
                 + existing(p.options["split"].eval_queries),
                 enabled=lambda p: p.configured("logs"), help="question log -> data/log_labels.jsonl + weak spots")


STEP = _logs_stage()
