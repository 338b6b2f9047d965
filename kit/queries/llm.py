"""Questions per chunk from any OpenAI-compatible chat endpoint (OpenAI, DashScope, DeepSeek, local).

Each chunk is one chat call. Answers are cached on disk as soon as they arrive (cache.py), so a
killed run resumes without repeating a successful call. Retries (429, 5xx, timeouts, connection
errors) are done here with tenacity rather than by the SDK (``max_retries=0``) so that every retry
is counted and a server's ``Retry-After`` is honoured. An answer with no readable question is
"junk": asked again a bounded number of times, then reported as a failure for that chunk only.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import openai
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tqdm import tqdm

from ..catalog import chat_cost
from ..io import KitError, text_hash
from ..providers.client import StopFlag, api_key, openai_client
from ..secrets import redact_text, redact_url
from .cache import CachedAnswer, LLMCache, answer_key
from .parse import JunkAnswer, parse_questions

log = logging.getLogger("kit.queries.llm")

# Bump whenever the prompt's wording changes: it is part of the cache key, so old answers are not reused.
PROMPT_VERSION = "zh-questions-v1"


@dataclass(frozen=True)
class Preset:
    base_url: str
    api_key_env: str
    default_model: str
    json_mode: bool  # the endpoint accepts response_format={"type": "json_object"}


PRESETS = {
    "openai": Preset("https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4o-mini", True),
    "dashscope": Preset("https://dashscope.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY", "qwen-plus", True),
    "deepseek": Preset("https://api.deepseek.com", "DEEPSEEK_API_KEY", "deepseek-chat", True),
}

SYSTEM_PROMPT = "你是一名帮助企业构建中文检索训练数据的助手，擅长站在真实用户的角度提问。"

USER_PROMPT = """下面是一段来自企业文档的文本片段。请站在真实用户的角度，针对它提出 {n} 个不同的问题。要求：
1. 每个问题都能由这段文本回答；
2. 问题类型要多样：{kinds}；
3. 不要照抄原文句子，不要出现"根据上文""这段文字""本片段"之类的指代，每个问题单独拿出来也能看懂；
4. 使用简体中文。
只输出 JSON，格式为：{{"questions": ["问题一", "问题二"]}}

