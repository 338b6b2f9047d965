"""Embedding providers behind one interface: API (openai:, dashscope:), local:, bm25, adapter:.

Every dense provider embeds through :func:`kit.embed.embed_with_cache`, so each text is paid for once,
ever: the namespace is (provider, base_url, model, dimensions) and the key is the text hash. API keys
come from the environment only and never enter a namespace, a log line or a file.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from kit.embed import EmbeddingCache, LocalEncoder, embed_with_cache
from kit.io import KitError, read_json, stable_hash

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent.parent
PRICES_PATH = REPO / "configs" / "prices.yaml"
DASHSCOPE_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"

# Provider limits (see configs/prices.yaml for the sources). OpenAI: 2048 inputs and ~300k tokens per
# request, 8191 tokens per input. DashScope compatible mode: v3/v4 take 10 rows of <= 8192 tokens,
# v1/v2 take 25 rows of <= 2048 tokens; dimensions are selectable only for v3/v4.
OPENAI_LIMITS = {"batch": 2048, "request_tokens": 300_000, "input_tokens": 8191}
DASHSCOPE_LIMITS = {
    "text-embedding-v1": {"batch": 25, "request_tokens": 25 * 2048, "input_tokens": 2048, "dims": (1536,)},
    "text-embedding-v2": {"batch": 25, "request_tokens": 25 * 2048, "input_tokens": 2048, "dims": (1536,)},
    "text-embedding-v3": {"batch": 10, "request_tokens": 10 * 8192, "input_tokens": 8192,
                          "dims": (1024, 768, 512, 256, 128, 64)},
    "text-embedding-v4": {"batch": 10, "request_tokens": 10 * 8192, "input_tokens": 8192,
                          "dims": (2048, 1536, 1024, 768, 512, 256, 128, 64)},
}
OPENAI_DIMS = {"text-embedding-ada-002": 1536, "text-embedding-3-small": 1536, "text-embedding-3-large": 3072}


def _new_stats() -> dict:
    return {"tokens": 0, "api_calls": 0, "cached": 0, "encoded": 0, "encode_seconds": 0.0}


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class Provider:
    """Base class: encode queries / corpus to L2-normalised float32, and exact top-k search."""

    spec: str = ""
    kind: str = "dense"
    dim: int | None = None
    max_input_tokens: int | None = None
    model_name: str = ""

    def __init__(self):
        self.stats = _new_stats()

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode_corpus(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _account(self, st: dict) -> None:
        self.stats["cached"] += int(st.get("cached", 0))
        self.stats["encoded"] += int(st.get("encoded", 0))
        self.stats["encode_seconds"] += float(st.get("seconds", 0.0))

    def search(self, queries: list[str], corpus: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss
        d = self.encode_corpus(list(corpus))
        q = self.encode_queries(list(queries))
        index = faiss.IndexFlatIP(d.shape[1])
        index.add(np.ascontiguousarray(d, dtype=np.float32))
        scores, idx = index.search(np.ascontiguousarray(q, dtype=np.float32), min(k, len(corpus)))
        return scores, idx


# --------------------------------------------------------------------------------------------------
# API providers (OpenAI and any OpenAI-compatible server, DashScope compatible mode)
# --------------------------------------------------------------------------------------------------

def _token_counter():
    """Token estimate for batching/truncation. tiktoken (cl100k_base) when installed and its encoding
    file is available offline; otherwise the UTF-8 byte length, which is a true upper bound for any
    byte-level BPE (every token covers >= 1 byte) -- conservative for Chinese (3 bytes/char)."""
    try:
        import tiktoken
        enc = tiktoken.get_encoding("cl100k_base")
        return "tiktoken", (lambda s: len(enc.encode(s, disallowed_special=()))), enc
    except Exception:
        return "utf8-bytes", (lambda s: len(s.encode("utf-8"))), None


class APIProvider(Provider):
    """OpenAI-compatible /v1/embeddings with batching, bounded concurrency, retries and the cache."""

    def __init__(self, provider: str, model: str, *, base_url: str | None, api_key_env: str,
                 limits: dict, dimensions: int | None = None, cache=None, batch_size: int | None = None,
                 concurrency: int = 4, max_retries: int = 6, retry_max_wait: float = 30.0,
                 timeout: float = 60.0):
        super().__init__()
        self.provider = provider
        self.model_name = model
        self.spec = f"{provider}:{model}"
        self.kind = "dense"
        self.base_url = base_url
        self.dimensions = dimensions
        self.batch = min(int(batch_size or limits["batch"]), limits["batch"])
        self.request_tokens = limits["request_tokens"]
        self.max_input_tokens = limits["input_tokens"]
        self.dim = dimensions or limits.get("default_dim")
        self.concurrency = max(1, int(concurrency))
        self.max_retries = max_retries
        self.retry_max_wait = retry_max_wait
        self.timeout = timeout
        self.cache = cache if isinstance(cache, EmbeddingCache) else (None if cache is False else EmbeddingCache(cache))
        self._api_key_env = api_key_env
        self._client = None
        self.token_method, self._count, self._enc = _token_counter()
        self.truncated = 0
        self.namespace = "api:" + stable_hash({"provider": provider, "base_url": base_url or "", "model": model,
                                               "dimensions": dimensions})

    def _get_client(self):
        if self._client is None:
            from openai import OpenAI
            key = os.environ.get(self._api_key_env)
            if not key:
                raise KitError(f"{self.spec}: set {self._api_key_env} in the environment (keys are never "
                               f"read from files)")
            # max_retries=0: tenacity below owns retrying, with our backoff and error classes.
            self._client = OpenAI(api_key=key, base_url=self.base_url, max_retries=0, timeout=self.timeout)
        return self._client

    def _truncate(self, text: str) -> str:
        if self._count(text) <= self.max_input_tokens:
            return text
        self.truncated += 1
        if self._enc is not None:
            return self._enc.decode(self._enc.encode(text, disallowed_special=())[: self.max_input_tokens])
        b = text.encode("utf-8")[: self.max_input_tokens]
        return b.decode("utf-8", errors="ignore")

    def _requests(self, texts: list[str]) -> list[list[str]]:
        """Split into requests within the row limit and the per-request token budget."""
        out, cur, tok = [], [], 0
        for t in texts:
            n = min(self._count(t), self.max_input_tokens)
            if cur and (len(cur) >= self.batch or tok + n > self.request_tokens):
                out.append(cur)
                cur, tok = [], 0
            cur.append(t)
            tok += n
        if cur:
            out.append(cur)
        return out

    def _call(self, inputs: list[str]) -> np.ndarray:
        import openai
        from tenacity import (retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter)

        def transient(e: BaseException) -> bool:
            if isinstance(e, (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                              openai.InternalServerError)):
                return True
            return isinstance(e, openai.APIStatusError) and (e.status_code == 429 or e.status_code >= 500)

        @retry(retry=retry_if_exception(transient), stop=stop_after_attempt(self.max_retries),
               wait=wait_exponential_jitter(initial=0.5, max=self.retry_max_wait), reraise=True)
        def once():
            kw = {"model": self.model_name, "input": inputs, "encoding_format": "float"}
            if self.dimensions:
                kw["dimensions"] = self.dimensions
            self.stats["api_calls"] += 1
            return self._get_client().embeddings.create(**kw)

        try:
            resp = once()
        except openai.APIError as e:
            # str(e) carries the server's message, never the key.
            raise KitError(f"{self.spec} at {self.base_url or 'default endpoint'}: embedding request failed "
                           f"after retries ({type(e).__name__}: {e}); finished batches are cached, re-run "
                           f"to resume") from None
        if resp.usage is not None:
            self.stats["tokens"] += int(getattr(resp.usage, "total_tokens", 0) or resp.usage.prompt_tokens or 0)
        data = sorted(resp.data, key=lambda d: d.index)
        vecs = np.asarray([d.embedding for d in data], dtype=np.float32)
        if self.dimensions and vecs.shape[1] != self.dimensions:
            raise KitError(f"{self.spec}: asked for dimensions={self.dimensions} but the server returned "
                           f"{vecs.shape[1]}-d vectors (it may not support `dimensions`)")
        return vecs

    def _compute(self, texts: list[str]) -> np.ndarray:
        reqs = self._requests([self._truncate(t) for t in texts])
        if len(reqs) == 1 or self.concurrency == 1:
            parts = [self._call(r) for r in reqs]
        else:
            with ThreadPoolExecutor(self.concurrency) as pool:
                parts = list(pool.map(self._call, reqs))
        vecs = _normalise(np.concatenate(parts))
        self.dim = vecs.shape[1]
        return vecs

    def _encode(self, texts: Sequence[str], desc: str) -> np.ndarray:
        # One embed_with_cache batch = `concurrency` requests run in parallel, cached as soon as they finish.
        vecs, st = embed_with_cache(self.namespace, list(texts), self._compute, self.cache,
                                    self.batch * self.concurrency, progress_desc=desc)
        self._account(st)
        if len(texts) and self.dim is None:
            self.dim = vecs.shape[1]
        return vecs

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, f"{self.spec} queries")

    def encode_corpus(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, f"{self.spec} corpus")


# --------------------------------------------------------------------------------------------------
# local:, bm25, adapter:
# --------------------------------------------------------------------------------------------------

class LocalProvider(Provider):
    def __init__(self, name_or_path: str, *, cache=None, batch_size: int | None = None, precision: str = "auto",
                 max_length: int | None = None, progress: bool = True):
        super().__init__()
        self.encoder = LocalEncoder(name_or_path, precision=precision, batch_size=batch_size or 32,
                                    max_length=max_length, cache=cache, progress=progress)
        self.spec = f"local:{name_or_path}"
        self.kind = "dense"
        self.model_name = self.spec
        self.max_input_tokens = self.encoder.max_length
        self.dim = None  # known after the first encode (loading weights just for .dim would defeat the cache)

    def _after(self, vecs):
        self._account(self.encoder.last_stats)
        if vecs.size:
            self.dim = int(vecs.shape[1])
        return vecs

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._after(self.encoder.encode_queries(texts))

    def encode_corpus(self, texts: list[str]) -> np.ndarray:
        return self._after(self.encoder.encode_passages(texts))


def jieba_tokens(text: str) -> list[str]:
    """cut_for_search adds the sub-words of long words, so 中华人民共和国 also matches 人民; whitespace and
    punctuation-only tokens are dropped, ASCII lower-cased."""
    import jieba
    return [t.lower() for t in jieba.cut_for_search(text) if t.strip() and any(c.isalnum() for c in t)]


class BM25Provider(Provider):
    """BM25 via bm25s (Lucene scoring, sparse scipy matrices, works offline) fed jieba tokens: bm25s's own
    tokenizer splits on whitespace/regex, which leaves Chinese as whole sentences, so we pre-tokenise."""

    def __init__(self, k1: float = 1.5, b: float = 0.75):
        super().__init__()
        self.spec = "bm25"
        self.kind = "sparse"
        self.model_name = "bm25"
        self.dim = None
        self.max_input_tokens = None
        self.k1, self.b = k1, b

    def encode_queries(self, texts):
        raise KitError("bm25 is a sparse model: it has no dense embeddings; use search()")

    encode_corpus = encode_queries

    def search(self, queries: list[str], corpus: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        import bm25s
        t0 = time.perf_counter()
        corpus_tokens = [jieba_tokens(t) or ["\u2205"] for t in corpus]
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(w, len(vocab)) for w in toks] for toks in corpus_tokens]
        retriever = bm25s.BM25(k1=self.k1, b=self.b)
        retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        k = min(k, len(corpus))
        scores = np.zeros((len(queries), k), dtype=np.float32)
        idx = np.zeros((len(queries), k), dtype=np.int64)
        for i, q in enumerate(queries):
            qids = [vocab[w] for w in jieba_tokens(q) if w in vocab]
            s = retriever.get_scores(qids) if qids else np.zeros(len(corpus), dtype=np.float32)
            s = np.asarray(s, dtype=np.float32)
            top = np.argsort(-s, kind="stable")[:k]
            idx[i], scores[i] = top, s[top]
        self.stats["encoded"] += len(corpus) + len(queries)
        self.stats["encode_seconds"] += time.perf_counter() - t0
        return scores, idx


class AdapterProvider(Provider):
    """A trained query map (kit.adapter) over a base provider: corpus vectors are the base's, unchanged."""

    def __init__(self, adapter_dir: str, base: Provider):
        super().__init__()
        from kit.adapter import load_adapter
        self.base = base
        self.adapter_dir = adapter_dir
        self.apply = load_adapter(adapter_dir)
        self.spec = f"adapter:{adapter_dir}"
        self.kind = "dense"
        self.model_name = base.model_name  # costs are the base model's tokens
        self.max_input_tokens = base.max_input_tokens
        self.dim = base.dim
        self.stats = base.stats  # the tokens paid are the base provider's

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return _normalise(self.apply(self.base.encode_queries(texts)))

    def encode_corpus(self, texts: list[str]) -> np.ndarray:
        v = self.base.encode_corpus(texts)
        self.dim = self.base.dim
        return v


