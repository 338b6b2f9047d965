"""Bench speed: (1) a second `kit bench` on the same corpus and models takes <= 0.1x the first (the embedding
cache); (2) `kit bench` against sentence-transformers' InformationRetrievalEvaluator on the same model and data,
both cold, ratio reported.

    .venv/bin/python benchmarks/bench_speed.py [--queries 300]

Data: cmrc2018 (../shared/data/retrieval/cmrc2018/beir), all 1,104 paragraphs, a seeded sample of queries.
Model: ../shared/models/zh-e5-small (kit: bf16 autocast on CPUs that support it; ST: its default fp32 and,
for a like-for-like number, under torch.autocast bf16 too).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CMRC = REPO.parent / "shared/data/retrieval/cmrc2018/beir"
MODEL = REPO.parent / "shared/models/zh-e5-small"


def st_evaluator(es, bf16: bool) -> float:
    import contextlib

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    model = SentenceTransformer(str(MODEL), device="cpu")
    ev = InformationRetrievalEvaluator(
        queries=dict(zip(es.query_ids, es.query_texts)), corpus=dict(zip(es.doc_ids, es.doc_texts)),
        relevant_docs={q: set(rel) for q, rel in es.qrels.items()}, query_prompt_name="query",
        corpus_prompt_name="passage", mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10], precision_recall_at_k=[10],
        map_at_k=[10], show_progress_bar=False, batch_size=32)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    t0 = time.perf_counter()
    with ctx:
        scores = ev(model)
    secs = time.perf_counter() - t0
    mrr = next(v for k, v in scores.items() if k.endswith("mrr@10"))
    print(f"  sentence-transformers IR evaluator ({'bf16' if bf16 else 'fp32'}): {secs:.1f}s, MRR@10 {mrr:.4f}")
    return secs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["KIT_CACHE_DIR"] = cache
        from kit.bench.stage import BenchOptions, bench
        from kit.formats import load_eval

        opts = BenchOptions(max_queries=args.queries, latency_samples=4, progress=False)
        models = {"zh-e5-small": f"local:{MODEL}", "bm25": "bm25"}
        times = []
        for i in range(2):
            t0 = time.perf_counter()
            res = bench(str(CMRC), models, Path(cache) / f"report{i}", opts)
            times.append(time.perf_counter() - t0)
            print(f"kit bench run {i + 1}: {times[-1]:.1f}s, MRR@10 zh-e5-small "
                  f"{res['models']['zh-e5-small']['domain']['metrics']['mrr@10']:.4f}, "
                  f"bm25 {res['models']['bm25']['domain']['metrics']['mrr@10']:.4f}")
        print(f"second/first: {times[1] / times[0]:.3f} (goal <= 0.1)")

        # cold kit bench of the dense model alone vs the ST evaluator on the same queries and passages
        es = load_eval(str(CMRC), args.queries, 0)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["KIT_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        bench(str(CMRC), {"zh-e5-small": f"local:{MODEL}"}, Path(cache) / "r", BenchOptions(
            max_queries=args.queries, latency_samples=0, progress=False))
        kit_cold = time.perf_counter() - t0
        print(f"kit bench, dense model only, cold cache: {kit_cold:.1f}s")
        for bf16 in (False, True):
            st = st_evaluator(es, bf16)
            print(f"  kit/ST ratio: {kit_cold / st:.2f}")


if __name__ == "__main__":
    main()
