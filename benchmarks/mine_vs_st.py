"""`kit mine` against sentence-transformers' miner, and against a pure encode of the same texts.

Data: cmrc2018 (../shared/data/retrieval/cmrc2018/beir): a seeded sample of --queries questions become
train rows ({"query", "pos": [paragraph], "pos_ids"}), all 1,104 paragraphs are the corpus. Model:
../shared/models/zh-e5-small (e5: "query: " / "passage: ", mean pooling).

Each contender runs in its own subprocess (so peak RSS, from getrusage ru_maxrss, is its own; tracemalloc
does not see torch's allocations), timed from model load to mined output:

  kit          kit.mine.mine(): fresh embedding cache, range 2-200, 15 negatives, relative margin 0.05
  encode       LocalEncoder without cache: the unique texts kit embeds, nothing else (the floor)
  st-<prec>    sentence_transformers.util.mine_hard_negatives(range_min=1, range_max=200 (= ranks 2-200),
               num_negatives=15, sampling_strategy="random", use_faiss=True, relative_margin=0.05,
               query_prompt="query: ", corpus_prompt="passage: ")
               in the same precision as kit's encoder (bf16 autocast on CPUs with AVX512-BF16/AMX, as kit
               picks it) and, unless --no-st-fp32, in ST's default fp32.

Both sides use the same --max-length (token truncation) and --batch-size.

Wall times on a shared machine move with whatever else runs; the contenders run one after another,
so compare runs made while the load was steady (`uptime`), or re-run one contender alone with
`--worker NAME --data DIR`.

Run:  .venv/bin/python benchmarks/mine_vs_st.py            (about 6-9 minutes on a 2-core CPU)
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KIT_SHARED", REPO.parent / "shared"))
CMRC = SHARED / "data" / "retrieval" / "cmrc2018" / "beir"
MODEL = SHARED / "models" / "zh-e5-small"


def prepare(data: Path, n_queries: int, seed: int) -> None:
    corpus = [json.loads(line) for line in open(CMRC / "corpus.jsonl", encoding="utf-8")]
    queries = {}
    for line in open(CMRC / "queries.jsonl", encoding="utf-8"):
        o = json.loads(line)
        queries[o["_id"]] = o["text"]
    qrels: dict[str, list[str]] = {}
    with open(CMRC / "qrels.tsv", encoding="utf-8") as f:
        for row in list(csv.reader(f, delimiter="\t"))[1:]:
            qrels.setdefault(row[0], []).append(row[1])
    text = {c["_id"]: c["text"] for c in corpus}
    with open(data / "corpus.jsonl", "w", encoding="utf-8") as f:
        for c in corpus:
            f.write(json.dumps({"id": c["_id"], "doc": c["title"], "page_start": 1, "page_end": 1,
                                "title": c["title"], "text": c["text"]}, ensure_ascii=False) + "\n")
    ids = sorted(qrels)
    random.Random(seed).shuffle(ids)
    with open(data / "train.jsonl", "w", encoding="utf-8") as f:
        for q in ids[:n_queries]:
            f.write(json.dumps({"query": queries[q], "pos": [text[d] for d in qrels[q]], "neg": [],
                                "pos_ids": qrels[q], "doc": "", "generator": "cmrc"}, ensure_ascii=False) + "\n")


def _rows(data: Path):
    return [json.loads(line) for line in open(data / "train.jsonl", encoding="utf-8")]


def _corpus_texts(data: Path):
    return [json.loads(line)["text"] for line in open(data / "corpus.jsonl", encoding="utf-8")]


def worker(which: str, data: Path, args) -> dict:
    t0 = time.perf_counter()
    info: dict = {}
    if which == "kit":
        os.environ["KIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="kit-bench-cache-")  # fresh cache
        from kit.mine import MineOptions, mine
        r = mine(data / "train.jsonl", data / "corpus.jsonl", data / "kit_out.jsonl",
                 MineOptions(model=str(MODEL), range="2-200", negatives=15, seed=args.seed, relative_margin=0.05,
                             widen=True,  # as measured in RESULTS.md (widening became opt-in later)
                             batch_size=args.batch_size, max_length=args.max_length, progress=False,
                             print_stats=False))
        info = {"precision": r.stats["precision"], "stage_seconds": r.stats["seconds"],
                "rows_short": r.stats["rows_short_of_negatives"], "rows_written": r.stats["rows_written"],
                "negatives_p50": r.stats["negative_scores"].get("p50")}
    elif which == "encode":
        from kit.embed import LocalEncoder
        rows = _rows(data)
        corpus = list(dict.fromkeys(_corpus_texts(data)))
        extra = list(dict.fromkeys(t for r in rows for t in r["pos"] if t not in set(corpus)))
        enc = LocalEncoder(str(MODEL), batch_size=args.batch_size, max_length=args.max_length, cache=False,
                           progress=False)
        enc.encode_passages(corpus + extra)
        enc.encode_queries(list(dict.fromkeys(r["query"] for r in rows)))
        info = {"precision": enc.precision, "texts": len(corpus) + len(extra)}
    elif which.startswith("st-"):
        import torch
        from datasets import Dataset
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.util import mine_hard_negatives

        rows = _rows(data)
        model = SentenceTransformer(str(MODEL), device="cpu")
        model.max_seq_length = args.max_length
        ds = Dataset.from_dict({"query": [r["query"] for r in rows for _ in r["pos"]],
                                "positive": [p for r in rows for p in r["pos"]]})
        random.seed(args.seed)
        ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if which == "st-bf16" else _Null())
        with ctx:
            out = mine_hard_negatives(ds, model, corpus=_corpus_texts(data), range_min=1, range_max=200,
                                      num_negatives=15, sampling_strategy="random", use_faiss=True,
                                      relative_margin=0.05, query_prompt="query: ", corpus_prompt="passage: ",
                                      batch_size=args.batch_size, output_format="n-tuple", verbose=False)
        info = {"precision": which[3:], "rows": len(out)}
    else:
        raise SystemExit(f"unknown worker {which}")
    info["seconds"] = round(time.perf_counter() - t0, 2)
    info["maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return info


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--max-length", type=int, default=256, help="token truncation, both sides")
    ap.add_argument("--batch-size", type=int, default=32, help="encode batch size, both sides (ST's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-st-fp32", action="store_true", help="skip ST in its default fp32 (the slowest run)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, Path(args.data), args)), flush=True)
        return

    if not (CMRC / "corpus.jsonl").exists() or not (MODEL / "model.safetensors").exists():
        raise SystemExit(f"needs {CMRC} and {MODEL}")
    data = Path(tempfile.mkdtemp(prefix="mine-bench-"))
    prepare(data, args.queries, args.seed)
    contenders = ["kit", "encode", "st-bf16"] + ([] if args.no_st_fp32 else ["st-fp32"])
    results = {}
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    for c in contenders:
        cmd = [sys.executable, __file__, "--worker", c, "--data", str(data), "--max-length", str(args.max_length),
               "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
        if p.returncode or line is None:
            raise SystemExit(f"{c} failed:\n{p.stderr[-3000:]}")
        results[c] = json.loads(line[len("RESULT "):])
        print(f"{c:9s} {results[c]['seconds']:8.1f} s   peak RSS {results[c]['maxrss_mb']:8.1f} MB   "
              f"{ {k: v for k, v in results[c].items() if k not in ('seconds', 'maxrss_mb')} }", flush=True)

    kit = results["kit"]["seconds"]
    print(f"\ncmrc2018: {args.queries} queries, 1104 paragraphs, zh-e5-small, max_length {args.max_length}, "
          f"batch {args.batch_size}, {os.cpu_count()} CPUs")
    print(f"kit / ST same precision ({results['kit']['precision']}): {kit / results['st-bf16']['seconds']:.2f}"
          "   (goal <= 0.7)")
    if "st-fp32" in results:
        print(f"kit / ST default fp32:                {kit / results['st-fp32']['seconds']:.2f}   (goal <= 0.7)")
    print(f"kit / pure encode of its unique texts: {kit / results['encode']['seconds']:.2f}   (goal <= 1.15)")
    print("peak RSS MB: " + ", ".join(f"{k} {v['maxrss_mb']}" for k, v in results.items()))


if __name__ == "__main__":
    main()
