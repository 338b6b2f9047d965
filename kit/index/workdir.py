"""What a pipeline's workdir gives `kit index CONFIG` and `kit run`'s index stage: the corpus, the eval
questions for the golden check, the model to index with and the default store.

The model: ``models/current`` when a version was promoted (a symlink to a model folder, or a file naming one), else
``deploy/deploy.json``'s deployed model when the deploy stage refitted one, else the model
``report/results.json`` recommends (its ``local:`` folder), else the config's ``model:`` (no bench report). A
recommendation that is no local encoder (BM25, an API model, an adapter) cannot fill a vector store: one line
says so, and ``--model`` chooses."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..io import KitError, read_json
from ..pipeline import Pipeline
from .options import IndexFiles, IndexOptions


def chosen_model(p: Pipeline) -> tuple[str, str]:
    """(model, where the choice came from)."""
    current = p.wd.root / "models" / "current"
    if current.is_dir():
        return str(current.resolve()), f"{current} (current version)"
    if current.is_file():
        named = Path(current.read_text(encoding="utf-8").strip())
        folder = named if named.is_absolute() else current.parent / named
        if folder.is_dir():
            return str(folder.resolve()), f"{current} (current version)"
    deploy = p.wd.root / "deploy" / "deploy.json"
    if deploy.is_file():
        path = (read_json(deploy).get("deployed") or {}).get("path")
        if path and Path(path).is_dir():
            return str(path), f"{deploy} (deployed)"
    results = p.wd.report / "results.json"
    if results.is_file():
        res = read_json(results)
        name = (res.get("recommendation") or {}).get("recommended")
        spec = str(((res.get("models") or {}).get(name) or {}).get("spec") or "")
        if name and spec.startswith("local:"):
            return spec[len("local:"):], f"{results} (recommended: {name})"
        if name:
            raise KitError(f"{results}: the recommended model {name} ({spec or 'unknown'}) is not a local encoder "
                           f"that can fill a vector store; choose one with --model")
    return p.model, f"{p.config_path.name}'s model: (no bench report)"


def model_reads(p: Pipeline) -> list[Path]:
    """What the index stage's choice of model depends on (for the pipeline's fingerprint)."""
    paths = [p.wd.root / "models" / "current", p.wd.root / "deploy" / "deploy.json", p.wd.report / "results.json"]
    try:
        model = Path(chosen_model(p)[0])
    except KitError:
        model = None
    return [x for x in paths + [model] if x is not None and x.exists()]


def pipeline_files(p: Pipeline, files: IndexFiles | None = None) -> IndexFiles:
    """``files`` (flags) completed from the workdir: only what the user did not give."""
    files = files or IndexFiles()
    model, source = (files.model, "--model") if files.model else chosen_model(p)
    return replace(files, model=model, model_source=source, corpus=files.corpus or str(p.wd.corpus),
                   eval=files.eval or (str(p.wd.eval) if (p.wd.eval / "corpus.jsonl").exists() else None),
                   record=str(p.wd.root / "index" / "index.json"))


def pipeline_options(p: Pipeline, options: IndexOptions) -> IndexOptions:
    """The default store of a workdir: Milvus Lite in WORKDIR/index/milvus.db."""
    if options.store:
        return options
    return replace(options, store=f"milvus-lite://{p.wd.root.resolve() / 'index' / 'milvus.db'}")
