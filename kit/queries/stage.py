"""The gen-queries stage: corpus.jsonl -> pairs.jsonl with one or more generators.

Output rows (FlagEmbedding training format plus provenance)::

    {"query": str, "pos": [text], "chunk_id": str, "doc": str, "generator": "llm"|"ict"|"keywords"|"headings"}
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..formats import read_corpus, write_pairs
from ..io import ReadReport
from ..catalog import chat_prices_date
from .llm import LLMQuestionGenerator, estimate_cost, resolve_settings
from .offline import OFFLINE
from .options import QueryOptions
from .parse import filter_questions, normalise

log = logging.getLogger("kit.queries")

@dataclass
class QueryResult:
    output: str
    chunks: int = 0
    pairs: int = 0
    by_generator: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)        # reason -> count
    read_errors: list = field(default_factory=list)    # "file:line: problem"
    failures: list = field(default_factory=list)       # "chunk_id: reason" (llm)
    llm: dict = field(default_factory=dict)            # calls, cache hits, retries, tokens, cost
    # Work left undone ({failed, total, what}): `kit run` records no manifest above allow_partial, so the
    # next run retries exactly these chunks (every answer already paid for comes from the cache).
    incomplete: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"{self.pairs} pairs from {self.chunks} chunks -> {self.output}"]
        for g, n in self.by_generator.items():
            lines.append(f"  {g}: {n}")
        if self.dropped:
            lines.append("dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())))
        if self.read_errors:
            lines.append(f"{len(self.read_errors)} bad corpus lines skipped:")
            lines += [f"  {e}" for e in self.read_errors[:10]]
        if self.llm:
            m = self.llm
            lines.append(f"llm: {m['model']} at {m['base_url']}: {m['api_calls']} requests, "
                         f"{m['answered']} chunks answered, {m['cache_hits']} from cache")
            if m["retries"]:
                lines.append("  retries: " + ", ".join(f"{k} {v}" for k, v in sorted(m["retries"].items())))
            lines.append(f"  tokens this run: prompt {m['prompt_tokens']}, completion {m['completion_tokens']}"
                         f" (cached answers had used {m['cached_prompt_tokens']} + {m['cached_completion_tokens']})")
            cost = m["cost"]
            lines.append(f"  estimated cost: {cost:.4f} {m['currency']} (list prices of {chat_prices_date()})"
                         if cost is not None else f"  estimated cost: unknown (no price for {m['model']})")
        if self.failures:
            lines.append(f"{len(self.failures)} chunks failed:")
            lines += [f"  {f}" for f in self.failures[:10]]
            if len(self.failures) > 10:
                lines.append(f"  ... and {len(self.failures) - 10} more")
            lines.append("run the same command again to retry only those (answers already paid for are cached)")
        return "\n".join(lines)


def gen_queries(corpus_path, output_path, options: QueryOptions | None = None) -> QueryResult:
    opts = options or QueryOptions()
    generators = opts.generators()
    report = ReadReport()
    chunks = read_corpus(corpus_path, report, required=False)
    result = QueryResult(output=str(output_path), chunks=len(chunks),
                         read_errors=[str(e) for e in report.errors])
    for e in report.errors[:20]:
        log.warning("%s", e)
    drops: Counter = Counter()
    rows: list[dict] = []
    seen_pairs: set[tuple[str, str]] = set()   # (normalised query, chunk id) across generators

    def add(chunk: dict, query: str, pos: str, generator: str) -> None:
        key = (normalise(query), chunk["id"])
        if key in seen_pairs:
            drops["duplicate"] += 1
            return
        seen_pairs.add(key)
        rows.append({"query": query, "pos": [pos], "chunk_id": chunk["id"], "doc": chunk.get("doc") or "",
                     "generator": generator})

    for name in generators:
        before = len(rows)
        if name == "llm":
            _run_llm(chunks, opts, drops, result, add)
        else:
            todo = tqdm(chunks, desc=f"{name} queries", unit="chunk", disable=not opts.progress)
            extra = {"keep_ratio": opts.ict_keep} if name == "ict" else {}
            for chunk, query, pos in OFFLINE[name](todo, opts.per_chunk, opts.seed, drops, **extra):
                add(chunk, query, pos, name)
        result.by_generator[name] = len(rows) - before

    if rows:
        result.pairs = write_pairs(output_path, rows)
    else:
        # No file at all: an empty one -- or one left by an earlier run -- would look like a finished stage
        # to the next one.
        Path(output_path).unlink(missing_ok=True)
        log.warning("no query could be generated from %s", corpus_path)
    result.dropped = dict(drops)
    return result


def _run_llm(chunks, opts: QueryOptions, drops: Counter, result: QueryResult, add) -> None:
    settings = resolve_settings(
        opts.preset, opts.base_url, opts.model, opts.api_key_env, per_chunk=opts.per_chunk,
        concurrency=opts.concurrency, timeout=opts.timeout, max_retries=opts.max_retries,
        junk_retries=opts.junk_retries, temperature=opts.temperature, backoff=opts.backoff,
        cache_path=opts.cache_path)
    gen = LLMQuestionGenerator(settings)
    try:
        answers = gen.run(chunks, progress=opts.progress)
    finally:
        gen.cache.close()
    seen: set[str] = set()
    # Filtering runs here, in corpus order, so duplicates resolve the same way whatever order the
    # concurrent answers arrived in.
    for c in chunks:
        if c["id"] in answers:
            for q in filter_questions(answers[c["id"]], c["text"], seen, drops, limit=opts.per_chunk):
                add(c, q, c["text"], "llm")
    s = gen.stats
    cost = estimate_cost(settings.model, s.prompt_tokens, s.completion_tokens)
    result.failures = [f"{cid}: {why}" for cid, why in s.failures]
    if s.failures:
        result.incomplete = {"failed": len(s.failures), "total": len(chunks), "what": "chunks"}
    result.llm = {
        "base_url": gen.endpoint, "model": settings.model, "api_calls": s.api_calls,
        "answered": s.answered, "cache_hits": s.cache_hits, "retries": dict(s.retries),
        "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
        "cached_prompt_tokens": s.cached_prompt_tokens, "cached_completion_tokens": s.cached_completion_tokens,
        "cost": None if cost is None else round(cost[0], 6), "currency": None if cost is None else cost[1],
        "prices_date": chat_prices_date(),
    }
