"""The corpus as mining sees it: unique chunk texts (what is indexed) and the id/document structure around
them, plus the character 5-gram test that recognises a positive's text inside another chunk.

Memory that does not grow with the text: the corpus is read as a stream; texts and chunk ids go to a temporary
spool file (read back by number), and what stays in memory per chunk is a few integers (8-byte hashes in dicts,
int32 arrays): about 200 bytes a chunk whatever its length, against 1.5-4 KB for its embedding. Look-ups by text
or id hash first and compare the real text, so a hash collision never confuses two chunks.
"""
from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict

from ..formats import check_chunk, norm_text
from ..io import KitError, ReadReport, iter_jsonl
from ..spool import Spool

GRAMS_MEMO = 8192   # 5-gram sets kept (least recently used out): the overlap test's working set, not the corpus


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


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


class HashIndex:
    """key -> number, keyed by a 64-bit hash and checked against the real key (``key_of(number)``)."""

    def __init__(self, key_of):
        self._by_hash: dict[int, int] = {}
        self._collided: dict[str, int] = {}
        self._key_of = key_of

    def get(self, key: str, default=None):
        v = self._by_hash.get(_h(key))
        if v is not None and self._key_of(v) == key:
            return v
        return self._collided.get(key, default)

    def add(self, key: str, value: int) -> None:
        h = _h(key)
        if h in self._by_hash:
            self._collided[key] = value
        else:
            self._by_hash[h] = value

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __getitem__(self, key: str) -> int:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __len__(self) -> int:
        return len(self._by_hash) + len(self._collided)


class _UOfId:
    """chunk id -> unique-text number (``corpus.u_of_id``)."""

    def __init__(self, corpus: "MiningCorpus"):
        self._c = corpus

    def __contains__(self, cid) -> bool:
        return cid in self._c.chunk_of_id

    def __getitem__(self, cid: str) -> int:
        return self._c.u_of_chunk[self._c.chunk_of_id[cid]]

    def __len__(self) -> int:
        return len(self._c.u_of_chunk)


class _IdsOfU:
    """unique-text number -> its chunk ids in corpus order (``corpus.ids_of_u``)."""

    def __init__(self, corpus: "MiningCorpus"):
        self._c = corpus

    def __getitem__(self, u: int) -> list[str]:
        c, out, k = self._c, [], self._c.first_chunk[u]
        while k >= 0:
            out.append(c.ids[k])
            k = c.next_same_u[k]
        return out

    def __len__(self) -> int:
        return len(self._c.first_chunk)


class MiningCorpus:
    """Unique texts with their chunk ids, corpus positions per document, and memoised 5-grams, read as a stream
    (``chunks``: an iterable of chunk dicts, e.g. :meth:`read`)."""

    def __init__(self, chunks=()):
        self.texts = Spool(prefix="kit-mine-")   # unique texts, by number u
        self.ids = Spool(prefix="kit-mine-")     # chunk ids, by chunk number k (corpus order)
        self.u_of_text = HashIndex(self.texts.__getitem__)
        self.chunk_of_id = HashIndex(self.ids.__getitem__)
        self.u_of_chunk, self.doc_of_chunk, self.pos_of_chunk = array("i"), array("i"), array("i")
        self.first_chunk, self.last_chunk, self.next_same_u = array("i"), array("i"), array("i")
        self._norm_first: dict[int, int] = {}      # norm-text hash -> first chunk; chained by next_same_norm
        self.next_same_norm = array("i")
        self._doc_number: dict[str, int] = {}
        self._doc_chunks: list[array] = []
        self.u_of_id, self.ids_of_u = _UOfId(self), _IdsOfU(self)
        self._grams: OrderedDict[int, frozenset] = OrderedDict()
        for c in chunks:
            self._add(c)

    @classmethod
    def read(cls, path, report: ReadReport, required: bool = True) -> "MiningCorpus":
        """prep's chunks from ``path``, streamed; a duplicate id keeps the first chunk (as kit.formats.read_corpus)."""
        corpus = cls()
        line_of_chunk = array("i")
        for n, c in iter_jsonl(path, report, check_chunk):
            k = corpus.chunk_of_id.get(c["id"])
            if k is not None:
                report.add(path, n, f"duplicate id {c['id']!r} (first on line {line_of_chunk[k]}); skipped")
                continue
            line_of_chunk.append(n)
            corpus._add(c)
        if required and not len(corpus.u_of_chunk):
            raise KitError(f"{path}: no usable chunk" + (f"\n{report.summary()}" if report else ""))
        return corpus

    def _add(self, c: dict) -> None:
        text = c["text"]
        k = self.ids.append(c["id"])
        self.chunk_of_id.add(c["id"], k)
        u = self.u_of_text.get(text)
        if u is None:
            u = self.texts.append(text)
            self.u_of_text.add(text, u)
            self.first_chunk.append(k)
            self.last_chunk.append(k)
        else:
            self.next_same_u[self.last_chunk[u]] = k
            self.last_chunk[u] = k
        self.u_of_chunk.append(u)
        self.next_same_u.append(-1)
        nh = _h(norm_text(text))
        self.next_same_norm.append(self._norm_first.get(nh, -1))   # newest first; ids_for_text restores order
        self._norm_first[nh] = k
        doc = str(c.get("doc") or "")
        d = self._doc_number.setdefault(doc, len(self._doc_chunks))
        if d == len(self._doc_chunks):
            self._doc_chunks.append(array("i"))
        self.doc_of_chunk.append(d)
        self.pos_of_chunk.append(len(self._doc_chunks[d]))
        self._doc_chunks[d].append(k)

    def ids_for_text(self, text: str) -> list[str]:
        u = self.u_of_text.get(text)
        if u is not None:
            return list(self.ids_of_u[u])
        norm, out, k = norm_text(text), [], self._norm_first.get(_h(norm_text(text)), -1)
        while k >= 0:
            if norm_text(self.texts[self.u_of_chunk[k]]) == norm:
                out.append(self.ids[k])
            k = self.next_same_norm[k]
        return out[::-1]

    def neighbours(self, cid: str, width: int) -> list[str]:
        k = self.chunk_of_id[cid]
        chunks, i = self._doc_chunks[self.doc_of_chunk[k]], self.pos_of_chunk[k]
        return [self.ids[chunks[j]] for j in range(max(0, i - width), min(len(chunks), i + width + 1)) if j != i]

    def grams(self, u: int) -> frozenset:
        g = self._grams.get(u)
        if g is None:
            g = self._grams[u] = grams(self.texts[u])
            if len(self._grams) > GRAMS_MEMO:
                self._grams.popitem(last=False)
        else:
            self._grams.move_to_end(u)
        return g

    def close(self) -> None:
        self.texts.close()
        self.ids.close()

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
