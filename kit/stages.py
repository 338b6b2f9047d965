"""The stages of `kit run`, in pipeline order. Each stage is a folder kit/<stage>/ with options.py (its YAML section
and files), stage.py (the work: the function its CLI subcommand calls) and step.py (``STEP``: how `kit run` calls it
with files from the workdir); adding a stage is one folder and one line here (README, "Adding a stage")."""
from __future__ import annotations

from pathlib import Path

from .pipeline import Pipeline, Stage
from .prep import step as prep_step
from .queries import step as queries_step
from .questionlog import step as logs_step
from .split import step as split_step
from .mine import step as mine_step
from .train import step as train_step
from .rerank_train import step as rerank_train_step
from .merge import step as merge_step
from .adapter import step as adapter_step
from .bench import step as bench_step
from .deploy import step as deploy_step
from .index import step as index_step

REGISTRY: list[Stage] = [
    prep_step.STEP,
    queries_step.STEP,
    logs_step.STEP,
    split_step.STEP,
    mine_step.STEP,
    train_step.STEP,
    rerank_train_step.STEP,
    merge_step.STEP,
    adapter_step.STEP,
    bench_step.STEP,
    deploy_step.STEP,
    index_step.STEP,
]

SECTIONS = {s.name: s.options for s in REGISTRY}


def run_pipeline(config_path, from_stage: str | None = None, force: bool = False,
                 until: str | None = None) -> dict:
    """`kit run CONFIG`: every registered stage in order (see :mod:`kit.pipeline`)."""
    from .config import load_config

    config_path = Path(config_path).resolve()
    cfg = load_config(config_path)
    return Pipeline(cfg, config_path, REGISTRY).run(from_stage=from_stage, force=force, until=until)
