"""`kit versions`: every version with where it came from, what it learnt from and its eval figures."""
from __future__ import annotations

from .store import Store, Version


def _figures(v: Version) -> str:
    ev = v.manifest.get("eval") or {}
    metric = ev.get("metric", "mrr@10")
    parts = []
    for name, f in (ev.get("sets") or {}).items():
        if f and f.get("value") is not None:
            parts.append(f"{name} {f['value']:.3f} [{f['lo']:.3f}-{f['hi']:.3f}]")
        else:
            parts.append(f"{name} -")
    return f"{metric}: " + ", ".join(parts) if parts else "-"


def _source(v: Version) -> str:
    s = v.manifest.get("source") or {}
    if s.get("kind") == "update":
        return f"update {s.get('update')} ({s.get('name')}, from {v.manifest.get('parent')})"
    return f"{s.get('kind', '?')}: {s.get('name', '?')}"


def rows(store: Store) -> list[dict]:
    cur = store.current()
    out = []
    for v in store.versions():
        m = v.manifest
        docs, train = m.get("documents") or {}, m.get("training") or {}
        out.append({"version": v.name, "current": bool(cur and cur.name == v.name), "created": m.get("created"),
                    "source": _source(v), "documents": docs.get("documents"), "chunks": docs.get("chunks"),
                    "documents_hash": docs.get("hash"), "training_rows": train.get("rows"),
                    "training_hash": train.get("hash"), "eval": m.get("eval"), "figures": _figures(v),
                    "path": str(v.model)})
    return out


def table(store: Store) -> str:
    items = rows(store)
    if not items:
        return f"no version in {store.dir} yet; `kit promote CONFIG` registers the deployed model as v0001"
    head = ["", "version", "created", "from", "documents", "rows", "eval (95% CI)"]
    body = [["*" if r["current"] else "", r["version"], r["created"] or "-", r["source"],
             f"{r['documents']} docs / {r['chunks']} chunks ({(r['documents_hash'] or '-')[:8]})",
             str(r["training_rows"] if r["training_rows"] is not None else "-"), r["figures"]] for r in items]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip() for x in [head, *body]]
    cur = next((r for r in items if r["current"]), None)
    lines.append(f"* deployed: models/current -> {cur['path']}" if cur else
                 "no version is deployed (models/current names none of them)")
    return "\n".join(lines)
