"""`kit run`'s merge step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..logs import note
from ..pipeline import Pipeline, Stage, existing, model_reads
from .options import MergeOptions
from ..train.step import train_data


def merge_outputs(p: Pipeline, o: MergeOptions) -> list[Path]:
    return [p.wd.merged_auto] if o.auto else [p.wd.merged(w) for w in o.weights]


def merge_examples(p: Pipeline, o: MergeOptions) -> MergeOptions:
    """LM_Cocktail's data-driven merge needs a few example rows; without ``example_data`` the pipeline gives it
    the labelled real questions among the training rows (``split.train_queries``), else all training rows."""
    if not o.auto or o.example_data:
        return o
    from ..formats import read_training_rows, write_training_rows
    from ..io import ReadReport

    rows = [r for _, r in read_training_rows(train_data(p), ReadReport()) if r.get("neg")]
    real = [r for r in rows if r.get("generator") == "real"]
    path = p.wd.data / "merge_examples.jsonl"
    write_training_rows(path, real or rows)
    note(f"[merge] auto weights from {len(real or rows)} {'real questions' if real else 'training rows'}")
    return replace(o, example_data=str(path))


def _run_merge(p: Pipeline, o: MergeOptions) -> dict:
    from ..merge import merge

    if o.auto:
        o = merge_examples(p, o)
        return {"auto": [str(x) for x in merge(p.model, str(p.wd.finetuned), p.wd.merged_auto, o)]}
    return {f"{w:g}": [str(x) for x in merge(p.model, str(p.wd.finetuned), p.wd.merged(w), replace(o, weights=[w]))]
            for w in o.weights}


STEP = (Stage("merge", MergeOptions, _run_merge, merge_outputs,
               reads=lambda p, o: [p.wd.finetuned] + model_reads(p) + existing(o.example_data)
               + ([train_data(p)] if o.auto else []),
               enabled=lambda p: p.configured("merge"), help="fine-tuned + base -> models/merged-<w>"))