【文档片段】
标题：{title}
正文：
{text}
【片段结束】"""

_KINDS = "有事实类问题（是什么、多少、何时、谁），有\"如何/为什么\"类问题，还有外行不用文中术语、用自己的话提出的问题"


def build_messages(title: str, text: str, per_chunk: int) -> list[dict]:
    user = USER_PROMPT.format(n=per_chunk, kinds=_KINDS, title=title or "（无）", text=text)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass
class LLMSettings:
    base_url: str
    model: str
    api_key_env: str
    json_mode: bool = False
    per_chunk: int = 3
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 5        # transport retries per call (429, 5xx, timeouts)
    junk_retries: int = 2       # extra calls when an answer holds no question
    temperature: float = 0.7
    backoff: float = 1.0        # first wait (s) of the exponential backoff when no Retry-After is given
    cache_path: str | None = None


def resolve_settings(preset: str | None, base_url: str | None, model: str | None,
                     api_key_env: str | None, **kw) -> LLMSettings:
    """Endpoint, model and key variable from a preset and/or explicit values (explicit wins)."""
    if preset:
        if preset not in PRESETS:
            raise KitError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)} or give --base-url")
        p = PRESETS[preset]
        # A preset's JSON mode applies only to the preset's own endpoint.
        json_mode = p.json_mode and not base_url
        return LLMSettings(base_url=base_url or p.base_url, model=model or p.default_model,
                           api_key_env=api_key_env or p.api_key_env, json_mode=json_mode, **kw)
    if not base_url:
        raise KitError("the llm generator needs --preset (openai, dashscope, deepseek) or --base-url")
    if not model:
        raise KitError("--model is required with --base-url")
    return LLMSettings(base_url=base_url, model=model, api_key_env=api_key_env or "OPENAI_API_KEY",
                       json_mode=False, **kw)


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> tuple[float, str] | None:
    """(cost, currency) from the model catalogue (kit/data/catalog.yaml), or None when the model is not in it."""
    return chat_cost(model, prompt_tokens, completion_tokens)


@dataclass
class LLMStats:
    api_calls: int = 0          # requests sent (every attempt)
    answered: int = 0           # chunks answered by a fresh call
    cache_hits: int = 0
    prompt_tokens: int = 0      # fresh calls only: what this run paid for
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    retries: Counter = field(default_factory=Counter)   # reason -> retries
    failures: list = field(default_factory=list)        # (chunk_id, reason)

    def __post_init__(self):
        self._lock = threading.Lock()

    def add(self, **counts) -> None:
        with self._lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def retried(self, reason: str) -> None:
        with self._lock:
            self.retries[reason] += 1


class ChunkFailed(Exception):
    """This chunk got no usable answer; the run goes on without it."""


class FatalEndpointError(KitError):
    """Every call would fail the same way (bad key, unknown model): stop at once."""


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)):
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code >= 500 or exc.status_code == 408)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        return "429" if exc.status_code == 429 else ("5xx" if exc.status_code >= 500 else str(exc.status_code))
    return type(exc).__name__


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), if it said."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:  # an HTTP date: rare for APIs; fall back to our own backoff
        return None
    return None


class LLMQuestionGenerator:
    """Asks the endpoint for questions about each chunk, ``concurrency`` requests in flight.

    Threads rather than asyncio: the work is blocking I/O (HTTP via the SDK's sync client, which is
    thread-safe, and SQLite commits), tenacity's sync retry loop and tqdm fit it directly, and 16-64
    threads cost nothing next to a one-second LLM call.
    """

    def __init__(self, settings: LLMSettings, cache: LLMCache | None = None):
        self.s = settings
        # What is stored, printed and hashed: the endpoint without credentials (a key carried in the URL
        # changes neither the cache key nor anything written).
        self.endpoint = redact_url(settings.base_url)
        self.cache = cache or LLMCache(settings.cache_path)
        self.stats = LLMStats()
        self.stop = StopFlag()
        self._client = None
        self._client_lock = threading.Lock()

    # -- one chunk ---------------------------------------------------------------------------
    def _key(self, title: str, text: str) -> tuple[str, str]:
        # The title is part of the prompt, so it is part of the hashed chunk text.
        chunk_hash = text_hash(f"{title}\n{text}", n=32)
        return answer_key(self.endpoint, self.s.model, PROMPT_VERSION, self.s.per_chunk, chunk_hash), chunk_hash

    def client(self) -> openai.OpenAI:
        with self._client_lock:
            if self._client is None:
                # A preset's endpoint needs a key; local servers (vLLM, Ollama, ...) usually accept any.
                key = api_key(self.s.api_key_env, self.s.base_url,
                              required=self.s.base_url in {p.base_url for p in PRESETS.values()})
                self._client = openai_client(self.s.base_url, key, self.s.timeout)
            return self._client

    def _call(self, messages: list[dict]):
        kwargs = dict(model=self.s.model, messages=messages, temperature=self.s.temperature)
        if self.s.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        self.stop.check()   # never a new paid request once a stop was asked for
        self.stats.add(api_calls=1)
        return self.client().chat.completions.create(**kwargs)

    def _call_with_retries(self, messages: list[dict]):
        backoff = wait_exponential_jitter(initial=self.s.backoff, max=60, jitter=self.s.backoff)

        def wait_for(state) -> float:
            asked = _retry_after(state.outcome.exception())
            return min(asked, 120.0) if asked is not None else backoff(state)

        def before_sleep(state) -> None:
            exc = state.outcome.exception()
            self.stats.retried(_reason(exc))
            log.debug("retrying after %s (attempt %d)", _reason(exc), state.attempt_number)

        retrying = Retrying(retry=retry_if_exception(_transient), wait=wait_for,
                            stop=stop_after_attempt(self.s.max_retries + 1), before_sleep=before_sleep,
                            sleep=self.stop.wait, reraise=True)
        return retrying(self._call, messages)

    def _cached(self, key: str) -> list[str] | None:
        cached = self.cache.get(key)
        if cached is None:
            return None
        try:
            qs = parse_questions(cached.content)
        except JunkAnswer:
            return None  # stored under an older parser that accepted it; ask again
        self.stats.add(cache_hits=1, cached_prompt_tokens=cached.prompt_tokens,
                       cached_completion_tokens=cached.completion_tokens)
        return qs

    def questions_for(self, chunk_id: str, title: str, text: str) -> list[str]:
        """Parsed (unfiltered) questions for one chunk: from the cache, else from the endpoint."""
        key, chunk_hash = self._key(title, text)
        cached = self._cached(key)
        if cached is not None:
            return cached
        messages = build_messages(title, text, self.s.per_chunk)
        last_junk = ""
        for attempt in range(self.s.junk_retries + 1):
            try:
                resp = self._call_with_retries(messages)
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as e:
                raise FatalEndpointError(
                    f"{self.endpoint} (model {self.s.model}): HTTP {e.status_code} "
                    f"{_short(e)} - check the model name and ${self.s.api_key_env}") from None
            except openai.APIError as e:
                if _transient(e):
                    raise ChunkFailed(f"{_reason(e)}, gave up after {self.s.max_retries} retries") from None
                raise ChunkFailed(f"HTTP {_reason(e)}: {_short(e)}") from None
            usage = resp.usage
            pt = getattr(usage, "prompt_tokens", 0) or 0
            ct = getattr(usage, "completion_tokens", 0) or 0
            self.stats.add(prompt_tokens=pt, completion_tokens=ct)  # paid for even when junk
            content = resp.choices[0].message.content if resp.choices else None
            try:
                qs = parse_questions(content)
            except JunkAnswer as e:
                last_junk = str(e)
                if attempt < self.s.junk_retries:
                    self.stats.retried("junk")
                continue
            self.cache.put(key, base_url=self.endpoint, model=self.s.model, prompt_version=PROMPT_VERSION,
                           per_chunk=self.s.per_chunk, chunk_hash=chunk_hash,
                           answer=CachedAnswer(content, pt, ct))
            self.stats.add(answered=1)
            return qs
        raise ChunkFailed(f"junk answer {self.s.junk_retries + 1} times: {last_junk}")

    # -- many chunks -------------------------------------------------------------------------
    def _collect(self, future, same: list[dict], results: dict) -> None:
        """One finished chunk: its questions, or its failure counted (a fatal endpoint error re-raised)."""
        try:
            qs = future.result()
        except KitError:
            raise
        except Exception as e:  # noqa: BLE001 - one odd answer must not end the batch
            e = e if isinstance(e, ChunkFailed) else ChunkFailed(f"{type(e).__name__}: {_short(e)}")
            for c in same:
                self.stats.failures.append((c["id"], str(e)))
            log.warning("chunk %s: %s", same[0]["id"], e)
            return
        for c in same:
            results[c["id"]] = qs

    def run(self, chunks: list[dict], progress: bool = True) -> dict[str, list[str]]:
        """chunk id -> parsed questions, for every chunk that got an answer (failures in stats)."""
        results: dict[str, list[str]] = {}
        todo: dict[str, list[dict]] = {}  # cache key -> chunks with that text: one call serves them all
        for c in chunks:  # cache hits first, in this thread: they cost nothing and need no key
            key = self._key(c.get("title") or "", c["text"])[0]
            cached = self._cached(key)
            if cached is not None:
                results[c["id"]] = cached
            else:
                todo.setdefault(key, []).append(c)
        if not todo:
            return results
        self.client()  # fail fast on a missing key, before any thread starts
        bar = tqdm(total=len(chunks), initial=len(results), desc="llm questions", unit="chunk",
                   disable=not progress)
        # Not a `with` block: its exit waits for every thread, and a thread stuck on a hanging server would
        # hold Ctrl-C for a whole timeout.
        pool = ThreadPoolExecutor(max_workers=max(1, self.s.concurrency))
        try:
            futures = {pool.submit(self.questions_for, same[0]["id"], same[0].get("title") or "", same[0]["text"]):
                       same for same in todo.values()}
            for f in as_completed(futures):
                bar.update(len(futures[f]))
                self._collect(f, futures[f], results)
        except BaseException:
            # Ctrl-C, SIGTERM or a fatal endpoint error: no new request from here on (queued chunks are
            # cancelled, running ones stop before their next attempt); answers so far are cached.
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
        pool.shutdown(wait=True)
        return results


def _short(exc: BaseException, n: int = 160) -> str:
    """The server's message, one line, without secrets: servers echo a (masked) key in 401 messages
    ("Incorrect API key provided: sk-ab***yz"), gateways echo the URL they were called with."""
    msg = " ".join(str(getattr(exc, "message", None) or exc).split())
    return redact_text(msg)[:n]
