"""The config's workdir as `kit drift` reads it: the config validated as `kit run` validates it (plus the
``drift:`` section), checks that the workdir belongs to this config, and the deployed model.

The deployed model is ``models/current`` when there is one (a symlink to a model folder, or a file naming a
folder or a bench name; a versions feature will write it), else the model bench recommended
(``report/results.json``, ``recommendation.recommended``) mapped to its folder: ``fine-tuned`` ->
models/finetuned, ``merged-W`` -> models/merged-W, ``base`` -> the config's model. A recommendation that is no
local encoder (BM25, an adapter, an API model) is measured with the base model, and the report says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io import KitError, read_json
from ..pipeline import Pipeline, Stage, Workdir
from .options import DriftOptions

CHUNKING = ("max_tokens", "overlap", "tokenizer", "min_chars")


@dataclass
class Deployed:
    name: str
    path: str          # the encoder the chunks are embedded with
    source: str        # where the choice came from
    note: str = ""


def load_pipeline(config: str) -> Pipeline:
    """The config as `kit run` reads it, with a ``drift:`` section allowed and parsed into DriftOptions."""
    from ..config import load_config
    from ..stages import REGISTRY

    path = Path(config).resolve()
    drift = Stage("drift", DriftOptions, run=lambda p, o: {}, outputs=lambda p, o: [])
    return Pipeline(load_config(path), path, [*REGISTRY, drift])


def _same_model(a: str, b: str) -> bool:
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def check_workdir(p: Pipeline) -> None:
    """One line (exit 2) when the workdir has nothing to compare with or was made from another model or config."""
    wd = p.wd
    if not wd.corpus.is_file():
        raise KitError(f"{wd.root}: no corpus.jsonl, so no trained model to compare with; run `kit run "
                       f"{p.config_path}` first (or point `workdir:` at the deployed run)")
    manifest = wd.manifest("prep")
    if manifest.is_file():
        m = read_json(manifest)
        if m.get("model") and not _same_model(str(m["model"]), p.model):
            raise KitError(f"{wd.root} was made with model {m['model']}, but {p.config_path.name} names {p.model}: "
                           f"a workdir from another model or config")
        o = p.options["prep"]
        diff = [f"{k} {m['settings'][k]!r} -> {getattr(o, k)!r}" for k in CHUNKING
                if k in m.get("settings", {}) and m["settings"][k] != getattr(o, k)]
        if diff:
            raise KitError(f"{wd.root} was prepped with other chunking ({', '.join(diff)}) than "
                           f"{p.config_path.name} asks for: a workdir from another config; documents cut "
                           f"differently cannot be compared")


def _current(wd: Workdir) -> Path | None:
    cur = wd.root / "models" / "current"
    if cur.is_dir():
        return cur
    return cur if cur.is_file() else None


def _by_name(p: Pipeline, name: str, results: dict) -> tuple[str | None, str]:
    """(local encoder folder or None, note) of a bench model name."""
    wd = p.wd
    if name == "base":
        return p.model, ""
    if name == "fine-tuned":
        return str(wd.finetuned), ""
    if name.startswith("merged-"):
        return str(wd.root / "models" / name), ""
    spec = str(((results.get("models") or {}).get(name) or {}).get("spec") or "")
    if spec.startswith("local:"):
        return spec[len("local:"):], ""
    return None, (f"the deployed model {name} ({spec or 'unknown'}) is not a local encoder; chunks are embedded "
                  f"with the base model {p.model}")


def _base_check(p: Pipeline, results: dict, where: Path) -> None:
    spec = str(((results.get("models") or {}).get("base") or {}).get("spec") or "")
    if spec.startswith("local:") and not _same_model(spec[len("local:"):], p.model):
        raise KitError(f"{where}: its base model is {spec[len('local:'):]}, but {p.config_path.name} names "
                       f"{p.model}: a workdir from another model or config")


def deployed_model(p: Pipeline) -> Deployed:
    wd = p.wd
    cur = _current(wd)
    if cur is not None:
        if cur.is_dir():
            t = cur.resolve()   # kit/versions/: versions/vNNNN/model, named by its version
            name = t.parent.name if t.name == "model" and (t.parent / "version.json").is_file() else t.name
            return Deployed(name, str(t), f"{cur} (symlink)")
        target = cur.read_text(encoding="utf-8").strip()
        folder = (cur.parent / target) if not Path(target).is_absolute() else Path(target)
        if folder.is_dir():
            return Deployed(folder.name, str(folder), str(cur))
        path, note = _by_name(p, target, {})
        if path is None:
            raise KitError(f"{cur}: names {target!r}, which is neither a model folder nor a model of the workdir")
        return Deployed(target, path, str(cur), note)
    deployed = wd.root / "deploy" / "deploy.json"   # kit/deploy/: the pick refitted on every chunk
    if deployed.is_file():
        d = read_json(deployed).get("deployed") or {}
        if d.get("path") and Path(d["path"]).is_dir():
            return Deployed(d.get("name", "deployed"), d["path"], f"{deployed} (refitted on every chunk)")
    res_path = wd.report / "results.json"
    if not res_path.is_file():
        return Deployed("base", p.model, "the config's model (no report/results.json: bench has not chosen one)")
    results = read_json(res_path)
    _base_check(p, results, res_path)
    rec = results.get("recommendation") or {}
    name = rec.get("recommended") or rec.get("best_quality") or "base"
    path, note = _by_name(p, name, results)
    if path is None:
        path = p.model
    if not (Path(path).is_dir() or path == p.model):
        raise KitError(f"{res_path}: the recommended model {name} should be in {path}, which is missing")
    return Deployed(name, path, f"{res_path} (recommended)", note)


def versionable_model(p: Pipeline) -> Deployed:
    """The deployed model as a version can hold it: a model folder an update can train from. When the report
    recommends something that is not one (a query adapter over the frozen base, an API model), the best of the
    kit's own model folders on the same eval takes its place (fine-tuned or merged; the base when none is better),
    and the note says so: an update fine-tunes an encoder, and the gate must compare against that encoder, not
    against the base the adapter sits on."""
    d = deployed_model(p)
    if not d.note:
        return d
    res_path = p.wd.report / "results.json"
    results = read_json(res_path) if res_path.is_file() else {}
    rows = {m: e["domain"]["metrics"].get("mrr@10") for m, e in (results.get("models") or {}).items()
            if m == "base" or m == "fine-tuned" or m.startswith("merged-")}
    rows = {m: v for m, v in rows.items() if v is not None and Path(_by_name(p, m, results)[0] or "").is_dir()
            or m == "base"}
    if not rows:
        return d
    best = max(rows, key=lambda m: (rows[m], m != "base"))
    path, _ = _by_name(p, best, results)
    return Deployed(best, path, f"{res_path} (best model folder)",
                    f"the report recommends {d.name}, which is not a model folder an update can train from; "
                    f"{best} (MRR@10 {rows[best]:.4f}, the best of the kit's model folders) is kept as the version")
