"""Peak memory and wall time of `kit mine` (and, with --stage, `kit bench` / `kit index`) as the corpus grows: 10k,
100k, 300k chunks.

Data: synthetic corpora made from real Chinese text: sentences of ../shared/data/retrieval/stard_dev (statute
articles) and cmrc2018 (Wikipedia paragraphs) split at 。！？ and recombined, 2-6 at a time (seeded), into chunks of
up to 300 characters, ten chunks to a document. The training rows are fixed (--rows, default 2,000: real questions
from both sets, each paired with one chunk as its positive), so what grows is the corpus alone.

Model: a tiny random BERT (2 layers, 64 wide; texts cut at 32 tokens) with the zh-e5-small tokenizer, so that
the measurement is about the pipeline (reading, shard files, index, sampling, writing), not the encoder. Its
embeddings are 64 floats (256 bytes) a chunk; a real model's are 1.5 KB (384 dims) to 4 KB (1024).

Each size runs `kit mine ... --range 2-200 --negatives 15` in its own process with a fresh embedding cache; peak RSS is
that process's ru_maxrss (os.wait4), wall time from start to exit (model load included). Past exact_max (200,000)
the index is HNSW and its window recall is measured (kit.search). --kit-path runs another checkout of the kit (e.g.
the commit before the streaming change, from `git worktree add`) on the same data for a before/after table.

--stage bench runs `kit bench` over the same corpus as an eval folder (the training rows' questions as its
questions, each with its positive chunk as the relevant passage; one tiny dense model, no BM25 row);
--stage index runs `kit index` of the corpus into a faiss folder store with that eval set for the golden check.

--throughput N instead measures the encoder per process for the README's scaling plan: zh-e5-small on N real
passages through the torchrun engine with 1, then 2 processes (gloo on this CPU).

Run:  .venv/bin/python benchmarks/scale_mine.py [--sizes 10000,100000,300000] [--stage mine|bench|index]
          [--kit-path DIR] [--out FILE]
      .venv/bin/python benchmarks/scale_mine.py --throughput 384
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KIT_SHARED", REPO.parent / "shared"))
STARD = SHARED / "data" / "retrieval" / "stard_dev"
CMRC = SHARED / "data" / "retrieval" / "cmrc2018" / "beir"
ZH_E5 = SHARED / "models" / "zh-e5-small"


def sentences() -> list[str]:
    out = []
    for path in (STARD / "corpus.jsonl", CMRC / "corpus.jsonl"):
        for line in open(path, encoding="utf-8"):
            text = json.loads(line)["text"].replace("\n", "")
            out += [s for s in re.split(r"(?<=[。！？])", text) if len(s) >= 6]
    return out


def questions() -> list[str]:
    return [json.loads(x)["text"] for p in (STARD / "queries.jsonl", CMRC / "queries.jsonl")
            for x in open(p, encoding="utf-8")]


def make_corpus(path: Path, n: int, sents: list[str], seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = "".join(rng.choice(sents) for _ in range(rng.randint(2, 6)))[:300]
            f.write(json.dumps({"id": f"c{i}", "doc": f"doc{i // 10}", "text": text}, ensure_ascii=False) + "\n")


def make_rows(path: Path, corpus: Path, n_rows: int, qs: list[str], seed: int = 1) -> None:
    rng = random.Random(seed)
    chunks = {}
    with open(corpus, encoding="utf-8") as f:   # the first 10,000 chunks: in every corpus (same seed)
        for i, line in enumerate(f):
            if i >= 10_000:
                break
            c = json.loads(line)
            chunks[c["id"]] = c["text"]
    ids = rng.sample(sorted(chunks), n_rows)
    with open(path, "w", encoding="utf-8") as f:
        for cid in ids:
            f.write(json.dumps({"query": rng.choice(qs), "pos": [chunks[cid]], "neg": [], "pos_ids": [cid]},
                               ensure_ascii=False) + "\n")


def tiny_model(d: Path) -> Path:
    if (d / "config.json").exists():
        return d
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(str(ZH_E5))
    tok.model_max_length = 128
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=130, pad_token_id=tok.pad_token_id)
    BertModel(cfg).save_pretrained(d)
    # texts cut at 32 tokens (mine and index also say --max-length 32; kit bench takes the folder's own limit)
    (d / "kit_model.json").write_text(json.dumps({"family": "st", "pooling": "mean", "max_length": 32}))
    return d


def make_eval(folder: Path, corpus: Path, train: Path) -> Path:
    """The corpus as an eval folder (FlagEmbedding's layout): the training rows' questions, each relevant to its
    positive chunk."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "corpus.jsonl").exists() or (folder / "corpus.jsonl").resolve() != corpus.resolve():
        (folder / "corpus.jsonl").unlink(missing_ok=True)
        (folder / "corpus.jsonl").symlink_to(corpus.resolve())
    rows = [json.loads(x) for x in open(train, encoding="utf-8")]
    with open(folder / "test_queries.jsonl", "w", encoding="utf-8") as q, \
            open(folder / "test_qrels.jsonl", "w", encoding="utf-8") as r:
        for i, row in enumerate(rows):
            q.write(json.dumps({"id": f"q{i}", "text": row["query"]}, ensure_ascii=False) + "\n")
            r.write(json.dumps({"qid": f"q{i}", "docid": row["pos_ids"][0], "relevance": 1}) + "\n")
    return folder


def stage_command(stage: str, train: Path, corpus: Path, model: Path, out: Path) -> list[str]:
    kit = [sys.executable, "-m", "kit.cli"]
    if stage == "mine":
        return kit + ["mine", str(train), "--corpus", str(corpus), "--model", str(model), "-o", str(out),
                      "--range", "2-200", "--negatives", "15", "--no-progress", "--batch-size", "128",
                      "--max-length", "32"]
    ev = make_eval(out.parent / f"eval_{corpus.stem}", corpus, train)
    if stage == "bench":
        return kit + ["bench", "--eval", str(ev), "-o", str(out), "--model", f"tiny=local:{model}", "--hybrid", "[]",
                      "--batch-size", "128", "--no-progress"]
    subprocess.run(["rm", "-rf", str(out)])
    return kit + ["index", "--model", str(model), "--corpus", str(corpus), "--eval", str(ev), "--store",
                  f"faiss://{out}", "--name", "scale", "--batch-size", "512", "--max-length", "32", "--no-progress"]


def stage_figures(stage: str, out: Path) -> dict:
    if stage == "mine":
        stats = json.loads(out.with_name(out.stem + ".stats.json").read_text())
        return {"index": stats["index"]["type"], "recall": stats["index"].get("recall", {}).get("window_recall"),
                "seconds": stats["seconds"], "rows_written": stats["rows_written"]}
    if stage == "bench":
        res = json.loads((out / "results.json").read_text())["models"]["tiny"]["domain"]
        return {"mrr@10": res["metrics"].get("mrr@10"), "seconds": res["seconds"]}
    return {"collections": [p.name for p in out.iterdir() if p.is_dir()]}


def run_stage(stage: str, train: Path, corpus: Path, model: Path, out: Path, kit_path: str | None) -> dict:
    # one thread: on a machine shared with other jobs, torch's threads spin against theirs (measured here: a 2-thread
    # tiny model ran 20x slower than a 1-thread one while two trainings shared the 2 cores)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               KIT_CACHE_DIR=tempfile.mkdtemp(prefix="kit-scale-cache-"))
    if kit_path:
        env["PYTHONPATH"] = kit_path
    cmd = stage_command(stage, train, corpus, model, out)
    t0 = time.perf_counter()
    log_path = out.parent / f"{out.name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=kit_path or REPO)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    subprocess.run(["rm", "-rf", env["KIT_CACHE_DIR"]])
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"kit {stage} failed for {corpus} (see {log_path})")
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "wall_s": round(wall, 1), **stage_figures(stage, out)}


