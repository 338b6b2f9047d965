"""The LLM judge: which of a question's candidate passages answer it, asked of any OpenAI-compatible endpoint.

Everything but the prompt and the reading of the answer is question generation's machinery
(:class:`kit.queries.llm.LLMQuestionGenerator`): the SDK client and key handling, presets, ``concurrency`` threads,
tenacity retries on 429/5xx/timeouts honouring Retry-After, the SQLite answer cache (a judged question is never
paid for twice; the prompt version keeps judge answers apart from generated questions), the stop flag and the
token counts the cost estimate comes from. The judge answers JSON: ``{"answers": [numbers], "confidence": 0-1,
"reason": "..."}``; anything else (prose, a refusal, broken JSON, numbers that name no candidate) is asked again
``junk_retries`` times, then that question alone fails and is retried on the next run.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

import openai

from ..catalog import chat_prices_date
from ..io import KitError, text_hash
from ..queries.cache import CachedAnswer, answer_key
from ..queries.llm import ChunkFailed, FatalEndpointError, LLMQuestionGenerator, estimate_cost, resolve_settings
from ..secrets import redact_text

log = logging.getLogger("kit.questionlog.llm")

# Bump whenever the prompt's wording changes: it is part of the cache key.
JUDGE_PROMPT_VERSION = "zh-judge-v1"
SYSTEM = "你是检索结果的评审员：只依据候选段落的内容，判断它们能否回答用户的问题，不凭常识猜测。"
USER = """用户的问题：{question}

候选段落：
{candidates}

