"""Peer recipes (issue 27): the kit's fine-tuning against what a user writes by hand, on the same training pairs,
the same starter model and the same step/batch budget, each model scored alone and merged with the base
(the kit's LM_Cocktail merge, w = 0.5) on real questions, every figure with its 95% paired-bootstrap interval.

    .venv/bin/python benchmarks/peer_recipes.py                        # stard_dev, all peers, 120 steps
    .venv/bin/python benchmarks/peer_recipes.py --recipes kit,st-mined --steps 240
    .venv/bin/python benchmarks/peer_recipes.py --variant t05=train.args.temperature=0.05   # one-factor ablation
    .venv/bin/python benchmarks/peer_recipes.py --demo --work runs/peers_demo   # the demo's generated questions

The data is the kit's own: ``benchmarks/real_questions.py``'s setup (all 9,626 stard_dev articles as a JSONL
corpus, the 657 real questions as ``split.eval_queries`` with their gold chunks held out, no real question in
training), run through ``kit run --until mine`` once. Every recipe then trains on that ``data/train.jsonl``
(questions generated offline by the kit) over the chunks training may see (``data/train_corpus.jsonl``):

  kit          ``kit run`` as the shipped recipe configures it (configs/demo.yaml + the kit's mining defaults),
               through the kit's bench: its report's recommendation is the kit's answer
  st-mined     sentence-transformers' documented recipe: MultipleNegativesRankingLoss (scale 20), no-duplicates
               batches, 3 hard negatives per row from its own ``mine_hard_negatives`` (ranks 1-60, relative
               margin 0.05, random sampling), the model's ``query: ``/``passage: `` prompts
  st-inbatch   the same with in-batch negatives only
  flag-readme  FlagEmbedding's example recipe as its README gives it: hn_mine window 2-200, 15 negatives,
               train_group_size 8, learning rate 1e-5, temperature 0.02, warmup 10%, max lengths 512, in-batch
               negatives on (run through ``kit run`` so that the model's prefixes and pooling are right)

``--variant NAME=SECTION.KEY=VALUE[,SECTION.KEY=VALUE...]`` adds a kit recipe with settings changed (ablations).
The last step is one ``kit bench`` over every model (base embeddings computed once), then a table: MRR@10,
ratio to base and to the best peer alone, each with its interval.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_questions as rq  # noqa: E402  (the same corpus, questions and config as the real-question benchmark)

REPO = rq.REPO
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
PEERS = ("st-mined", "st-inbatch", "flag-readme")

# FlagEmbedding's README (examples/finetune/embedder, "standard model") with the step/batch budget of this run.
FLAG_README = ["mine.range=2-200", "mine.negatives=15", "train.args.learning_rate=1.0e-5",
               "train.args.train_group_size=8", "train.args.temperature=0.02", "train.args.query_max_len=512",
               "train.args.passage_max_len=512", "train.args.warmup_ratio=0.1", "train.args.warmup_steps=null"]


def kit(*args: str, log: Path | None = None) -> None:
    cmd = [sys.executable, "-m", "kit.cli", *args]
    with open(log, "a", encoding="utf-8") if log else open(os.devnull, "w") as out:
        rc = subprocess.run(cmd, env=ENV, stderr=out if log else None).returncode
    if rc != 0:
        raise SystemExit(f"failed ({rc}): {' '.join(cmd)}" + (f" (log: {log})" if log else ""))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def variant_config(base_cfg: Path, work: Path, sets: list[str], weights: list[float]) -> Path:
    cfg = yaml.safe_load(base_cfg.read_text(encoding="utf-8"))
    cfg["workdir"] = str(work / "run")
    for s in sets:
        rq._set(cfg, s)
    cfg["train"]["args"] = {k: v for k, v in cfg["train"]["args"].items() if v is not None}
    cfg["merge"] = {"weights": weights}
    path = work / "config.yaml"
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def demo_config(work: Path, steps: int, batch: int) -> Path:
    """The demo's own data instead (``--demo``): configs/demo.yaml as shipped, its six statutes split by document,
    generated questions about the two held-out statutes as the eval (flattering: they share the passage's words)."""
    cfg = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    cfg.update(workdir=str(work / "run"), model=str(rq.MODEL))
    cfg["prep"]["inputs"] = [str(REPO / "examples" / "data")]
    cfg["train"]["args"].update(max_steps=steps, per_device_train_batch_size=batch)
    cfg["bench"].pop("general", None)
    path = work / "demo.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def train_st(data: Path, model: str, out: Path, steps: int, batch: int, mined: bool, seed: int, log) -> Path:
    """The sentence-transformers v5 documentation's recipe, as a user writes it (about forty lines)."""
    if (out / "config.json").exists():
        return out
    import torch
    from datasets import Dataset, load_from_disk
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers
    from sentence_transformers.util import mine_hard_negatives

    rows = jsonl(data / "train.jsonl")
    ds = Dataset.from_list([{"anchor": r["query"], "positive": r["pos"][0]} for r in rows])
    if mined:
        cached = out.parent / "st_mined_dataset"
        if cached.exists():
            ds = load_from_disk(str(cached))
        else:
            corpus = [c["text"] for c in jsonl(data / "train_corpus.jsonl")]
            # bf16 only to make mining affordable on 2 cores; the training model below stays fp32 + autocast
            miner = SentenceTransformer(model, device="cpu", model_kwargs={"torch_dtype": torch.bfloat16})
            ds = mine_hard_negatives(ds, miner, corpus=corpus, range_min=0, range_max=60, relative_margin=0.05,
                                     num_negatives=3, sampling_strategy="random", query_prompt_name="query",
                                     corpus_prompt_name="passage", output_format="n-tuple", use_faiss=True,
                                     batch_size=64)
            ds.save_to_disk(str(cached))
            del miner
    st = SentenceTransformer(model, device="cpu")
    prompts = {c: ("query: " if c == "anchor" else "passage: ") for c in ds.column_names}
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out.parent / f"{out.name}.checkpoints"), max_steps=steps, per_device_train_batch_size=batch,
        learning_rate=5e-5, bf16=True, use_cpu=True, batch_sampler=BatchSamplers.NO_DUPLICATES, prompts=prompts,
        save_strategy="no", logging_steps=20, report_to="none", seed=seed, dataloader_num_workers=0)
    SentenceTransformerTrainer(model=st, args=args, train_dataset=ds,
                               loss=MultipleNegativesRankingLoss(st)).train()
    st.save(str(out))
    log(f"st recipe ({'mined' if mined else 'in-batch'}) saved to {out} ({len(ds)} rows, columns {ds.column_names})")
    return out


