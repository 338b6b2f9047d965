"""Query-generation speed: 1,000 real chunks against a local chat server with 1 s latency per call.

Goal: <= 90 s at concurrency 16 (the issue's target). The peer is what a user would write without
the kit: a plain sequential loop over the openai SDK, timed on a sample and extrapolated to the
same number of chunks (saying so), because running it in full would take ~1,000 s.

    python benchmarks/querygen_speed.py [--chunks 1000] [--latency 1.0] [--concurrency 16] [--peer-sample 32]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from helpers.chat_server import ChatServer  # noqa: E402

from kit.queries import QueryOptions, gen_queries  # noqa: E402
from kit.queries.llm import build_messages  # noqa: E402
from kit.queries.parse import parse_questions  # noqa: E402

SHARED = Path(os.environ.get("KIT_SHARED", REPO.parent / "shared"))
CMRC_CORPUS = SHARED / "data" / "retrieval" / "cmrc2018" / "beir" / "corpus.jsonl"
GOAL_S = 90.0


def load_chunks(n: int) -> list[dict]:
    chunks = []
    with open(CMRC_CORPUS, encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            chunks.append({"id": p["_id"], "doc": p["title"], "page_start": 1, "page_end": 1,
                           "title": p["title"], "text": p["text"]})
            if len(chunks) == n:
                break
    if len(chunks) < n:
        raise SystemExit(f"{CMRC_CORPUS} has only {len(chunks)} paragraphs")
    return chunks


def peer_sequential(base_url: str, chunks: list[dict], per_chunk: int) -> float:
    """A plain sequential openai-SDK loop: one request at a time. Returns seconds."""
    import openai
    client = openai.OpenAI(api_key="not-needed", base_url=base_url, timeout=30)
    t0 = time.perf_counter()
    for c in chunks:
        resp = client.chat.completions.create(model="bench-model",
                                              messages=build_messages(c["title"], c["text"], per_chunk))
        parse_questions(resp.choices[0].message.content)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--per-chunk", type=int, default=3)
    ap.add_argument("--peer-sample", type=int, default=32)
    args = ap.parse_args()

    chunks = load_chunks(args.chunks)
    with tempfile.TemporaryDirectory() as tmp, ChatServer(latency=args.latency) as srv:
        tmp = Path(tmp)
        corpus = tmp / "corpus.jsonl"
        corpus.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks), encoding="utf-8")
        opts = QueryOptions(generator="llm", per_chunk=args.per_chunk, base_url=srv.base_url, model="bench-model",
                            concurrency=args.concurrency, timeout=30,
                            cache_path=str(tmp / "fresh-cache" / "llm.sqlite"))  # fresh: nothing cached
        t0 = time.perf_counter()
        res = gen_queries(corpus, tmp / "pairs.jsonl", opts)
        wall = time.perf_counter() - t0
        assert res.llm["cache_hits"] == 0 and res.llm["answered"] == len(chunks), res.summary()

        peer_s = peer_sequential(srv.base_url, chunks[:args.peer_sample], args.per_chunk)
    peer_extrapolated = peer_s / args.peer_sample * len(chunks)

    print(f"query generation: {len(chunks)} chunks (cmrc2018 paragraphs), server latency {args.latency:g} s, "
          f"concurrency {args.concurrency}, {args.per_chunk} questions/chunk")
    print(f"  kit gen-queries (llm): {wall:.1f} s wall, {len(chunks) / wall:.1f} chunks/s, {res.pairs} pairs, "
          f"{res.llm['api_calls']} requests, dropped {res.dropped}")
    print(f"  goal <= {GOAL_S:g} s: ratio wall/goal = {wall / GOAL_S:.2f} ({'met' if wall <= GOAL_S else 'NOT met'})")
    print(f"  peer (sequential openai-SDK loop): {peer_s:.1f} s for {args.peer_sample} chunks, EXTRAPOLATED to "
          f"{len(chunks)} chunks = {peer_extrapolated:.0f} s; kit is {peer_extrapolated / wall:.1f}x faster")


if __name__ == "__main__":
    main()
