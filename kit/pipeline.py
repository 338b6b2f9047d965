"""`kit run`: the whole pipeline from one YAML, one stage at a time, each skipped when already done.

Work-directory layout (everything a run makes lives under ``workdir``)::

    corpus.jsonl               prep         chunks of every PDF
    pairs.jsonl                queries      (query, positive chunk) pairs
    data/train.jsonl           split        FlagEmbedding training rows (train documents only)
    data/eval/                 split        FlagEmbedding custom-eval layout (held-out documents)
    data/train_hn.jsonl        mine         training rows with hard negatives
    models/finetuned/          train        the fine-tuned model (+ checkpoints while training)
    models/merged-<w>/         merge        LM_Cocktail merges with the base model
    adapters/<provider>/       adapter      linear query adapters
    report/                    bench        results.json, report.md, report.html
    manifests/<stage>.json     every stage  fingerprint of inputs + settings, outputs, summary, timings

A stage is skipped when its manifest holds the same fingerprint and its outputs exist. The
fingerprint chains: it covers the stage's own settings, the external inputs it reads (PDF bytes,
model weights) and the fingerprint of the stage before it, so changing a setting re-runs that stage
and every stage after it. A stage killed half-way has no manifest and runs again; what it had
already paid for survives in the caches (LLM answers, embeddings) and in training checkpoints.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import click

from .io import KitError, file_hash, read_json, stable_hash, write_json

log = logging.getLogger("kit.pipeline")

STAGES = ["prep", "queries", "split", "mine", "train", "merge", "adapter", "bench"]


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


@dataclass
class Workdir:
    root: Path

    @property
    def corpus(self) -> Path: return self.root / "corpus.jsonl"
    @property
    def pairs(self) -> Path: return self.root / "pairs.jsonl"
    @property
    def data(self) -> Path: return self.root / "data"
    @property
    def train(self) -> Path: return self.data / "train.jsonl"
    @property
    def eval(self) -> Path: return self.data / "eval"
    @property
    def train_hn(self) -> Path: return self.data / "train_hn.jsonl"
    @property
    def finetuned(self) -> Path: return self.root / "models" / "finetuned"
    def merged(self, w: float) -> Path: return self.root / "models" / f"merged-{w:g}"
    @property
    def merged_auto(self) -> Path: return self.root / "models" / "merged-auto"
    @property
    def adapters(self) -> Path: return self.root / "adapters"
    @property
    def report(self) -> Path: return self.root / "report"
    def manifest(self, stage: str) -> Path: return self.root / "manifests" / f"{stage}.json"
    def started(self, stage: str) -> Path: return self.root / "manifests" / f"{stage}.started.json"


def path_fingerprint(p: Path) -> str:
    """Content fingerprint of a file, a folder of files, or a model (hub ids hash by name)."""
    from .embed import weights_fingerprint

    p = Path(p)
    if p.is_file():
        return file_hash(p)
    if p.is_dir():
        if (p / "config.json").exists():
            return weights_fingerprint(p)
        return stable_hash(sorted((str(f.relative_to(p)), file_hash(f)) for f in p.rglob("*") if f.is_file()))
    return f"name:{p}"


def options_from(cls, section: dict | None, where: str, **fixed):
    """Build a stage's options dataclass from its YAML section; unknown keys are an error naming them."""
    section = dict(section or {})
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(section) - names)
    if unknown:
        raise KitError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    section.update({k: v for k, v in fixed.items() if k in names})
    return cls(**section)


@dataclass
class Stage:
    name: str
    run: Callable[["Pipeline"], dict]
    outputs: Callable[["Pipeline"], list[Path]]
    external_inputs: Callable[["Pipeline"], list[Path]] = lambda p: []
    enabled: Callable[["Pipeline"], bool] = lambda p: True