哪些候选段落能回答这个问题（直接给出答案，或给出答案所依据的规定）？
只输出 JSON，格式为：{{"answers": [能回答的段落编号], "confidence": 0到1之间的数, "reason": "一句话理由"}}
没有任何段落能回答时，answers 为空列表 []。"""
_ITEM = re.compile(r"^\[(\d+)\] ", re.M)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


class JunkVerdict(ValueError):
    """The answer is not a verdict (prose, refusal, broken JSON, no candidate named by a valid number)."""


@dataclass(frozen=True)
class RawVerdict:
    answers: list[int]      # 1-based candidate numbers
    confidence: float
    reason: str


def render(question: str, passages: list[tuple[str, str]], max_chars: int = 400) -> str:
    """The user prompt: the question and its numbered candidates (title, text cut to ``max_chars``)."""
    items = [f"[{n}] 标题：{title or '（无）'}\n正文：{text[:max_chars]}" for n, (title, text) in enumerate(passages, 1)]
    return USER.format(question=question, candidates="\n\n".join(items))


def _json_object(content: str) -> dict:
    m = _FENCE.search(content)
    body = m.group(1) if m else content
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise JunkVerdict(f"no JSON object in the answer: {content[:80]!r}")
    try:
        obj = json.loads(body[start:end + 1])
    except json.JSONDecodeError as e:
        raise JunkVerdict(f"broken JSON ({e.msg})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("answers"), list):
        raise JunkVerdict("JSON without an 'answers' list")
    return obj


def parse_verdict(content, n: int | None = None) -> RawVerdict:
    """The judge's answer as a verdict; ``n`` candidates were shown (numbers outside 1..n are dropped, and an
    answer naming only such numbers is junk)."""
    if not isinstance(content, str) or not content.strip():
        raise JunkVerdict("empty answer")
    obj = _json_object(content)
    numbers = []
    for a in obj["answers"]:
        if isinstance(a, bool) or not str(a).strip().isdigit():
            continue
        numbers.append(int(str(a).strip()))
    valid = [a for a in dict.fromkeys(numbers) if n is None or 1 <= a <= n]
    if obj["answers"] and not valid:
        raise JunkVerdict(f"'answers' names no candidate 1..{n}: {str(obj['answers'])[:60]}")
    try:
        confidence = min(1.0, max(0.0, float(obj.get("confidence", 1.0))))
    except (TypeError, ValueError):
        confidence = 1.0
    return RawVerdict(valid, confidence, str(obj.get("reason") or "")[:300])


def _why(e: openai.APIError) -> str:
    code = getattr(e, "status_code", None)
    return "429" if code == 429 else ("5xx" if code and code >= 500 else str(code or type(e).__name__))


class LLMJudge(LLMQuestionGenerator):
    """Items are ``{"id": question id, "text": rendered prompt}``; ``run`` returns {id: RawVerdict}."""

    def _key(self, title: str, text: str) -> tuple[str, str]:
        h = text_hash(text, n=32)
        return answer_key(self.endpoint, self.s.model, JUDGE_PROMPT_VERSION, self.s.per_chunk, h), h

    def _cached(self, key: str) -> RawVerdict | None:
        cached = self.cache.get(key)
        if cached is None:
            return None
        try:
            v = parse_verdict(cached.content)
        except JunkVerdict:
            return None
        self.stats.add(cache_hits=1, cached_prompt_tokens=cached.prompt_tokens,
                       cached_completion_tokens=cached.completion_tokens)
        return v

    def _ask(self, messages: list[dict]):
        try:
            return self._call_with_retries(messages)
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as e:
            raise FatalEndpointError(f"{self.endpoint} (model {self.s.model}): HTTP {e.status_code} "
                                     f"{redact_text(str(e.message))[:160]} - check the model name and "
                                     f"${self.s.api_key_env}") from None
        except openai.APIError as e:
            raise ChunkFailed(f"{_why(e)}, gave up after {self.s.max_retries} retries") from None

    def questions_for(self, chunk_id: str, title: str, text: str) -> RawVerdict:
        key, h = self._key(title, text)
        cached = self._cached(key)
        if cached is not None:
            return cached
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
        n, last = len(_ITEM.findall(text)), ""
        for attempt in range(self.s.junk_retries + 1):
            resp = self._ask(messages)
            pt = getattr(resp.usage, "prompt_tokens", 0) or 0
            ct = getattr(resp.usage, "completion_tokens", 0) or 0
            self.stats.add(prompt_tokens=pt, completion_tokens=ct)   # paid for even when junk
            message = resp.choices[0].message if resp.choices else None
            content = getattr(message, "content", None)
            try:
                if getattr(message, "refusal", None):
                    raise JunkVerdict(f"refused: {str(message.refusal)[:80]}")
                verdict = parse_verdict(content, n)
            except JunkVerdict as e:
                last = str(e)
                if attempt < self.s.junk_retries:
                    self.stats.retried("junk")
                continue
            self.cache.put(key, base_url=self.endpoint, model=self.s.model, prompt_version=JUDGE_PROMPT_VERSION,
                           per_chunk=self.s.per_chunk, chunk_hash=h, answer=CachedAnswer(content, pt, ct))
            self.stats.add(answered=1)
            return verdict
        raise ChunkFailed(f"no usable verdict in {self.s.junk_retries + 1} answers (last: {last})")

    def _collect(self, future, same: list[dict], results: dict) -> None:
        """One finished question: its verdict, or its failure counted (a fatal endpoint error re-raised)."""
        try:
            verdict = future.result()
        except KitError:
            raise
        except Exception as e:  # noqa: BLE001 - one odd answer must not end the batch
            why = str(e) if isinstance(e, ChunkFailed) else f"{type(e).__name__}: {redact_text(str(e))[:160]}"
            self.stats.failures += [(c["id"], why) for c in same]
            log.warning("question %s: %s", same[0]["id"], why)
            return
        for c in same:
            results[c["id"]] = verdict


def make_judge(opts) -> LLMJudge:
    settings = resolve_settings(opts.preset, opts.base_url, opts.model, opts.api_key_env, per_chunk=opts.shown,
                                concurrency=opts.concurrency, timeout=opts.timeout, max_retries=opts.max_retries,
                                junk_retries=opts.junk_retries, temperature=opts.temperature, backoff=opts.backoff,
                                cache_path=opts.cache_path)
    return LLMJudge(settings)


def usage(judge: LLMJudge) -> dict:
    """Calls, cache hits, retries, tokens and estimated cost, as question generation reports them."""
    s = judge.stats
    cost = estimate_cost(judge.s.model, s.prompt_tokens, s.completion_tokens)
    return {"base_url": judge.endpoint, "model": judge.s.model, "api_calls": s.api_calls, "answered": s.answered,
            "cache_hits": s.cache_hits, "retries": dict(s.retries), "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens, "cached_prompt_tokens": s.cached_prompt_tokens,
            "cached_completion_tokens": s.cached_completion_tokens,
            "cost": None if cost is None else round(cost[0], 6), "currency": None if cost is None else cost[1],
            "prices_date": chat_prices_date()}
