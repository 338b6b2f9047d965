"""`kit run`'s rerank_train step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from ..pipeline import Pipeline, Stage, existing
from .options import RerankTrainOptions
from ..train.step import train_data


def _run_rerank_train(p: Pipeline, o: RerankTrainOptions) -> dict:
    from ..rerank_train.stage import run_in_pipeline

    return run_in_pipeline(p, o, train_data(p))


STEP = (Stage("rerank_train", RerankTrainOptions, _run_rerank_train, lambda p, o: [p.wd.root / "models" / "reranker"],
               reads=lambda p, o: [train_data(p)] + existing(o.model or p.model, o.deepspeed),
               enabled=lambda p: p.configured("rerank_train"), help="training rows -> models/reranker"))
