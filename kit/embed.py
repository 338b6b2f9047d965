"""Embedding with local models, and the on-disk embedding cache every stage shares.

``EmbeddingCache`` is a SQLite file of float32 vectors keyed by (namespace, text hash). A namespace
says *who* embedded the text and *how*: for a local model a fingerprint of its weights plus pooling,
max length and precision; for an API provider its endpoint, model and dimensions. Mining, the
adapter and the benchmark all go through it, so a corpus is embedded (or paid for) once per model.
SQLite is used because it is in the standard library, survives a killed process mid-write (each
batch is one transaction), and lets two stages read the same cache.

``LocalEncoder`` embeds with transformers directly (not sentence-transformers) because it needs
control over the pieces that decide speed here: unique texts only, cache look-up before the model
is touched, batches sorted by length to minimise padding, and bf16 autocast on CPUs that support it
(about 3x faster on this kind of machine, cosine >= 0.9999 to fp32).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .cache import SQLiteCache
from .device import cpu_supports_bf16, resolve_device, resolve_precision  # noqa: F401 (cpu_supports_bf16 re-exported)
from .io import KitError, cache_dir, stable_hash
from .registry import ModelSpec, ensure_available, resolve

def default_cache_path() -> Path:
    return cache_dir() / "embeddings.sqlite"


class EmbeddingCache(SQLiteCache):
    """Vectors keyed by (namespace, sha256(text)). Thread-safe; each ``put_many`` is one transaction."""

    def __init__(self, path: str | os.PathLike | None = None):
        super().__init__(path or default_cache_path(), [
            "CREATE TABLE IF NOT EXISTS emb (ns TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL,"
            " vec BLOB NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID"])

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def get_many(self, ns: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Return {text: vector} for the texts already cached under ``ns``."""
        keys = {self.key(t): t for t in texts}
        return {keys[k]: np.frombuffer(blob, dtype=np.float32, count=dim) for k, dim, blob in
                self.select_in("SELECT key, dim, vec FROM emb WHERE ns=? AND key IN ({})", [ns], list(keys))}

    def put_many(self, ns: str, texts: Sequence[str], vecs: np.ndarray) -> None:
        vecs = np.asarray(vecs, dtype=np.float32)
        self.write("INSERT OR REPLACE INTO emb (ns, key, dim, vec) VALUES (?,?,?,?)",
                   [(ns, self.key(t), int(v.shape[0]), v.tobytes()) for t, v in zip(texts, vecs)])

    def count(self, ns: str | None = None) -> int:
        if ns is None:
            return self.one("SELECT COUNT(*) FROM emb")[0]
        return self.one("SELECT COUNT(*) FROM emb WHERE ns=?", (ns,))[0]


def embed_with_cache(ns: str, texts: Sequence[str], compute, cache: EmbeddingCache | None,
                     batch_size: int, progress_desc: str | None = None,
                     sort_key=len) -> tuple[np.ndarray, dict]:
    """Embed ``texts`` (duplicates allowed) through ``cache``; ``compute(list[str]) -> ndarray`` sees only
    unique uncached texts, in batches sorted by ``sort_key``, and every finished batch is cached at once
    (a killed run loses at most one batch). Returns (vectors in input order, stats)."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    unique = list(dict.fromkeys(texts))
    have = cache.get_many(ns, unique) if cache is not None else {}
    todo = sorted((t for t in unique if t not in have), key=sort_key)
    show = progress_desc is not None and len(todo) > 0
    bar = tqdm(total=len(todo), desc=progress_desc, unit="text", disable=not show or None, leave=False) if show else None
    for i in range(0, len(todo), batch_size):
        batch = todo[i:i + batch_size]
        vecs = np.asarray(compute(batch), dtype=np.float32)
        if vecs.shape[0] != len(batch):
            raise KitError(f"embedding returned {vecs.shape[0]} vectors for {len(batch)} texts")
        if cache is not None:
            cache.put_many(ns, batch, vecs)
        for t, v in zip(batch, vecs):
            have[t] = v
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), {"unique": 0, "cached": 0, "encoded": 0, "seconds": 0.0}
    out = np.stack([have[t] for t in texts]).astype(np.float32, copy=False)
    stats = {"unique": len(unique), "cached": len(unique) - len(todo), "encoded": len(todo),
             "seconds": round(time.perf_counter() - t0, 3)}
    return out, stats


_FP_MEMO: dict[tuple, str] = {}
# The kit's own records in a model folder: how it was made and what bench measured with it. Bench rewrites
# kit_results.json on every run; were it part of the fingerprint, every bench would re-encode with the model and
# re-run the stages downstream of it. (kit_model.json stays in: it says how the model embeds.)
_RECORDS_NOT_WEIGHTS = frozenset({"kit_manifest.json", "kit_results.json"})


def weights_fingerprint(folder: Path) -> str:
    """sha256 over a model folder's weight files (and tokenizer), memoised by (path, size, mtime)."""
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt", ".json", ".model")
                   and not p.name.startswith(".") and p.name not in _RECORDS_NOT_WEIGHTS)
    sig = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if sig in _FP_MEMO:
        return _FP_MEMO[sig]
    memo_dir = default_cache_path().parent / "fingerprints"
    memo_file = memo_dir / (hashlib.sha256(repr(sig).encode()).hexdigest()[:32] + ".txt")
    if memo_file.exists():
        fp = memo_file.read_text().strip()
    else:
        h = hashlib.sha256()
        for p in files:
            h.update(p.name.encode())
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
        fp = h.hexdigest()[:24]
        memo_dir.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_suffix(".tmp")
        tmp.write_text(fp)
        os.replace(tmp, memo_file)
    _FP_MEMO[sig] = fp
    return fp


