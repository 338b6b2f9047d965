"""Rerank APIs: any OpenAI-compatible ``POST {base_url}/rerank`` (vLLM, TEI, Xinference, Jina, Cohere-style) and
DashScope's native text-rerank endpoint (gte-rerank, gte-rerank-v2, qwen3-rerank), which is not
OpenAI-compatible.

==============  =====================================================================================================
protocol        request / response
==============  =====================================================================================================
``/v1/rerank``  ``{model, query, documents: [text], top_n}`` -> ``{results: [{index, relevance_score}], usage?}``
dashscope       ``{model, input: {query, documents}, parameters: {top_n, return_documents: false}}`` ->
                ``{output: {results: [{index, relevance_score}]}, usage: {total_tokens}, request_id}``
==============  =====================================================================================================

DashScope's limits (help.aliyun.com/zh/model-studio/text-rerank-api): 500 documents and 30,000 tokens per request
(query tokens x documents + document tokens), 4,000 tokens per item; prices and limits live in the model catalogue
(``rerank:`` in kit/data/catalog.yaml). Requests are split within them, sent ``concurrency`` at a time, retried
with tenacity on 429/5xx/timeouts/connection errors (a server's Retry-After honoured), and every request's scores
are cached the moment it returns. httpx is used directly because no SDK speaks these endpoints (the OpenAI SDK
has no rerank call); the key handling is the embedding providers' (:mod:`kit.providers.client`: environment only,
a stop flag checked before every attempt) and the endpoint is redacted (:mod:`kit.secrets`) before it is
hashed, printed or stored.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

from ...io import KitError, stable_hash
from ...secrets import redact_text, redact_url, split_credentials
from ..client import StopFlag, api_key
from ..tokens import pack_requests, token_counter
from .base import Reranker

DASHSCOPE_RERANK_URL = "https://dashscope.aliyuncs.com/api/v1"
DASHSCOPE_PATH = "/services/rerank/text-rerank/text-rerank"


class RerankHTTPError(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.retry_after = status, retry_after


def _retry_after(headers) -> float | None:
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:   # an HTTP date: rare for APIs; our own backoff instead
        return None
    return None


class APIReranker(Reranker):
    score_kind = "probability"

    def __init__(self, provider: str, model: str, *, base_url: str, protocol: str, api_key_env: str,
                 key_required: bool, limits: dict, batch_size: int | None = None, concurrency: int = 4,
                 timeout: float = 60.0, max_retries: int = 6, retry_max_wait: float = 30.0, cache=None,
                 progress: bool = True):
        super().__init__(cache, progress)
        self.provider, self.model_name, self.protocol = provider, model, protocol
        self.spec = f"{provider}:{model}"
        self.base_url, self.endpoint = base_url, redact_url(base_url)   # the endpoint is what is stored
        docs = int(batch_size or limits["max_documents"])
        self.max_documents = max(1, min(docs, limits["max_documents"]) if limits["known"] else docs)
        self.request_tokens, self.max_input_tokens = limits["request_tokens"], limits["input_tokens"]
        self.price_per_1m_tokens = limits["price"]
        self.concurrency, self.timeout = max(1, int(concurrency)), float(timeout)
        self.max_retries, self.retry_max_wait = max(1, int(max_retries)), float(retry_max_wait)
        self._api_key_env, self._key_required = api_key_env, key_required
        counter = token_counter(limits.get("tokenizer"))
        self.count_tokens, self.token_method = counter.count, counter.method
        self._client = None
        self._lock = threading.Lock()   # the client is built once; stats are added to from worker threads

    @property
    def namespace(self) -> str:
        return "rerank-api:" + stable_hash({"provider": self.provider, "base_url": self.endpoint or "",
                                            "model": self.model_name})

    # -- one request ---------------------------------------------------------------------------------
    def _http(self):
        with self._lock:
            return self._client or self._new_client()

    def _new_client(self):
        if self._client is None:
            import httpx
            key = api_key(self._api_key_env, self.base_url, required=self._key_required)
            url, params = split_credentials(self.base_url)
            headers = {"Content-Type": "application/json"}
            if key != "not-needed":
                headers["Authorization"] = f"Bearer {key}"
            self._url = url.rstrip("/") + (DASHSCOPE_PATH if self.protocol == "dashscope" else "/rerank")
            self._client = httpx.Client(headers=headers, params=params or None, timeout=self.timeout)
        return self._client

    def body(self, query: str, docs: list[str]) -> dict:
        if self.protocol == "dashscope":
            return {"model": self.model_name, "input": {"query": query, "documents": docs},
                    "parameters": {"top_n": len(docs), "return_documents": False}}
        return {"model": self.model_name, "query": query, "documents": docs, "top_n": len(docs)}

    def parse(self, data: dict, query: str, docs: list[str]) -> list[float]:
        results = (data.get("output") or {}).get("results") if self.protocol == "dashscope" else data.get("results")
        if not isinstance(results, list):
            raise KitError(f"{self.spec} at {self.endpoint}: the answer has no results list: {redact_text(data)[:300]}")
        scores: list[float | None] = [None] * len(docs)
        for r in results:
            i = int(r["index"])
            scores[i] = float(r.get("relevance_score", r.get("score")))
        if any(s is None for s in scores):
            raise KitError(f"{self.spec}: the server scored {sum(s is not None for s in scores)} of {len(docs)} "
                           f"documents")
        usage = data.get("usage") or {}
        tokens = usage.get("total_tokens") or usage.get("prompt_tokens")
        tokens = int(tokens) if tokens else self.request_cost_tokens(query, docs)   # the server's count if it gives one
        with self._lock:
            self.stats["tokens"] += tokens
        return scores   # type: ignore[return-value]

    def request_cost_tokens(self, query: str, docs: list[str]) -> int:
        """DashScope's count: query tokens x documents + document tokens (each capped at the item limit)."""
        cap = self.max_input_tokens or 10**9
        return min(self.count_tokens(query), cap) * len(docs) + sum(min(self.count_tokens(d), cap) for d in docs)

    def _post(self, query: str, docs: list[str], stop: StopFlag) -> list[float]:
        stop.check()   # never a new paid request once a stop was asked for
        with self._lock:
            self.stats["api_calls"] += 1
        client = self._http()
        resp = client.post(self._url, json=self.body(query, docs))
        if resp.status_code >= 400:
            raise RerankHTTPError(resp.status_code, redact_text(resp.text[:300]), _retry_after(resp.headers))
        try:
            data = resp.json()
        except ValueError:
            raise RerankHTTPError(502, "answer is not JSON") from None
        return self.parse(data, query, docs)

    def call(self, query: str, docs: list[str], stop: StopFlag) -> list[float]:
        """One request with tenacity retries on 429/5xx/timeouts/connection errors (Retry-After honoured)."""
        import httpx
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

        def transient(e: BaseException) -> bool:
            if isinstance(e, (httpx.TimeoutException, httpx.TransportError)):
                return True
            return isinstance(e, RerankHTTPError) and (e.status in (408, 429) or e.status >= 500)

        backoff = wait_exponential_jitter(initial=0.5, max=self.retry_max_wait)

        def wait_for(state) -> float:
            e = state.outcome.exception()
            asked = getattr(e, "retry_after", None)
            return min(asked, 120.0) if asked is not None else backoff(state)

        retrying = Retrying(retry=retry_if_exception(transient), stop=stop_after_attempt(self.max_retries),
                            wait=wait_for, sleep=stop.wait, reraise=True)
        try:
            return retrying(self._post, query, docs, stop)
        except (RerankHTTPError, httpx.HTTPError) as e:
            hint = (f"; set {self._api_key_env} to the server's key (environment only)"
                    if isinstance(e, RerankHTTPError) and e.status in (401, 403) else "")
            raise KitError(f"{self.spec} at {self.endpoint}: rerank request failed after retries "
                           f"({type(e).__name__}: {redact_text(e)}){hint}; finished requests are cached, re-run "
                           f"to resume") from None

    # -- many requests -------------------------------------------------------------------------------
    def requests(self, query: str, passages: list[str]) -> list[list[str]]:
        """Split one query's passages into requests within the document and per-request token limits."""
        cap = self.max_input_tokens or 10**9
        q = min(self.count_tokens(query), cap)
        return pack_requests(passages, lambda p: q + min(self.count_tokens(p), cap), self.max_documents,
                             self.request_tokens)

    def _one(self, ns: str, query: str, docs: list[str], stop: StopFlag) -> list[tuple[tuple[str, str], float]]:
        scores = self.call(query, docs, stop)
        pairs = [(query, d) for d in docs]
        if self.cache is not None:   # in the worker thread: a request that returns while stopping is kept too
            self.cache.put_many(ns, pairs, scores)
        return list(zip(pairs, scores))

    def _fetch(self, ns, todo, have, bar) -> None:
        reqs = [(q, docs) for q, ps in todo.items() for docs in self.requests(q, ps)]
        stop = StopFlag()
        if self.concurrency == 1 or len(reqs) == 1:
            for q, docs in reqs:
                have.update(self._one(ns, q, docs, stop))
                bar.update(len(docs))
            return
        pool = ThreadPoolExecutor(self.concurrency)   # no `with`: its exit would wait on hung requests
        try:
            futures = [pool.submit(self._one, ns, q, docs, stop) for q, docs in reqs]
            for f in as_completed(futures):
                got = f.result()
                have.update(got)
                bar.update(len(got))
        except BaseException:
            stop.set()   # Ctrl-C, SIGTERM or a failed request: nothing new is sent
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