def summarise(results: dict, peers_alone: list[str], reference: str | None = None) -> dict:
    from kit.bench.metrics import paired_bootstrap

    # the hybrid rows (each model + BM25, kit/bench/hybrid.py) too: the report may recommend one
    rows = {**results["models"], **(results.get("hybrid") or {})}
    rr = {m: e["domain"]["per_query"]["mrr@10"] for m, e in rows.items()}
    base = results["baseline"]
    out = {"questions": len(rr[base]), "mrr@10": {m: round(sum(v) / len(v), 4) for m, v in rr.items()}, "vs": {}}
    best_peer = max(peers_alone, key=lambda m: out["mrr@10"][m]) if peers_alone else None
    out["best_peer_alone"] = best_peer
    out["recommended"] = (results.get("recommendation") or {}).get("recommended_search")
    for m in rr:
        if m != base:
            out["vs"][f"{m}/base"] = paired_bootstrap(rr[base], rr[m])
        if best_peer and m not in (base, best_peer):
            out["vs"][f"{m}/{best_peer}"] = paired_bootstrap(rr[best_peer], rr[m])
        if reference and m not in (base, reference) and reference in rr:
            out["vs"][f"{m}/{reference}"] = paired_bootstrap(rr[reference], rr[m])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--work", default=str(REPO / "runs" / "peers"))
    ap.add_argument("--steps", type=int, default=120, help="training steps of every recipe (same budget)")
    ap.add_argument("--batch", type=int, default=8, help="queries per batch of every recipe")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--recipes", default="kit," + ",".join(PEERS))
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=SECTION.KEY=VALUE[,...]")
    ap.add_argument("--demo", action="store_true",
                    help="the demo's statutes and generated questions instead of stard_dev (use another --work)")
    ap.add_argument("--bench-only", action="store_true",
                    help="train nothing: bench the models earlier runs of this script left in --work")
    ap.add_argument("--variant-merge", default="0.5",
                    help="merge weights of each --variant's model (comma-separated; empty: the models alone, half "
                         "the encoding time)")
    ap.add_argument("--bm25", default="bm25", help="the lexical row's spec (bm25, or bm25:words+bigrams): every "
                    "model is also fused with it into hybrid rows")
    ap.add_argument("--report", default="report", help="the bench's folder under --work")
    ap.add_argument("--reference", default=None,
                    help="a model every row is also compared with, paired (e.g. lr1e5, the default recipe, for the "
                         "one-factor rows)")
    ap.add_argument("--distractors", type=int, default=None, help="as real_questions.py (default: all articles)")
    a = ap.parse_args()
    work = Path(a.work).resolve()
    logfile = work / "peer_recipes.log"
    work.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, flush=True)
        with open(logfile, "a", encoding="utf-8") as f:
            f.write(msg + "\n")

    t0 = time.perf_counter()
    if a.demo:
        config = demo_config(work, a.steps, a.batch)
    else:
        corpus, eval_q, _ = rq.build_inputs(work, a.distractors, a.seed, False)
        config = rq.write_config(work, corpus, eval_q, None, a.steps,
                                 [f"train.args.per_device_train_batch_size={a.batch}"])
    recipes = [r.strip() for r in a.recipes.split(",") if r.strip()]
    log(f"recipes {recipes}, variants {a.variant}, {a.steps} steps x batch {a.batch}")
    # the kit's data, written once; every recipe trains on it
    if not a.bench_only:
        kit("run", str(config), "--until", "mine", log=logfile)
    data = work / "run" / "data"
    models: dict[str, str] = {"base": f"local:{rq.MODEL}"}
    peers_alone: list[str] = []

    # in the order asked: the shipped recipe, the peers, then the ablations
    todo: list[tuple[str, list[str] | None]] = [(r, FLAG_README if r == "flag-readme" else None) for r in recipes]
    for v in a.variant:
        name, _, sets = v.partition("=")
        todo.append((name, [s for s in sets.split(",") if s]))
    for name, sets in todo:
        t = time.perf_counter()
        if name in ("st-mined", "st-inbatch"):
            out = train_st(data, str(rq.MODEL), work / "recipes" / name / "model", a.steps, a.batch,
                           name == "st-mined", a.seed, log)
            merged = work / "recipes" / name / "merged-0.5"
            if not (merged / "config.json").exists():
                kit("merge", "--base", str(rq.MODEL), "--finetuned", str(out), "-o", str(merged), "--weights",
                    "0.5", log=logfile)
            models[name] = f"local:{out}"
            models[f"{name}+merge0.5"] = f"local:{merged}"
        else:
            if name == "kit":   # the shipped recipe: the data's own workdir, its models and merges
                run_dir = work / "run"
                if not a.bench_only:
                    kit("run", str(config), "--until", "merge", log=logfile)
                weights = yaml.safe_load(config.read_text(encoding="utf-8"))["merge"]["weights"]
            else:
                vdir, weights = work / "recipes" / name, [float(w) for w in a.variant_merge.split(",") if w]
                if not a.bench_only:
                    kit("run", str(variant_config(config, vdir, sets or [], weights or [0.5])), "--until",
                        "merge" if weights else "train", log=logfile)
                run_dir = vdir / "run"
            models[name] = f"local:{run_dir / 'models' / 'finetuned'}"
            for w in weights:
                models[f"{name}+merge{w}"] = f"local:{run_dir / 'models' / f'merged-{w}'}"
        if name in PEERS:
            peers_alone.append(name)
        log(f"{name}: ready in {time.perf_counter() - t:.0f}s ({', '.join(sets or []) or 'as shipped'})")

    report = work / a.report
    models["bm25"] = a.bm25   # as `kit run` benches it: the lexical row, and every model + BM25 as a hybrid row
    flags = [x for k, v in models.items() for x in ("--model", f"{k}={v}")]
    kit("bench", "--eval", str(data / "eval"), "-o", str(report), *flags, "--baseline", "base",
        "--latency-samples", "0", "--no-progress", log=logfile)
    results = json.loads((report / "results.json").read_text(encoding="utf-8"))
    s = summarise(results, peers_alone, a.reference)
    s["steps"], s["batch"], s["wall_seconds"] = a.steps, a.batch, round(time.perf_counter() - t0)
    log(f"{'demo: generated questions about two held-out statutes' if a.demo else 'stard_dev real questions'}: "
        f"{s['questions']} evaluated, no real question in training; "
        f"{a.steps} steps x batch {a.batch}; best peer alone: {s['best_peer_alone']}")
    rq.print_table(s["mrr@10"], s["vs"], out=log)
    log(f"the report recommends: {s['recommended']}")
    (work / ("peer_summary.json" if a.report == "report" else f"peer_summary.{a.report}.json")).write_text(json.dumps(s, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
