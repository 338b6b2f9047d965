"""`kit update CONFIG`: bring the deployed model up to the documents the config's prep.inputs name now, without
starting over.

The deployed model is a version (kit/versions/; the first `kit update` registers the workdir's deployed model as
v0001). Each update works in WORKDIR/updates/NNNN/ (:mod:`kit.update.stages`: documents, queries, split, mine,
train, merge, bench, gate), resumable and skipped when up to date; a rerun of an unfinished update, or of one that
kept the deployed model, reuses its folder. Only the last step touches what is deployed: a candidate the gate passes
becomes a new version and ``models/current`` is switched to it in one rename. A failure, a refusal or a kill before
that leaves ``current`` where it was; WORKDIR/promotion.json says what was decided and why.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..io import KitError, read_json, write_json
from ..lock import WorkdirLock
from ..options import validated
from ..pipeline import Pipeline
from ..versions.register import register_deployed
from ..versions.store import VERSION, Store
from .config import load_pipeline
from .finish import UpdateResult, finish, finish_switched, latest_update
from .options import UpdateFiles, UpdateOptions
from .stages import Context, echo, update_stages

SPLIT_KEYS = ("replay_share", "eval_ratio", "questions", "seed")
GATE_KEYS = ("metric", "level", "resamples", "min_gain", "max_loss", "seed")


def _same_model(a: str, b: str) -> bool:
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def check_inputs(p: Pipeline, o: UpdateOptions) -> None:
    """Everything a user can get wrong, each in one line, before anything runs."""
    from ..drift.workdir import check_workdir
    from .data import check_questions
    from .documents import input_files

    check_workdir(p)
    start_model(o, Store(p.wd.root), None)
    if not p.configured("queries"):
        raise KitError(f"{p.config_path}: an update asks new questions about the new documents, but the config has no "
                       f"`queries:` section; add one (e.g. `queries: {{generator: [ict, keywords]}}`)")
    if o.questions:
        check_questions(o.questions)
    input_files(p.options["prep"])


def check_lineage(p: Pipeline, base) -> None:
    """The deployed version must come from this config's model and chunking."""
    m, o = base.manifest, p.options["prep"]
    if m.get("config_model") and not _same_model(str(m["config_model"]), p.model):
        raise KitError(f"{base.path}: {base.name} was made from model {m['config_model']}, but {p.config_path.name} "
                       f"names {p.model}: a workdir from another model or config")
    diff = [f"{k} {v!r} -> {getattr(o, k)!r}" for k, v in (m.get("chunking") or {}).items()
            if hasattr(o, k) and getattr(o, k) != v]
    if diff:
        raise KitError(f"{base.path}: {base.name} was chunked otherwise ({', '.join(diff)}) than "
                       f"{p.config_path.name} asks: a workdir from another config")


def start_model(o: UpdateOptions, store: Store, base) -> str | None:
    """The model training starts from (``base``: the deployed version; None: only check that it exists)."""
    from ..registry import ensure_available

    s = (o.start_from or "").strip()
    if not s or s == "deployed":
        return None if base is None else str(base.model)
    if VERSION.match(s) and not Path(s).exists():
        if base is None and not store.versions() and int(VERSION.match(s).group(1)) == 1:
            return None          # v0001: the deployed model, registered as such in a moment
        return str(store.get(s).model)
    ensure_available(s, "update.start_from model")
    return str(Path(s).resolve()) if Path(s).exists() else s


def merge_weight(o: UpdateOptions, base, p: Pipeline) -> float | None:
    recipe = base.manifest.get("recipe") or {}
    if o.merge_weight is not None:
        w = o.merge_weight
    elif "merge_weight" in recipe:
        w = recipe["merge_weight"]
    elif p.configured("merge") and not p.options["merge"].auto:
        w = p.options["merge"].weights[0]
    else:
        w = None
    return None if w is None or w >= 1 else float(w)


def frozen_sets(store: Store, base) -> dict[str, Path]:
    out = {}
    for name in base.manifest.get("eval_sets") or []:
        folder = store.get(name).material("eval")
        if folder is None:
            raise KitError(f"{store.dir / name}: its eval set (material/eval) is missing; the frozen questions of "
                           f"{base.name} cannot be checked")
        out[name] = folder
    if not out:
        raise KitError(f"{base.path}: {base.name} keeps no eval set (its workdir had no data/eval when it was "
                       f"registered): no frozen questions to guard against a regression; run `kit run` first")
    return out


