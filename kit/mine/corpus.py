"""The corpus as mining sees it: unique chunk texts (what is indexed) and the id/document structure around
them, plus the character 5-gram test that recognises a positive's text inside another chunk."""
from __future__ import annotations

from collections import defaultdict

from ..formats import norm_text


def grams(text: str, n: int = 5) -> frozenset[str]:
    t = norm_text(text)
    if len(t) <= n:
        return frozenset([t])
    return frozenset(t[i:i + n] for i in range(len(t) - n + 1))


def containment(a: frozenset, b: frozenset) -> float:
    """|G(a) & G(b)| / min(|G(a)|, |G(b)|): 1.0 when one text is inside the other."""
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & large) / len(small)


class MiningCorpus:
    """Unique texts with their chunk ids, corpus positions per document, and memoised 5-grams."""

    def __init__(self, chunks: list[dict]):
        self.texts: list[str] = []
        self.u_of_text: dict[str, int] = {}
        self.ids_of_u: list[list[str]] = []
        self.u_of_id: dict[str, int] = {}
        self.ids_of_norm: dict[str, list[str]] = defaultdict(list)
        self.position: dict[str, tuple[str, int]] = {}
        self.by_doc: dict[str, list[str]] = defaultdict(list)
        self._grams: dict[int, frozenset] = {}
        for c in chunks:
            self._add(c)

    def _add(self, c: dict) -> None:
        u = self.u_of_text.get(c["text"])
        if u is None:
            u = self.u_of_text[c["text"]] = len(self.texts)
            self.texts.append(c["text"])
            self.ids_of_u.append([])
        self.ids_of_u[u].append(c["id"])
        self.u_of_id[c["id"]] = u
        self.ids_of_norm[norm_text(c["text"])].append(c["id"])
        doc = str(c.get("doc") or "")
        self.position[c["id"]] = (doc, len(self.by_doc[doc]))
        self.by_doc[doc].append(c["id"])

    def ids_for_text(self, text: str) -> list[str]:
        u = self.u_of_text.get(text)
        if u is not None:
            return list(self.ids_of_u[u])
        return list(self.ids_of_norm.get(norm_text(text), []))

    def neighbours(self, cid: str, width: int) -> list[str]:
        doc, i = self.position[cid]
        ids = self.by_doc[doc]
        return [ids[j] for j in range(max(0, i - width), min(len(ids), i + width + 1)) if j != i]

    def grams(self, u: int) -> frozenset:
        g = self._grams.get(u)
        if g is None:
            g = self._grams[u] = grams(self.texts[u])
        return g

    def positive_ids(self, row: dict, note) -> list[str]:
        """A row's positive chunk ids: the given ``pos_ids`` that exist, else chunks whose text equals a
        positive (plain FlagEmbedding rows carry no ids). ``note(message)`` records unknown ids."""
        given = row.get("pos_ids") if isinstance(row.get("pos_ids"), list) else None
        ids = [i for i in (given or []) if i in self.u_of_id]
        partial = bool(given) and len(ids) < len(given)
        if partial:
            note("some pos_ids are not in the corpus; positives matched by text too")
        if not ids or partial:
            for t in row["pos"]:
                ids += [i for i in self.ids_for_text(t) if i not in ids]
        return ids
