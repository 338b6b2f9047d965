"""``openai:MODEL`` and ``dashscope:MODEL``: any OpenAI-compatible /v1/embeddings endpoint, with batching
within the model's limits (:mod:`kit.catalog`), bounded concurrency, tenacity retries and the embedding cache.
API keys come from the environment only and never enter a namespace, a log line or a file."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from ..embed import EmbeddingCache, embed_with_cache
from ..io import KitError, stable_hash
from .base import Provider, normalise

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
        self.token_method, self.count_tokens, self._enc = _token_counter()
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
        if self.count_tokens(text) <= self.max_input_tokens:
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
            n = min(self.count_tokens(t), self.max_input_tokens)
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
        vecs = normalise(np.concatenate(parts))
        self.dim = vecs.shape[1]
        return vecs

    def _encode(self, texts: Sequence[str], desc: str) -> np.ndarray:
        # One embed_with_cache batch = `concurrency` requests run in parallel, cached as soon as they finish.
        vecs, st = embed_with_cache(self.namespace, list(texts), self._compute, self.cache,
                                    self.batch * self.concurrency, progress_desc=desc)
        self.account(st)
        if len(texts) and self.dim is None:
            self.dim = vecs.shape[1]
        return vecs

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, f"{self.spec} queries")

    def encode_corpus(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, f"{self.spec} corpus")


DASHSCOPE_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"


def _limits(model: str, known: dict | None, default_dim) -> dict:
    """Row, request-token and input-token limits from the catalogue (OpenAI's for unknown models)."""
    entry = known or {"batch": 2048, "request_tokens": 300_000, "input_tokens": 8191}
    return {"batch": int(entry["batch"]), "request_tokens": int(entry["request_tokens"]),
            "input_tokens": int(entry["input_tokens"]), "default_dim": default_dim}


def openai_provider(model: str, *, base_url=None, dimensions=None, **kw) -> APIProvider:
    from ..catalog import embedding_model

    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    entry = embedding_model(model)
    default_dim = None if base_url else (dimensions or (entry or {}).get("dims", [None])[0])
    return APIProvider("openai", model, base_url=base_url, api_key_env="OPENAI_API_KEY",
                       limits=_limits(model, entry, default_dim), dimensions=dimensions, **kw)


def dashscope_provider(model: str, *, base_url=None, dimensions=None, **kw) -> APIProvider:
    from ..catalog import embedding_model

    entry = embedding_model(model)
    if entry is None or not model.startswith("text-embedding-v"):
        raise KitError(f"dashscope model {model!r} unknown; one of text-embedding-v1 .. v4")
    if dimensions and dimensions not in entry["dims"]:
        raise KitError(f"{model} supports dimensions {tuple(entry['dims'])}, not {dimensions}")
    default_dim = dimensions or (None if base_url else entry["dims"][0])
    return APIProvider("dashscope", model, base_url=base_url or DASHSCOPE_BASE_URL,
                       api_key_env="DASHSCOPE_API_KEY", limits=_limits(model, entry, default_dim),
                       dimensions=dimensions, **kw)