def update_dir(root: Path, base, start: str) -> tuple[Path, dict]:
    """The unfinished update of the deployed version, or one that kept it (reused: its steps are skipped when up
    to date); else a new WORKDIR/updates/NNNN."""
    last, st = latest_update(root)
    if last is not None and st.get("base_version") == base.name and st.get("status") != "promoted":
        st["start_model"] = start
        st["status"] = "switching" if st.get("status") == "switching" else "running"
        write_json(last / "update.json", st)
        return last, st
    n = int(last.name) + 1 if last is not None else 1
    u = root / "updates" / f"{n:04d}"
    st = {"number": n, "base_version": base.name, "start_model": start, "status": "running",
          "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json(u / "update.json", st)
    return u, st


def update_train_args(args: dict, o: UpdateOptions) -> dict:
    """train.args for an update: the full run's, its length scaled by ``step_share`` (max_steps, else
    num_train_epochs), then ``update.train_args`` on top."""
    out = dict(args)
    given = o.train_args or {}
    if "max_steps" not in given and "num_train_epochs" not in given and o.step_share < 1:
        steps = int(out.get("max_steps", -1) or -1)
        if steps > 0:
            out["max_steps"] = max(1, round(steps * o.step_share))
        else:
            out["num_train_epochs"] = float(out.get("num_train_epochs", 3)) * o.step_share   # HF's default: 3
    return {**out, **given}


def update_config(p: Pipeline, o: UpdateOptions, c: Context) -> dict:
    """The update's own pipeline config: the config's sections under the update's step names."""
    cfg = p.cfg
    train = dict(cfg.get("train") or {})
    train["args"] = update_train_args(train.get("args") or {}, o)
    out = {"workdir": str(c.dir), "model": c.start_model, "allow_partial": cfg.get("allow_partial") or 0.0,
           "documents": cfg.get("prep") or {}, "queries": cfg["queries"], "train": train,
           "split": {k: getattr(o, k) for k in SPLIT_KEYS}, "gate": {k: getattr(o, k) for k in GATE_KEYS},
           "merge": {**(cfg.get("merge") or {}), "weights": [c.weight], "auto": False} if c.weight else {},
           "bench": cfg.get("bench") or {}}
    if p.configured("mine"):
        out["mine"] = cfg["mine"]
    return out


def sections(cfg: dict, stages: list) -> dict:
    """The update's config for a run of ``stages``: the top-level keys and their sections only."""
    names = {s.name for s in stages}
    return {k: v for k, v in cfg.items() if k in ("workdir", "model", "allow_partial") or k in names}


def run(files: UpdateFiles, options: UpdateOptions | None = None, *, progress: bool = True) -> UpdateResult:
    p = load_pipeline(files.config)
    o = validated(options or p.options["update"], "update")
    check_inputs(p, o)
    store = Store(p.wd.root)
    with WorkdirLock(p.wd.root / "updates" / ".lock", echo=echo):
        done = finish_switched(p, store)
        if done is not None:
            return done
        base = store.current() or register_deployed(p, store, echo)
        check_lineage(p, base)
        start = start_model(o, store, base)
        u, st = update_dir(p.wd.root, base, start)
        c = Context(p.wd.root, u, base, start, p.model, frozen_sets(store, base), merge_weight(o, base, p),
                    p.options["split"], progress)
        cfg, (documents, *steps) = update_config(p, o, c), update_stages(c)
        Pipeline(sections(cfg, [documents]), p.config_path, [documents]).run()
        docs = read_json(u / "documents.json")
        if not docs["counts"]["new_chunks"]:
            write_json(u / "update.json", {**st, "status": "nothing"})
            gone = docs["counts"]["gone"]
            why = [f"{gone} document(s) gone: their chunks leave the corpus of the next update"] if gone else []
            return UpdateResult("nothing", u, base.name, reasons=why, documents=docs["line"])
        Pipeline(sections(cfg, steps), p.config_path, steps).run()
        return finish(p, o, store, c, st, docs["line"])
