"""Numbered versions of the deployed model, and the one switch that says which is deployed.

Layout under the workdir::

    versions/v0001/model/          the model folder (hard links to the promoted folder's files, else a copy)
    versions/v0001/version.json    its manifest: where it came from, documents hash, training rows, eval figures
    versions/v0001/material/       what it learnt from: corpus.jsonl, pool.jsonl (the training rows an update's
                                   replay draws from), train_corpus.jsonl, files.json (input file -> hash, chunk ids),
                                   eval/ (the eval set it added, frozen from then on: the one v0001 was chosen on, an
                                   update's new-documents questions) with eval/heldout.json (the passages training
                                   never saw, as normalised-text hashes)
    versions/history.json          every switch (promote, rollback) and the stack `kit rollback` pops
    models/current                 symlink -> ../versions/vNNNN/model

A version appears whole or not at all (built in versions/.tmp-*, then one rename), and ``models/current`` changes
only in :meth:`Store.switch`: a temporary symlink renamed over it (``os.replace``, atomic on POSIX). A run killed
anywhere leaves ``current`` on the model it was on.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..io import KitError, read_json, write_json
from ..lock import WorkdirLock

VERSION = re.compile(r"^v?0*(\d+)$")
MANIFEST, MODEL, MATERIAL = "version.json", "model", "material"


@dataclass
class Version:
    name: str
    path: Path
    manifest: dict = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.name[1:])

    @property
    def model(self) -> Path:
        return self.path / MODEL

    def material(self, name: str) -> Path | None:
        p = self.path / MATERIAL / name
        return p if p.exists() else None


def version_name(n: int) -> str:
    return f"v{n:04d}"


def link_copy(src: Path, dst: Path) -> None:
    """``src`` (file or folder, symlinks followed: a hub cache holds links to blobs) as hard links at ``dst``, each
    file copied where a link cannot be made (another file system). Everything is taken, training checkpoints too:
    links cost no space, and the folder's fingerprint (:func:`kit.embed.weights_fingerprint`, the key of the
    embeddings cached for it) stays the one of the folder it came from."""
    def one(s, d):
        real = os.path.realpath(s)
        try:
            os.link(real, d)
        except OSError:
            shutil.copy2(real, d)
        return d

    src = Path(src)
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=one, symlinks=False, ignore=shutil.ignore_patterns(".*.tmp"))
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        one(src, dst)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Store:
    """The versions of one workdir."""

    def __init__(self, workdir):
        self.root = Path(workdir)
        self.dir = self.root / "versions"
        self.current_link = self.root / "models" / "current"
        self.history_path = self.dir / "history.json"

    # --- reading ------------------------------------------------------------------------------------
    def versions(self) -> list[Version]:
        if not self.dir.is_dir():
            return []
        out = [Version(p.name, p, read_json(p / MANIFEST)) for p in self.dir.iterdir()
               if p.is_dir() and re.fullmatch(r"v\d{4,}", p.name) and (p / MANIFEST).is_file()]
        return sorted(out, key=lambda v: v.number)

    def get(self, name: str) -> Version:
        m = VERSION.match(str(name).strip())
        path = self.dir / version_name(int(m.group(1))) if m else None
        if path is None or not (path / MANIFEST).is_file():
            known = ", ".join(v.name for v in self.versions()) or "none yet (`kit promote CONFIG` registers the " \
                                                                  "deployed model as v0001)"
            raise KitError(f"{self.dir}: no version {name!r}; versions: {known}")
        return Version(path.name, path, read_json(path / MANIFEST))

    def current(self) -> Version | None:
        """The version ``models/current`` points into, or None (no link, or a link/file naming another folder)."""
        link = self.current_link
        if not link.is_symlink():
            return None
        target = Path(os.path.realpath(link))
        if target.name == MODEL and target.parent.parent == Path(os.path.realpath(self.dir)):
            try:
                return self.get(target.parent.name)
            except KitError:
                return None
        return None

    def history(self) -> dict:
        h = read_json(self.history_path) if self.history_path.is_file() else {}
        return {"stack": list(h.get("stack") or []), "events": list(h.get("events") or []),
                "pending": h.get("pending")}

    def lock(self) -> WorkdirLock:
        return WorkdirLock(self.dir / ".lock")

    # --- adding -------------------------------------------------------------------------------------
    def next_name(self) -> str:
        taken = [v.number for v in self.versions()]
        return version_name(max(taken, default=0) + 1)

    def add(self, model_dir, manifest: dict, material: dict[str, Path | None], records: dict | None = None,
            name: str | None = None) -> Version:
        """A new version: the model folder and its material (hard links), version.json; whole or not at all.
        The caller holds :meth:`lock`."""
        from ..embed import weights_fingerprint

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise KitError(f"{model_dir}: not a model folder (no config.json); nothing to keep as a version")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._clear_temp()
        name = name or self.next_name()
        tmp = self.dir / f".tmp-{name}-{os.getpid()}"
        try:
            link_copy(model_dir, tmp / MODEL)
            for fname, src in material.items():
                if src is not None and Path(src).exists():
                    link_copy(Path(src), tmp / MATERIAL / fname)
            for fname, obj in (records or {}).items():
                write_json(tmp / MATERIAL / fname, obj)
            record = {"version": name, "created": time.strftime("%Y-%m-%d %H:%M:%S"), **manifest,
                      "weights": weights_fingerprint(tmp / MODEL)}
            write_json(tmp / MANIFEST, record)
            os.rename(tmp, self.dir / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(self.dir)
        return Version(name, self.dir / name, record)

    def _clear_temp(self) -> None:
        """Half-built versions of runs that were killed (their process is gone: this one holds the lock)."""
        for p in self.dir.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)

    # --- switching ----------------------------------------------------------------------------------
    def check_intact(self, v: Version) -> None:
        from ..embed import weights_fingerprint

        if not (v.model / "config.json").is_file():
            raise KitError(f"{v.model}: the model folder of {v.name} is missing or incomplete; not switched")
        want = v.manifest.get("weights")
        if want and weights_fingerprint(v.model) != want:
            raise KitError(f"{v.model}: the weights of {v.name} changed since it was stored (fingerprint "
                           f"{weights_fingerprint(v.model)} != {want}); not switched")

    def reconciled_stack(self) -> list[str]:
        """The promotion stack as ``current`` says it is (a switch killed before its history was written, or a
        link made by hand, are taken into account)."""
        h = self.history()
        stack = h["stack"]
        cur = self.current()
        pending = h.get("pending")
        if pending and cur is not None and cur.name == pending.get("to"):
            stack = list(pending.get("stack") or stack)
        if cur is not None and (not stack or stack[-1] != cur.name):
            stack.append(cur.name)
        return stack

    def switch(self, v: Version, action: str, stack: list[str], **note) -> None:
        """Point ``models/current`` at ``v`` (one atomic rename), then record it."""
        self.check_intact(v)
        link = self.current_link
        if link.exists() and not link.is_symlink() and link.is_dir():
            raise KitError(f"{link}: is a folder, not a link; move it away (or register it with `kit promote`) "
                           f"before switching versions")
        before = self.current()
        h = self.history()
        h["pending"] = {"action": action, "to": v.name, "stack": stack}
        write_json(self.history_path, h)
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".current.{os.getpid()}.tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.relpath(v.model, link.parent), tmp)
        os.replace(tmp, link)
        _fsync_dir(link.parent)
        h["stack"], h["pending"] = stack, None
        h["events"].append({"at": time.strftime("%Y-%m-%d %H:%M:%S"), "action": action, "version": v.name,
                            "from": before.name if before else None, **note})
        write_json(self.history_path, h)

    def promote(self, name: str, **note) -> tuple[Version, Version | None]:
        """(the version now deployed, the one before); a no-op when it already is."""
        with self.lock():
            return self.promote_held(self.get(name), **note)

    def promote_held(self, v: Version, **note) -> tuple[Version, Version | None]:
        """:meth:`promote` for a caller that holds :meth:`lock` already."""
        before = self.current()
        if before is not None and before.name == v.name:
            return v, before
        self.switch(v, "promote", self.reconciled_stack() + [v.name], **note)
        return v, before

    def rollback(self) -> tuple[Version, Version]:
        """Back to the version promoted before the current one: (now deployed, the one rolled back)."""
        with self.lock():
            cur = self.current()
            if cur is None:
                raise KitError(f"{self.current_link}: no version is deployed (no models/current link into "
                               f"{self.dir}); nothing to roll back")
            stack = self.reconciled_stack()
            if len(stack) < 2:
                raise KitError(f"{cur.name} is the first version promoted here; there is nothing to roll back to")
            target = self.get(stack[-2])
            self.switch(target, "rollback", stack[:-1])
            return target, cur
