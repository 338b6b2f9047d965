"""`kit run`'s prep step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..io import KitError
from ..pipeline import Pipeline, Stage, model_reads, summary_of
from .options import PrepOptions


def _run_prep(p: Pipeline, o: PrepOptions) -> dict:
    from ..prep import prep

    if not o.inputs:
        raise KitError(f"{p.config_path}: prep.inputs is required (documents: files or folders)")
    if o.tokenizer == "model":  # count tokens with the model being fine-tuned
        o = replace(o, tokenizer=p.model)
    result = prep(o.inputs, p.wd.corpus, o)
    if not p.wd.corpus.exists() or getattr(result, "chunks", 1) == 0:
        raise KitError("no chunk was produced; check the documents listed above")
    return summary_of(result)


STEP = (Stage("prep", PrepOptions, _run_prep,
               lambda p, o: [p.wd.corpus, p.wd.corpus.with_name(p.wd.corpus.stem + ".stats.json")],
               reads=lambda p, o: [Path(x) for x in o.inputs] + (model_reads(p) if o.tokenizer == "model" else []),
               help="documents -> corpus.jsonl"))
