"""The last step of an update, the only one that touches what is deployed: the gate's verdict applied.

``promote``: the candidate becomes a new version (its model, the material it learnt from, the new documents' eval
set, its figures) and, with ``update.promote: auto``, ``models/current`` is switched to it (one rename). ``keep``:
nothing changes. Either way WORKDIR/promotion.json says what was decided and why. Each write is atomic and the
update's status is recorded after it, so a kill anywhere here is finished by the next `kit update`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..formats import read_corpus
from ..io import KitError, ReadReport, file_hash, read_json, write_json
from ..versions.register import count_rows, docs_hash
from ..versions.store import Store, Version

EXIT = {"promoted": 0, "registered": 0, "nothing": 0, "kept": 3}


@dataclass
class UpdateResult:
    status: str                     # promoted | registered | kept | nothing
    update_dir: Path
    deployed: str                   # the version deployed once the update is over
    version: str | None = None      # the version the candidate became
    reasons: list[str] = field(default_factory=list)
    documents: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT[self.status]

    def summary(self) -> str:
        verdict = {"promoted": f"promoted {self.version}", "registered": f"kept {self.deployed}; candidate stored as "
                   f"{self.version} (update.promote: never; `kit promote CONFIG {self.version}` deploys it)",
                   "kept": f"kept {self.deployed}", "nothing": f"nothing to update; {self.deployed} stays"}
        return "\n".join([self.documents, *self.reasons, f"update: {self.update_dir}",
                          f"verdict: {verdict[self.status]}"])


def _manifest(p, c, verdict: dict, name: str) -> dict:
    u, base = c.dir, c.base
    chunks = read_corpus(u / "corpus.jsonl", ReadReport())
    rows = c.rows if (c.rows).is_file() else u / "data" / "train.jsonl"
    split = read_json(u / "data" / "update_split.json")
    sets = {(name if s == "new" else s): f["candidate"] for s, f in verdict["sets"].items()}
    return {"source": {"kind": "update", "name": verdict["candidate"]["kind"], "path": str(c.candidate),
                       "update": u.name, "start_model": c.start_model},
            "update": str(u), "config": str(p.config_path), "config_model": p.model, "parent": base.name,
            "chunking": base.manifest.get("chunking"),
            "documents": {"hash": docs_hash(chunks), "documents": len({x.get("doc") for x in chunks}),
                          "chunks": len(chunks), "diff": read_json(u / "documents.json")["counts"]},
            "training": {"rows": count_rows(rows), "hash": file_hash(rows),
                         **{k: split[k] for k in ("new_rows", "replayed_rows", "replay_share")}},
            "eval": {"metric": verdict["metric"], "sets": sets, "vs_deployed": verdict["figures"],
                     "decision": verdict["decision"]},
            "eval_sets": [*(base.manifest.get("eval_sets") or []), name],
            "recipe": {"merge_weight": c.weight}}


def candidate_version(p, store: Store, c, verdict: dict) -> Version:
    """The version this update's candidate became (a resumed update finds the one it made before), else a new one.
    The caller holds the store's lock."""
    from ..embed import weights_fingerprint

    fp = weights_fingerprint(c.candidate)
    for v in store.versions():
        if v.manifest.get("update") == str(c.dir) and v.manifest.get("weights") == fp:
            return v
    u, name = c.dir, store.next_name()
    material = {"corpus.jsonl": u / "corpus.jsonl", "pool.jsonl": u / "data" / "pool.jsonl",
                "train_corpus.jsonl": u / "data" / "train_corpus.jsonl", "files.json": u / "files.json",
                "eval": u / "data" / "new" / "eval"}
    held = read_json(u / "data" / "heldout.json")["heldout"]
    records = {"eval/heldout.json": {"heldout": held, "made_by": f"update {u.name}: the new documents' questions"}}
    return store.add(c.candidate, _manifest(p, c, verdict, name), material, records=records, name=name)


def finish(p, o, store: Store, c, st: dict, line: str) -> UpdateResult:
    u, base = c.dir, c.base
    verdict = read_json(u / "promotion.json")
    if verdict["decision"] != "promote":
        write_json(p.wd.root / "promotion.json", {**verdict, "promoted": None, "current": base.name})
        write_json(u / "update.json", {**st, "status": "kept"})
        return UpdateResult("kept", u, base.name, reasons=verdict["reasons"], documents=line)
    reasons = list(verdict["reasons"])
    with store.lock():
        v = candidate_version(p, store, c, verdict)
        st = {**st, "status": "switching", "version": v.name}
        write_json(u / "update.json", st)
        current = store.current()
        moved = current is None or current.name != base.name
        if moved:    # promoted or rolled back by hand while this update ran: that choice stands
            reasons.append(f"the deployed version changed to {current.name if current else 'none'} during the "
                           f"update, which started from {base.name}: not switched")
        elif o.promote == "auto":
            store.promote_held(v, update=u.name)
    status = "promoted" if o.promote == "auto" and not moved else "registered"
    current = store.current()
    write_json(p.wd.root / "promotion.json", {**verdict, "promoted": v.name if status == "promoted" else None,
                                              "version": v.name, "current": current.name if current else None})
    write_json(u / "update.json", {**st, "status": status})
    if status == "promoted":
        reasons += reindex(p, v)
    return UpdateResult(status, u, current.name if current else base.name, v.name, reasons, line)


def reindex(p, v: Version) -> list[str]:
    """A promoted version behind the search too, when the config has an `index:` section: its corpus re-embedded into
    a new collection, verified, the alias switched (kit/index/). Only a promotion re-indexes; a kept candidate never
    reaches the store. A failed index leaves the alias where it was and says so; the promotion stands (`kit index
    CONFIG` retries, `kit rollback` undoes the promotion)."""
    if not p.configured("index"):
        return []
    from ..index import run
    from ..index.options import IndexFiles
    from ..index.workdir import pipeline_options

    files = IndexFiles(model=str(v.model), corpus=str(v.material("corpus.jsonl") or p.wd.corpus),
                       record=str(p.wd.root / "index" / "index.json"), model_source=f"version {v.name}")
    try:
        result = run(files, pipeline_options(p, p.options["index"]), progress=False)
    except KitError as e:
        return [f"index: {e} (the alias was not switched; `kit index CONFIG` retries)"]
    return [f"index: {line}" for line in result.summary().splitlines() if line.startswith(("alias", "note"))]


def latest_update(root: Path) -> tuple[Path | None, dict]:
    dirs = sorted(d for d in (root / "updates").glob("[0-9][0-9][0-9][0-9]") if (d / "update.json").is_file())
    return (dirs[-1], read_json(dirs[-1] / "update.json")) if dirs else (None, {})


def finish_switched(p, store: Store) -> UpdateResult | None:
    """An update killed after ``current`` was switched to its version but before it said so: said now."""
    u, st = latest_update(p.wd.root)
    cur = store.current()
    if u is None or st.get("status") != "switching" or cur is None or cur.name != st.get("version"):
        return None
    verdict = read_json(u / "promotion.json")
    write_json(p.wd.root / "promotion.json", {**verdict, "promoted": cur.name, "version": cur.name,
                                              "current": cur.name})
    write_json(u / "update.json", {**st, "status": "promoted"})
    return UpdateResult("promoted", u, cur.name, cur.name, verdict["reasons"], "(an interrupted update, finished)")
