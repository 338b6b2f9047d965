"""`kit run`'s train step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..logs import note
from ..pipeline import Pipeline, Stage, existing, model_reads
from .options import TrainOptions


def train_data(p: Pipeline) -> Path:
    """Mined rows when mining is configured, else the split's rows (negatives then come in-batch only)."""
    return p.wd.train_hn if p.configured("mine") else p.wd.train


def _run_train(p: Pipeline, o: TrainOptions) -> dict:
    from ..train import train

    o = replace(o, data=str(train_data(p)), output_dir=str(p.wd.finetuned),
                corpus=str(p.wd.train_corpus) if o.passage_titles else None)
    out = train(p.model, o, echo=note)
    return {"model": str(out)}


STEP = (Stage("train", TrainOptions, _run_train, lambda p, o: [p.wd.finetuned],
               reads=lambda p, o: [train_data(p)] + model_reads(p) + existing(o.deepspeed)
               + ([p.wd.train_corpus] if o.passage_titles else []),
               enabled=lambda p: p.configured("train"), help="training rows -> models/finetuned"))
