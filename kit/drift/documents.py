"""Which documents are new, changed, moved or gone since training, by content hash.

A document is the chunks prep made of it (a corpus row's ``doc``: a file's name, or a JSONL row's title or
``doc`` group). Its content hash covers the titles and texts of its chunks in order, so the same file prepped
with the same settings hashes the same wherever it lies; a document found under another name with the same hash
was moved or renamed, not new. The *new chunks* are the chunks of new and changed documents whose text (as it is
embedded: title and text) the training corpus lacks: a changed document contributes only what changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..formats import titled
from ..io import stable_hash, text_hash


def doc_of(chunk: dict) -> str:
    return str(chunk.get("doc") or chunk.get("source_id") or chunk["id"])


def chunk_key(chunk: dict) -> str:
    """A chunk's identity as the encoder sees it (title and text)."""
    return text_hash(titled(chunk.get("title"), chunk["text"]), 24)


def group(chunks: list[dict]) -> dict[str, dict]:
    """{document: {hash, chunks, first chunk's index}} in corpus order."""
    out: dict[str, dict] = {}
    parts: dict[str, list] = {}
    for i, c in enumerate(chunks):
        d = doc_of(c)
        if d not in out:
            out[d] = {"first": i, "chunks": 0}
            parts[d] = []
        out[d]["chunks"] += 1
        parts[d].append([c.get("title") or "", c["text"]])
    for d, p in parts.items():
        out[d]["hash"] = stable_hash(p, 16)
    return out


@dataclass
class DocumentDiff:
    new: list[dict] = field(default_factory=list)        # {doc, chunks, new_chunks}
    changed: list[dict] = field(default_factory=list)    # {doc, chunks_before, chunks, new_chunks}
    moved: list[dict] = field(default_factory=list)      # {doc, was, chunks}
    gone: list[dict] = field(default_factory=list)       # {doc, chunks}
    unchanged: int = 0
    new_chunks: list[int] = field(default_factory=list)  # indexes into the current corpus

    def counts(self) -> dict:
        return {"new": len(self.new), "changed": len(self.changed), "moved": len(self.moved),
                "gone": len(self.gone), "unchanged": self.unchanged, "new_chunks": len(self.new_chunks)}

    def line(self) -> str:
        c = self.counts()
        return (f"documents: {c['new']} new, {c['changed']} changed, {c['gone']} gone, {c['moved']} moved, "
                f"{c['unchanged']} unchanged; {c['new_chunks']} new chunks")


def diff(old: list[dict], current: list[dict]) -> DocumentDiff:
    """Classify the current corpus's documents against the training corpus's."""
    before, now = group(old), group(current)
    hashes_before = {v["hash"]: d for d, v in before.items()}
    hashes_now = {v["hash"] for v in now.values()}
    old_keys = {chunk_key(c) for c in old}
    fresh: dict[str, list[int]] = {}
    for i, c in enumerate(current):
        if chunk_key(c) not in old_keys:
            fresh.setdefault(doc_of(c), []).append(i)
    out = DocumentDiff()
    for d, v in now.items():
        if d in before and before[d]["hash"] == v["hash"]:
            out.unchanged += 1
        elif d in before:
            out.changed.append({"doc": d, "chunks_before": before[d]["chunks"], "chunks": v["chunks"],
                                "new_chunks": len(fresh.get(d, []))})
        elif v["hash"] in hashes_before and hashes_before[v["hash"]] not in now:
            out.moved.append({"doc": d, "was": hashes_before[v["hash"]], "chunks": v["chunks"]})
        else:
            out.new.append({"doc": d, "chunks": v["chunks"], "new_chunks": len(fresh.get(d, []))})
    moved_from = {m["was"] for m in out.moved}
    out.gone = [{"doc": d, "chunks": v["chunks"]} for d, v in before.items()
                if d not in now and d not in moved_from and v["hash"] not in hashes_now]
    counted = {x["doc"] for x in out.new + out.changed}
    out.new_chunks = sorted(i for d, idx in fresh.items() if d in counted for i in idx)
    return out
