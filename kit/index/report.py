"""`kit index`'s result in a few lines (stdout): what is live now, what changed, what the checks measured."""
from __future__ import annotations


def _index(r) -> list[str]:
    f, g, k = r.fill, r.golden, r.golden.get("k", 10)
    lines = [f"{r.collection}: {f.get('chunks')} chunks ({f.get('added')} added, {f.get('changed')} changed, "
             f"{f.get('deleted')} deleted, {f.get('unchanged')} unchanged; embedded {f.get('encoded', {}).get('dense')})"
             f" with {r.model.get('model')} ({r.model.get('dim')} dims"
             + (", sparse" if r.model.get("sparse") else "") + (", colbert" if r.model.get("colbert") else "") + ")",
             f"checks: count {r.parity.get('stored')} = corpus {r.parity.get('corpus')}; golden recall@{k} store "
             f"{g.get(f'recall@{k}_store')} vs exact {g.get(f'recall@{k}_exact')} (tolerance {g.get('tolerance')}) "
             f"over {g.get('questions')}"]
    if r.switched:
        lines.append(f"alias {r.name}: {r.previous or '(new)'} -> {r.collection}")
    else:
        lines.append(f"alias {r.name} -> {r.collection} (already live: updated in place)")
    return lines


def _status(r) -> list[str]:
    s = r.status
    lines = [f"alias {r.name} -> {s.get('points_to') or '(none)'}"]
    for c in s.get("collections", []):
        lines.append(f"  {'*' if c['live'] else ' '} {c['collection']}: {c['state']}, {c['count']} rows, "
                     f"{c['dim']} dims, {c['model']}, created {c['created']}"
                     + (f", previous {c['previous']}" if c.get("previous") else ""))
    return lines


def summary(r) -> str:
    if r.action == "index":
        lines = _index(r)
    elif r.action == "rollback":
        lines = [f"alias {r.name}: {r.previous} -> {r.collection} (rolled back; embed questions with "
                 f"{r.model.get('model')})"]
    elif r.action == "prune":
        lines = [f"{r.name}: kept {', '.join(r.kept) or 'nothing'}; dropped {', '.join(r.dropped) or 'nothing'}"]
    else:
        lines = _status(r)
    return "\n".join([f"store {r.store}", *lines, *(f"note: {n}" for n in r.notes)])
