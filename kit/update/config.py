"""A config (or a bare workdir) as `kit update`, `kit versions`, `kit promote` and `kit rollback` read it: the
sections of `kit run` plus ``drift:`` and ``update:``, validated the same way."""
from __future__ import annotations

from pathlib import Path

from ..io import KitError, read_json
from ..pipeline import Pipeline, Stage
from .options import UpdateOptions


def load_pipeline(config) -> Pipeline:
    """The config as `kit run` reads it, with the ``drift:`` and ``update:`` sections allowed and parsed."""
    from ..config import load_config
    from ..drift.options import DriftOptions
    from ..stages import REGISTRY

    path = Path(config).resolve()
    extra = [Stage(name, cls, run=lambda p, o: {}, outputs=lambda p, o: [])
             for name, cls in (("drift", DriftOptions), ("update", UpdateOptions)) if name not in
             {s.name for s in REGISTRY}]
    return Pipeline(load_config(path), path, [*REGISTRY, *extra])


def workdir_pipeline(root: Path) -> Pipeline:
    """A workdir given without its config: the model from its prep manifest, every section at its defaults (enough
    to find the deployed model and the versions)."""
    from ..options import yaml_fields
    from ..prep import PrepOptions
    from ..stages import REGISTRY

    manifest = root / "manifests" / "prep.json"
    m = read_json(manifest) if manifest.is_file() else {}
    if not m.get("model"):
        raise KitError(f"{root}: no manifests/prep.json naming the model; give the config instead of the workdir")
    known = {f.name for f in yaml_fields(PrepOptions)}
    prep = {k: v for k, v in (m.get("settings") or {}).items() if k in known}
    return Pipeline({"workdir": str(root), "model": m["model"], "prep": prep}, root / "kit.yaml", list(REGISTRY))


def open_target(target: str) -> tuple[Path, Pipeline | None]:
    """(workdir, the config's pipeline or None) of a CONFIG or WORKDIR argument."""
    path = Path(target)
    if path.is_dir():
        root = path.resolve()
        if not any((root / x).exists() for x in ("versions", "corpus.jsonl", "manifests", "models")):
            raise KitError(f"{root}: not a kit workdir (no versions/, corpus.jsonl or manifests/); give the config "
                           f"or the folder its `workdir:` names")
        return root, None
    if not path.exists():
        raise KitError(f"{target}: no such config file or workdir")
    p = load_pipeline(path)
    return p.wd.root, p
