"""The alias: where it points, moving it (only after the checks, atomically), rolling it back, pruning.

Every collection the kit makes records in the store (``meta``) its state (``filling`` until verified) and, once
live, ``previous``: the collection the alias left for it. A rollback follows that link; so a second rollback goes
one version further back, and any machine that reaches the store can roll back. The alias is only ever moved to a
verified ``NAME__VERSION`` collection, and only from where it was when the run began: an alias found pointing
anywhere else, or moved by someone else during the run, stops the run with the alias left where it is."""
from __future__ import annotations

import datetime as _dt

from ..io import KitError
from .options import SEPARATOR
from .stores import Store

FILLING, VERIFIED = "filling", "verified"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def owned(name: str, collection: str) -> bool:
    return collection.startswith(name + SEPARATOR) and len(collection) > len(name) + len(SEPARATOR)


def live(store: Store, name: str) -> str | None:
    """The collection the alias ``name`` points to (None: no alias yet), after checking it is one the kit verified."""
    target = store.aliases().get(name)
    where = f"{store.uri}: alias {name}"
    if target is None:
        if name in store.collections():
            raise KitError(f"{where}: a collection has that name, so the alias cannot take it; rename that "
                           f"collection or choose another --name")
        return None
    if not owned(name, target):
        raise KitError(f"{where} points to {target}, not to one of its {name}{SEPARATOR}VERSION collections (moved by "
                       f"hand?); refusing to touch it: point it back, or choose another --name")
    info = store.info(target)
    if info is None:
        raise KitError(f"{where} points to {target}, which does not exist; point it at a verified collection by hand")
    if info.meta.get("state") != VERIFIED:
        state = info.meta.get("state") or "not made by the kit"
        raise KitError(f"{where} points to {target}, which kit index never verified ({state}); refusing to touch "
                       f"it: point it back by hand")
    return target


def switch(store: Store, name: str, target: str, expected: str | None) -> None:
    """Move the alias to ``target`` if it still points to ``expected``; read it back."""
    current = live(store, name)
    if current != expected:
        raise KitError(f"{store.uri}: alias {name} moved during this run ({expected} -> {current}); not switched to "
                       f"{target}: run again")
    info = store.info(target)
    if info is None or info.meta.get("state") != VERIFIED:
        raise KitError(f"{store.uri}: {target} is not verified; not switched")
    store.set_meta(target, {**info.meta, "previous": current, "live_since": now()})
    store.point_alias(name, target)
    after = store.aliases().get(name)
    if after != target:
        raise KitError(f"{store.uri}: alias {name} points to {after} after moving it to {target}; check the store")


def rollback(store: Store, name: str) -> tuple[str, str]:
    """Move the alias back to the collection it left for the live one; (from, to)."""
    current = live(store, name)
    if current is None:
        raise KitError(f"{store.uri}: no alias {name}: nothing to roll back")
    meta = store.info(current).meta
    previous = meta.get("previous")
    if not previous:
        raise KitError(f"{store.uri}: {current} was {name}'s first live collection: there is nothing to roll back to")
    info = store.info(previous)
    if info is None:
        raise KitError(f"{store.uri}: {name}'s previous collection {previous} was dropped (kit index --prune); "
                       f"cannot roll back")
    if info.meta.get("state") != VERIFIED:
        raise KitError(f"{store.uri}: {previous} is not a verified collection; not rolled back")
    store.set_meta(current, {**meta, "rolled_back": now()})
    store.point_alias(name, previous)
    if store.aliases().get(name) != previous:
        raise KitError(f"{store.uri}: alias {name} does not point to {previous} after the rollback; check the store")
    return current, previous


def chain(store: Store, name: str, start: str | None) -> list[str]:
    """The rollback targets from ``start`` back: previous, its previous, ..."""
    out, seen, c = [], {start}, start
    while c is not None:
        info = store.info(c)
        prev = info.meta.get("previous") if info else None
        if prev is None or prev in seen:
            break
        out.append(prev)
        seen.add(prev)
        c = prev
    return out


def prune(store: Store, name: str, keep: int) -> tuple[list[str], list[str]]:
    """Drop ``name``'s collections but the live one and the ``keep`` first of the others (the rollback chain, then
    the newest); never one the kit did not make. (kept, dropped)."""
    if keep < 0:
        raise KitError(f"--prune {keep}: KEEP is the number of old collections to keep (0 or more)")
    current = live(store, name)
    infos = {c: store.info(c) for c in store.collections() if owned(name, c)}
    mine = {c: i for c, i in infos.items() if i is not None and i.meta.get("kit_index")}
    rest = [c for c in chain(store, name, current) if c in mine]
    rest += sorted((c for c in mine if c != current and c not in rest), key=lambda c: mine[c].meta.get("created", ""),
                   reverse=True)
    for c in rest[keep:]:
        store.drop(c)
    return ([current] if current else []) + rest[:keep], rest[keep:]


def status(store: Store, name: str) -> dict:
    target = store.aliases().get(name)
    rows = []
    for c in sorted(x for x in store.collections() if owned(name, x)):
        info = store.info(c)
        m = info.meta if info else {}
        rows.append({"collection": c, "live": c == target, "state": m.get("state", "not made by the kit"),
                     "model": m.get("model"), "dim": info.dim if info else None, "created": m.get("created"),
                     "previous": m.get("previous"), "count": store.count(c)})
    return {"alias": name, "points_to": target, "collections": rows}