@dataclass
class Pipeline:
    cfg: dict
    config_path: Path
    wd: Workdir = field(init=False)
    model: str = field(init=False)

    def __post_init__(self):
        self.wd = Workdir(self.resolve_path(self.cfg.get("workdir", "runs/default")))
        model = self.cfg.get("model")
        if not model:
            raise KitError(f"{self.config_path}: `model:` is required (a hub id or a local folder)")
        p = self.resolve_path(model)
        self.model = str(p) if p.exists() else str(model)

    def resolve_path(self, p) -> Path:
        """Relative paths in a config are relative to the config file's folder; a path that exists only
        relative to the current directory (typically one given through an environment variable such as
        KIT_MODEL=../models/x) is taken from there."""
        p = Path(str(p)).expanduser()
        if p.is_absolute():
            return p
        from_config = (self.config_path.parent / p).resolve()
        if not from_config.exists() and p.exists():
            return p.resolve()
        return from_config

    def section(self, name: str) -> dict:
        v = self.cfg.get(name)
        return dict(v) if isinstance(v, dict) else {}

    # --- the stages --------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        from . import stages as s
        return s.build(self)

    def fingerprint(self, stage: Stage, previous: str) -> tuple[str, dict]:
        inputs = {str(p): path_fingerprint(p) for p in stage.external_inputs(self)}
        settings = self.section(stage.name)
        fp = stable_hash({"stage": stage.name, "settings": settings, "model": self.model,
                          "inputs": inputs, "previous": previous})
        return fp, inputs

    def run(self, from_stage: str | None = None, force: bool = False, until: str | None = None) -> dict:
        if from_stage and from_stage not in STAGES:
            raise KitError(f"--from {from_stage}: unknown stage; stages are {', '.join(STAGES)}")
        if until and until not in STAGES:
            raise KitError(f"--until {until}: unknown stage; stages are {', '.join(STAGES)}")
        self.wd.root.mkdir(parents=True, exist_ok=True)
        previous = ""
        summaries: dict[str, Any] = {}
        forcing = force
        t_run = time.perf_counter()
        for stage in self.stages():
            if from_stage == stage.name:
                forcing = True
            if not stage.enabled(self):
                _echo(f"[{stage.name}] not configured, skipped")
                if until == stage.name:
                    break
                continue
            fp, inputs = self.fingerprint(stage, previous)
            manifest_path = self.wd.manifest(stage.name)
            manifest = read_json(manifest_path) if manifest_path.exists() else None
            outputs = stage.outputs(self)
            done = (manifest is not None and manifest.get("fingerprint") == fp
                    and all(Path(o).exists() for o in outputs))
            if done and not forcing:
                _echo(f"[{stage.name}] up to date, skipped (delete {manifest_path} or use --from {stage.name} to redo)")
                summaries[stage.name] = manifest.get("summary", {})
                previous = fp
                if until == stage.name:
                    break
                continue
            self._prepare_outputs(stage, fp, outputs, forcing)
            write_json(self.wd.started(stage.name), {"fingerprint": fp, "started": time.time()})
            _echo(f"[{stage.name}] running")
            t0 = time.perf_counter()
            try:
                summary = stage.run(self) or {}
            except KitError as e:
                raise KitError(f"stage {stage.name}: {e}") from None
            seconds = round(time.perf_counter() - t0, 1)
            missing = [str(o) for o in outputs if not Path(o).exists()]
            if missing:
                raise KitError(f"stage {stage.name}: finished but did not write {', '.join(missing)}")
            write_json(manifest_path, {"stage": stage.name, "fingerprint": fp, "previous": previous,
                                       "settings": self.section(stage.name), "model": self.model,
                                       "inputs": inputs, "outputs": [str(o) for o in outputs],
                                       "summary": summary, "seconds": seconds, "finished": time.time()})
            self.wd.started(stage.name).unlink(missing_ok=True)
            _echo(f"[{stage.name}] done in {seconds:.1f}s")
            summaries[stage.name] = summary
            previous = fp
            if until == stage.name:
                break
        summaries["_seconds"] = round(time.perf_counter() - t_run, 1)
        return summaries

    def _prepare_outputs(self, stage: Stage, fp: str, outputs: list[Path], forcing: bool) -> None:
        """Resume a stage that was killed with the same fingerprint (keep its partial outputs, e.g.
        training checkpoints); otherwise clear stale outputs so old results cannot leak into new ones."""
        started = self.wd.started(stage.name)
        same_attempt = started.exists() and read_json(started).get("fingerprint") == fp
        if same_attempt and not forcing:
            _echo(f"[{stage.name}] resuming an interrupted run")
            return
        for o in outputs:
            o = Path(o)
            if o.is_dir():
                shutil.rmtree(o)
            elif o.exists():
                o.unlink()
        self.wd.manifest(stage.name).unlink(missing_ok=True)


def run_pipeline(config_path, from_stage: str | None = None, force: bool = False,
                 until: str | None = None) -> dict:
    from .config import load_config

    config_path = Path(config_path).resolve()
    cfg = load_config(config_path)
    return Pipeline(cfg, config_path).run(from_stage=from_stage, force=force, until=until)