def throughput(n: int, workers: list[int], batch: int = 32) -> list[dict]:
    """zh-e5-small on ``n`` real passages (cmrc2018 paragraphs, first 512 tokens) through the torchrun engine (gloo,
    the cores split between ranks), no cache: texts/s over all ranks and per rank (encoding only, from the ranks'
    own clocks), and the wall time including torchrun's start and the model loads."""
    from kit.embed import LocalEncoder
    from kit.encode import EncodeOptions, encode_texts

    texts = [json.loads(x)["text"] for x in open(CMRC / "corpus.jsonl", encoding="utf-8")][:n]
    out = []
    for w in workers:
        enc = LocalEncoder(str(ZH_E5), batch_size=batch, cache=False, progress=False)
        t0 = time.perf_counter()
        res = encode_texts(texts, encoder=enc, options=EncodeOptions(engine="torchrun", workers=w,
                                                                     shard_size=max(1, n // (2 * w))))
        wall = time.perf_counter() - t0
        ranks = res.stats["ranks"]
        res.cleanup()
        per = [r["texts_per_second"] for r in ranks if r.get("encoded")]
        slowest = max(r["seconds"] for r in ranks)
        r = {"processes": w, "texts": n, "precision": res.stats["precision"], "wall_s": round(wall, 1),
             "encode_s": slowest, "texts_per_s": round(n / slowest, 2), "per_process": per}
        print(json.dumps(r), flush=True)
        out.append(r)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,300000")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--stage", choices=("mine", "bench", "index"), default="mine")
    ap.add_argument("--workdir", default="/tmp/kit-scale-mine")
    ap.add_argument("--kit-path", default=None, help="another checkout of the kit to run (before/after)")
    ap.add_argument("--label", default=None)
    ap.add_argument("--out", default=None, help="append the results as JSON lines here")
    ap.add_argument("--throughput", type=int, default=0, help="instead: zh-e5-small on this many passages with "
                    "the torchrun engine, 1 then 2 processes")
    a = ap.parse_args()
    if a.throughput:
        rows = throughput(a.throughput, [1, 2])
        if a.out:
            with open(a.out, "a", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        return
    wd = Path(a.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    model = tiny_model(wd / "tiny-model")
    sents, qs = None, questions()
    label = a.label or ("kit at " + a.kit_path if a.kit_path else "this checkout")
    rows = []
    for n in (int(x) for x in a.sizes.split(",")):
        corpus = wd / f"corpus_{n}.jsonl"
        if not corpus.exists():
            sents = sents or sentences()
            make_corpus(corpus, n, sents)
        train = wd / f"train_{a.rows}.jsonl"
        if not train.exists():
            make_rows(train, corpus, a.rows, qs)
        out = wd / (f"out_{n}.jsonl" if a.stage == "mine" else f"{a.stage}_{n}")
        r = {"label": label, "stage": a.stage, "chunks": n, "corpus_mb": round(corpus.stat().st_size / 2**20, 1),
             **run_stage(a.stage, train, corpus, model, out, a.kit_path)}
        rows.append(r)
        print(json.dumps(r, ensure_ascii=False), flush=True)
        if a.out:
            with open(a.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    w = csv.writer(sys.stdout, delimiter="|")
    w.writerow(["", "stage", "chunks", "corpus MB", "peak RSS MB", "wall s", "index / MRR@10", "window recall", ""])
    for r in rows:
        w.writerow(["", r["stage"], r["chunks"], r["corpus_mb"], r["peak_rss_mb"], r["wall_s"],
                    r.get("index", r.get("mrr@10", "")), r.get("recall", ""), ""])


if __name__ == "__main__":
    main()
