"""What every engine shares: the job description handed to workers, the input as shards of texts, and the
function that encodes one shard (so the three engines give the same vectors: same texts per shard, same cache
look-up, same length-sorted batches)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from ..io import KitError, write_json
from .shards import texts_digest

KINDS = ("passage", "query")


@dataclass
class EncodeJob:
    """Everything a worker needs, as JSON (torchrun ranks read it from the shard folder; Ray actors get it)."""

    spec: dict                 # ModelSpec.to_json()
    kind: str                  # passage | query: which instruction is prepended
    device: str                # cpu | cuda (a torchrun rank uses cuda:LOCAL_RANK)
    precision: str             # resolved: fp32 | bf16 | fp16
    batch_size: int
    max_length: int
    cache_path: str | None     # the EmbeddingCache file, or None for none
    namespace: str             # what the driver computed: a worker with other weights refuses to run
    shard_dir: str
    total: int
    shard_size: int
    texts_file: str | None = None          # torchrun: the texts, one JSON string a line
    shard_shas: list[str] = field(default_factory=list)   # texts digest of each shard
    todo: list[int] = field(default_factory=list)         # shards to encode (the others are done)
    head: str = "dense"        # dense | sparse (a bge-m3 folder's lexical weights: kit/encode/heads.py)

    def save(self, path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path) -> "EncodeJob":
        try:
            return cls(**json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as e:
            raise KitError(f"{path}: not a readable encode job ({e})") from None

    def encoder(self, device: str | None = None, cache: bool = True):
        from ..embed import EmbeddingCache, LocalEncoder
        from ..registry import ModelSpec
        from .heads import SparseHeadEncoder

        cls = SparseHeadEncoder if self.head == "sparse" else LocalEncoder
        enc = cls(ModelSpec(**self.spec), device=device or self.device, precision=self.precision,
                           batch_size=self.batch_size, max_length=self.max_length,
                           cache=(EmbeddingCache(self.cache_path) if cache and self.cache_path else False),
                           progress=False)
        if enc.namespace != self.namespace:
            raise KitError(f"worker: model {self.spec['name_or_path']} here embeds as {enc.namespace}, the job was "
                           f"planned for {self.namespace} (other weights, precision or max_length on this node)")
        return enc


def instructed(spec, kind: str, texts: Sequence[str]) -> list[str]:
    if kind == "query":
        return [spec.query_text(t) for t in texts]
    return [spec.passage_text(t) for t in texts]


def iter_shard_texts(source: Iterable[str], shard_size: int) -> Iterator[tuple[int, list[str]]]:
    """(shard index, its texts) from a stream of texts; one shard in memory at a time."""
    buf: list[str] = []
    i = 0
    for t in source:
        buf.append(t)
        if len(buf) == shard_size:
            yield i, buf
            buf, i = [], i + 1
    if buf:
        yield i, buf


def encode_shard(encoder, kind: str, texts: Sequence[str], desc: str | None = None) -> tuple[np.ndarray, dict]:
    """One shard through the encoder (cache look-up, unique texts, length-sorted batches): the same code in every
    engine, so the same shard gives the same vectors."""
    vecs = encoder.encode(instructed(encoder.spec, kind, texts), desc=desc)
    return vecs, dict(encoder.last_stats)


def add_stats(total: dict, part: dict) -> None:
    for k in ("unique", "cached", "encoded"):
        total[k] = total.get(k, 0) + int(part.get(k, 0))


def source_iter(source) -> Callable[[], Iterable[str]]:
    """A zero-argument function that streams the texts afresh (the input is read more than once: a digest pass,
    then the encoding)."""
    if callable(source):
        return source
    if isinstance(source, (list, tuple)) or hasattr(source, "__getitem__") and hasattr(source, "__len__"):
        return lambda: iter(source)
    raise KitError("encode: texts must be a list or a function returning a fresh iterator")


def digest_and_count(stream: Iterable[str]) -> tuple[str, int]:
    """Digest of all the texts in order, and their number (one streaming pass)."""
    n = 0

    def counted():
        nonlocal n
        for t in stream:
            if not isinstance(t, str):
                raise KitError(f"encode: text {n} is {type(t).__name__}, not a text")
            n += 1
            yield t
    d = texts_digest(counted())
    return d, n


def shards_to_encode(stream: Iterable[str], shard_size: int, shards, stats: dict) -> Iterator[tuple[int, list[str], str]]:
    """(shard number, texts, their digest) of each shard still to encode; a shard already written for the same texts
    is counted in ``stats`` as reused and skipped, one written for other texts (or damaged) is said and redone. The
    one walk over the shards every engine makes."""
    from ..logs import note

    for i, texts in iter_shard_texts(stream, shard_size):
        sha = texts_digest(texts)
        why = shards.problem(i, sha)
        if why is None:
            stats["shards_reused"] += 1
            add_stats(stats, {"unique": len(texts), "cached": len(texts)})
            continue
        if why != "missing":
            note(f"[kit] {shards.root}: shard {i} {why}: encoding it again")
        yield i, texts, sha