def make_provider(spec: str, *, base_url: str | None = None, dimensions: int | None = None, cache=None,
                  batch_size=None, concurrency: int = 4, precision="auto", **kw) -> Provider:
    """Build a provider from a spec string: openai:MODEL, dashscope:MODEL, local:PATH, bm25, adapter:DIR.

    Extra ``kw``: max_retries, retry_max_wait, timeout (API); max_length, progress (local); k1, b (bm25).
    """
    spec = spec.strip()
    prefix, _, rest = spec.partition(":")
    if spec == "bm25":
        return BM25Provider(**{k: v for k, v in kw.items() if k in ("k1", "b")})
    api_kw = {k: v for k, v in kw.items() if k in ("max_retries", "retry_max_wait", "timeout")}
    if prefix == "openai" and rest:
        limits = dict(OPENAI_LIMITS, default_dim=None if base_url or os.environ.get("OPENAI_BASE_URL")
                      else (dimensions or OPENAI_DIMS.get(rest)))
        return APIProvider("openai", rest, base_url=base_url or os.environ.get("OPENAI_BASE_URL"),
                           api_key_env="OPENAI_API_KEY", limits=limits, dimensions=dimensions, cache=cache,
                           batch_size=batch_size, concurrency=concurrency, **api_kw)
    if prefix == "dashscope" and rest:
        if rest not in DASHSCOPE_LIMITS:
            raise KitError(f"dashscope model {rest!r} unknown; one of {sorted(DASHSCOPE_LIMITS)}")
        lim = DASHSCOPE_LIMITS[rest]
        if dimensions and dimensions not in lim["dims"]:
            raise KitError(f"{rest} supports dimensions {lim['dims']}, not {dimensions}")
        limits = dict(lim, default_dim=dimensions or (None if base_url else lim["dims"][0]))
        return APIProvider("dashscope", rest, base_url=base_url or DASHSCOPE_BASE_URL,
                           api_key_env="DASHSCOPE_API_KEY", limits=limits, dimensions=dimensions, cache=cache,
                           batch_size=batch_size, concurrency=concurrency, **api_kw)
    if prefix == "local" and rest:
        return LocalProvider(rest, cache=cache, batch_size=batch_size, precision=precision,
                             **{k: v for k, v in kw.items() if k in ("max_length", "progress")})
    if prefix == "adapter" and rest:
        meta_path = Path(rest) / "adapter.json"
        if not meta_path.exists():
            raise KitError(f"{meta_path}: no adapter.json (train one with `kit adapter`)")
        meta = read_json(meta_path)
        base = make_provider(meta["base_spec"], base_url=base_url or meta.get("base_url"),
                             dimensions=dimensions or meta.get("dimensions"), cache=cache,
                             batch_size=batch_size, concurrency=concurrency, precision=precision, **kw)
        return AdapterProvider(rest, base)
    raise KitError(f"unknown provider spec {spec!r}: use openai:MODEL, dashscope:MODEL, local:NAME_OR_PATH, "
                   f"bm25 or adapter:DIR")


def price_per_million_tokens(model_name) -> float | None:
    """USD per 1M input tokens from configs/prices.yaml; 0 for local/bm25 (compute not included)."""
    import yaml
    name = str(model_name)
    if name == "bm25" or name.startswith("local:"):
        return 0.0
    prices = yaml.safe_load(PRICES_PATH.read_text(encoding="utf-8")) or {}
    models = prices.get("models", {})
    key = name.split(":", 1)[1] if ":" in name and name.split(":", 1)[0] in ("openai", "dashscope") else name
    entry = models.get(key)
    if entry is None:
        return None
    return float(entry["usd_per_1m_tokens"])