class LocalEncoder:
    """Embeds with a local or hub model as its :class:`ModelSpec` says (instruction, pooling, length)."""

    def __init__(self, model: str | ModelSpec, *, device: str | None = None, precision: str = "auto",
                 batch_size: int = 32, max_length: int | None = None,
                 cache: EmbeddingCache | str | os.PathLike | None | bool = None, progress: bool = True):
        self.spec = model if isinstance(model, ModelSpec) else resolve(model)
        self.batch_size = batch_size
        self.max_length = int(max_length or self.spec.max_length)
        self.progress = progress
        self._device_arg = device
        self._precision_arg = precision
        self._model = None
        self._tokenizer = None
        if cache is False:
            self.cache = None
        elif isinstance(cache, EmbeddingCache):
            self.cache = cache
        else:
            self.cache = EmbeddingCache(cache)
        self.last_stats: dict = {}

    # -- lazy model loading: a fully cached run never loads the weights ---------------------------
    @property
    def device(self) -> str:
        return resolve_device(self._device_arg)

    @property
    def precision(self) -> str:
        return resolve_precision(self._precision_arg, self.device)

    @property
    def load_dtype(self) -> str:
        """The torch dtype the weights are loaded in: float32 whatever the folder stores (``kit train`` / ``kit
        merge`` save fp16/bf16 weights, and transformers would load those as stored: fp16 on a CPU is slow, and a
        tuned model must be timed in the same dtype as its fp32 base), except when the precision is fp16 (asked for
        explicitly, or ``auto`` on CUDA). bf16 is autocast over fp32 weights."""
        return "float16" if self.precision == "fp16" else "float32"

    @property
    def namespace(self) -> str:
        path = Path(self.spec.name_or_path)
        fp = weights_fingerprint(path) if path.is_dir() else f"hub:{self.spec.name_or_path}"
        return "local:" + stable_hash({"fp": fp, "pooling": self.spec.pooling, "normalize": self.spec.normalize,
                                       "max_length": self.max_length, "precision": self.precision})

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModel, AutoTokenizer
            ensure_available(self.spec.name_or_path)   # a missing folder or unknown id: one line, no traceback
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.spec.name_or_path)
                # fp32 whatever the folder stores (bf16/fp16 model folders) unless fp16 is the precision
                self._model = AutoModel.from_pretrained(self.spec.name_or_path,
                                                        dtype=getattr(torch, self.load_dtype))
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise KitError(f"cannot load model {self.spec.name_or_path!r}: {first[:300]}") from None
            self._model.eval().to(self.device)
        return self._model, self._tokenizer

    @property
    def dim(self) -> int:
        model, _ = self._load()
        return int(model.config.hidden_size)

    def _compute(self, batch: list[str]) -> np.ndarray:
        import torch
        model, tok = self._load()
        enc = tok(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" and self.device == "cpu"
                    else torch.autocast("cuda", dtype=torch.bfloat16) if self.precision == "bf16"
                    else _null())
        with torch.inference_mode(), autocast:
            hidden = model(**enc).last_hidden_state
            if self.spec.pooling == "cls":
                emb = hidden[:, 0]
            else:
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            emb = emb.float()
            if self.spec.normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb.cpu().numpy()

    def encode(self, texts: Sequence[str], desc: str | None = None) -> np.ndarray:
        """Embed texts exactly as given (instruction already applied)."""
        vecs, self.last_stats = embed_with_cache(
            self.namespace, list(texts), self._compute, self.cache, self.batch_size,
            progress_desc=(desc if self.progress else None))
        return vecs

    def encode_queries(self, queries: Sequence[str], desc: str = "embedding queries") -> np.ndarray:
        return self.encode([self.spec.query_text(q) for q in queries], desc)

    def encode_passages(self, passages: Sequence[str], desc: str = "embedding passages") -> np.ndarray:
        return self.encode([self.spec.passage_text(p) for p in passages], desc)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
