"""What a reranker adds, measured on real questions (STARD: 657 layperson legal questions, ../shared/data/retrieval/
stard_dev), each as a ratio against a named peer measured in the same run, with its 95% paired-bootstrap interval:

1. reranking:     the best embedder's top N reordered by the reranker  vs  that embedder alone (kit bench);
2. filtering:     fine-tuned on reranker-filtered negatives             vs  fine-tuned on plainly mined ones;
3. distillation:  fine-tuned on them with the reranker's scores (kl_div) vs  fine-tuned on plainly mined ones;
   and the margin of mine.reranker, measured on labelled questions (the ``margin`` step).

The reranker is the offline one a user of the kit without GPUs or an API can make: a cross-encoder trained with
`kit rerank-train` from the starter model (zh-e5-small) on questions generated offline (ict + keywords) from the
corpus itself. No real question is used for training: a seeded 'calib' slice of the questions sets the margin,
the rest ('test') measures everything else. The corpus is a subset (every relevant article + a seeded sample of
distractors) so that the whole measurement runs on a 2-core CPU in about an hour; run it niced:

    nice -n 5 .venv/bin/python benchmarks/rerank_gain.py runs/rerank_gain            # every step, resumable
    nice -n 5 .venv/bin/python benchmarks/rerank_gain.py runs/rerank_gain --steps margin,bench   # some steps
    .venv/bin/python benchmarks/rerank_gain.py runs/rerank_gain --report              # print the ratios again

Steps (each skipped when its output exists): subset -> gen (kit gen-queries ict,keywords) -> mine (kit mine, e5)
-> rr_train (kit rerank-train) -> margin -> bench (kit bench with bench.rerankers) -> mine_rr (kit mine with
mine.reranker at the measured margin) -> ft (kit train: plain / filtered / filtered + distilled) -> ft_eval.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STARD = REPO.parent / "shared" / "data" / "retrieval" / "stard_dev"
E5 = REPO.parent / "shared" / "models" / "zh-e5-small"
STEPS = ["subset", "gen", "mine", "rr_train", "margin", "bench", "mine_rr", "ft", "ft_eval"]


def log(msg: str) -> None:
    print(f"[rerank_gain {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _jsonl(path: Path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


# ------------------------------------------------------------------------------------------------ data
def step_subset(wd: Path, a) -> None:
    """corpus.jsonl (kit chunks: every relevant article + a seeded sample of distractors), eval/test and the
    calib questions."""
    docs = _jsonl(STARD / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in _jsonl(STARD / "queries.jsonl")}
    qrels: dict[str, set[str]] = {}
    for line in (STARD / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, d, s = line.split("\t")
        if int(s) > 0:
            qrels.setdefault(q, set()).add(d)
    relevant = {d for ds in qrels.values() for d in ds}
    rng = random.Random(a.seed)
    distractors = [d for d in docs if d["_id"] not in relevant]
    keep = {d["_id"] for d in rng.sample(distractors, min(a.distractors, len(distractors)))} | relevant
    chunks = [{"id": d["_id"], "doc": re.sub(r"第[一二三四五六七八九十百千零〇两]+条.*$", "", d["title"]) or d["title"],
               "page_start": 1, "page_end": 1, "title": d["title"], "text": d["text"]} for d in docs if d["_id"] in keep]
    _write_jsonl(wd / "corpus.jsonl", chunks)
    qids = sorted(q for q in qrels if q in queries and qrels[q] <= keep)
    calib = set(rng.sample(qids, a.calib))
    for name, ids in (("calib", [q for q in qids if q in calib]), ("test", [q for q in qids if q not in calib])):
        out = wd / f"eval_{name}"
        _write_jsonl(out / "corpus.jsonl", [{"id": c["id"], "title": c["title"], "text": c["text"]} for c in chunks])
        _write_jsonl(out / "test_queries.jsonl", [{"id": q, "text": queries[q]} for q in ids])
        (out / "kit_eval.json").write_text(json.dumps({"questions": "real", "holdout": "gold",
                                                       "source": "STARD dev (stard_dev)"}), encoding="utf-8")
        _write_jsonl(out / "test_qrels.jsonl", [{"qid": q, "docid": d, "relevance": 1} for q in ids for d in sorted(qrels[q])])
    log(f"subset: {len(chunks)} articles ({len(relevant)} relevant), {len(qids) - len(calib)} test + {len(calib)} "
        f"calib questions")


def step_gen(wd: Path, a) -> None:
    """Offline questions from the corpus itself (no real question), as FlagEmbedding training rows."""
    from kit.queries import QueryOptions, gen_queries

    gen_queries(wd / "corpus.jsonl", wd / "pairs.jsonl",
                QueryOptions(generator=["ict", "keywords"], per_chunk=1, seed=a.seed))
    rows = [{"query": p["query"], "pos": p["pos"], "neg": [], "pos_ids": [p["chunk_id"]], "doc": p.get("doc"),
             "generator": p.get("generator")} for p in _jsonl(wd / "pairs.jsonl")]
    _write_jsonl(wd / "train.jsonl", rows)
    log(f"gen: {len(rows)} offline training rows")


def mine_options(seed: int = 13, **kw):
    from kit.mine import MineOptions

    # The demo's window (ranks 2-60, 3 negatives for groups of 4) without the embedding-score margin, so the only
    # false-negative filter that differs between the variants is the reranker. (The 5% relative margin would
    # leave 57% of these rows without a negative: zh-e5-small's cosines all lie within 0.86-0.97.) Articles of
    # one law are not in reading order here, so no adjacency exclusion.
    return MineOptions(model=str(E5), range="2-60", negatives=3, relative_margin=None, adjacent=0, seed=seed, **kw)


def step_mine(wd: Path, a) -> None:
    from kit.mine import mine

    mine(wd / "train.jsonl", wd / "corpus.jsonl", wd / "train_hn.jsonl", mine_options())
    # The noise floor of the comparison: another seeded sample of negatives from the same window, no reranker.
    mine(wd / "train.jsonl", wd / "corpus.jsonl", wd / "train_hn_seed2.jsonl", mine_options(seed=14))


# ------------------------------------------------------------------------------------------- reranker
def step_rr_train(wd: Path, a) -> None:
    from kit.rerank_train import RerankTrainOptions, rerank_train
    from kit.rerank_train.options import cpu_recipe

    args = {**cpu_recipe(), "max_steps": a.rr_steps, "seed": 13}   # the embedded default recipe
    rerank_train(RerankTrainOptions(model=str(E5), data=str(wd / "train_hn.jsonl"), output_dir=str(wd / "reranker"),
                                    nproc=1, bf16=True, args=args))


def _separation(fn, tn) -> dict:
    """Youden's-J line between false-negative and true-negative differences, and the AUC."""
    import numpy as np

    from kit.bench.metrics import rejection_threshold

    fn, tn = np.asarray(fn), np.asarray(tn)
    thr = rejection_threshold(fn, tn)
    auc = float((fn[:, None] > tn[None, :]).mean() + 0.5 * (fn[:, None] == tn[None, :]).mean())
    return {"line": thr["threshold"], "tpr": thr["tpr"], "fpr": thr["fpr"], "auc": round(auc, 4)}


def step_margin(wd: Path, a) -> dict:
    """The false-negative line of mine.reranker, measured on the calib questions that have several relevant
    articles: with one relevant article as the positive, the others are false negatives a miner would meet
    (label 1), the embedder's top-30 wrong articles are true negatives (label 0); the margin is where the
    reranker's logit difference (candidate - positive) separates them best (Youden's J). The embedder's own
    cosine difference (what mine's margins use) on the same pairs is the peer."""
    from kit.formats import load_eval
    from kit.providers import make_provider
    from kit.providers.rerankers import make_reranker

    es = load_eval(wd / "eval_calib")
    e5 = make_provider(f"local:{E5}", progress=False)
    q_vec, d_vec = e5.encode_queries(es.query_texts), e5.encode_corpus(es.doc_texts)
    idx = (q_vec @ d_vec.T).argsort(axis=1)[:, ::-1][:, :30]
    rr = make_reranker(f"local:{wd / 'reranker'}")
    row_of = {d: i for i, d in enumerate(es.doc_ids)}
    diffs = {"rr": ([], []), "e5": ([], [])}
    for qi, (qid, q) in enumerate(zip(es.query_ids, es.query_texts)):
        rel = sorted(es.qrels[qid])
        if len(rel) < 2:
            continue
        wrong = [es.doc_ids[int(d)] for d in idx[qi] if es.doc_ids[int(d)] not in es.qrels[qid]]
        ids = rel + wrong
        scores = {"rr": dict(zip(ids, rr.logits(rr.score(q, [es.doc_texts[row_of[d]] for d in ids])))),
                  "e5": {d: float(q_vec[qi] @ d_vec[row_of[d]]) for d in ids}}
        for name, sc in scores.items():
            for p in rel:
                diffs[name][0].extend(sc[o] - sc[p] for o in rel if o != p)
                diffs[name][1].extend(sc[w] - sc[p] for w in wrong)
    rr_sep, e5_sep = _separation(*diffs["rr"]), _separation(*diffs["e5"])
    out = {"margin": round(-rr_sep["line"], 3), "tpr": rr_sep["tpr"], "fpr": rr_sep["fpr"], "auc": rr_sep["auc"],
           "embedder_auc": e5_sep["auc"], "embedder_tpr": e5_sep["tpr"], "embedder_fpr": e5_sep["fpr"],
           "false_negatives": len(diffs["rr"][0]), "true_negatives": len(diffs["rr"][1]),
           "questions": sum(1 for q in es.query_ids if len(es.qrels[q]) >= 2)}
    (wd / "margin.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    log(f"margin: {out}")
    return out


# ----------------------------------------------------------------------------------------------- bench
def bench_options(**kw):
    from kit.bench.stage import BenchOptions

    return BenchOptions(latency_samples=kw.pop("latency_samples", 8), progress=False, k=[1, 3, 5, 10, 20], **kw)


def step_bench(wd: Path, a) -> None:
    from kit.bench.stage import bench

    bench(wd / "eval_test", {"e5": f"local:{E5}", "bm25": "bm25"}, wd / "report_rerank",
          bench_options(rerankers={"rr": f"local:{wd / 'reranker'}"}, rerank_top=a.top, baseline="e5"))


# ------------------------------------------------------------------------------------------- fine-tuning
def step_mine_rr(wd: Path, a) -> None:
    from kit.mine import mine

    margin = json.loads((wd / "margin.json").read_text())["margin"]
    mine(wd / "train.jsonl", wd / "corpus.jsonl", wd / "train_hn_rr.jsonl",
         mine_options(reranker=f"local:{wd / 'reranker'}", reranker_margin=margin))


DATA = {"plain": ("train_hn.jsonl", {}), "filtered": ("train_hn_rr.jsonl", {}),
        "distilled": ("train_hn_rr.jsonl", {"knowledge_distillation": True, "kd_loss_type": "kl_div"}),
        # the noise floor of "filtered": another seeded sample of negatives from the same window, no reranker
        "plain-negs2": ("train_hn_seed2.jsonl", {})}
SEEDS = (13, 14, 15)   # training seeds: a 100-step CPU run varies by several % with the seed alone
VARIANTS = {f"{name}-s{seed}": (data, {**extra, "seed": seed}) for name, (data, extra) in DATA.items()
            for seed in (SEEDS if name != "plain-negs2" else SEEDS[:1])}


def step_ft(wd: Path, a) -> None:
    from kit.train import TrainOptions, train

    for name, (data, extra) in VARIANTS.items():
        out = wd / "models" / name
        if (out / "kit_manifest.json").exists():
            continue
        # The demo's CPU recipe, same seed and steps for every variant: only the data (and distillation) differ.
        args = {"learning_rate": 5e-5, "max_steps": a.steps, "per_device_train_batch_size": 8, "train_group_size": 4,
                "query_max_len": 32, "passage_max_len": 128, "temperature": 0.02, "warmup_steps": 10,
                "logging_steps": 10, "save_steps": 50, "save_total_limit": 1, "dataloader_num_workers": 0,
                **extra}
        log(f"ft: {name}")
        train(str(E5), TrainOptions(data=str(wd / data), output_dir=str(out), nproc=1, bf16=True, args=args))


def step_ft_eval(wd: Path, a) -> None:
    from kit.bench.stage import bench

    models = {"base": f"local:{E5}", **{n: f"local:{wd / 'models' / n}" for n in VARIANTS}}
    bench(wd / "eval_test", models, wd / "report_ft", bench_options(baseline="base", latency_samples=0))


# ---------------------------------------------------------------------------------------------- ratios
def _ratio(base: list[float], other: list[float]) -> str:
    from kit.bench.metrics import paired_bootstrap

    g = paired_bootstrap(base, other)
    sig = "significant" if g["significant"] else "not significant"
    return (f"{g['ratio']:.3f} [95% CI {g['ratio_lo']:.3f}, {g['ratio_hi']:.3f}] ({g['base']:.4f} -> {g['other']:.4f}, "
            f"{g['n_questions']} questions, {sig})")


def ft_lines(models: dict) -> list[str]:
    """Each fine-tuning variant against plain mining: per-question MRR@10 averaged over the training seeds (so
    the ratio is not one seed's luck), its paired bootstrap over the questions, and every seed's own MRR@10."""
    import numpy as np

    def seeds(name):
        return sorted(n for n in models if n.rsplit("-s", 1)[0] == name)

    def pq(names):
        return list(np.mean([models[n]["domain"]["per_query"]["mrr@10"] for n in names], axis=0))

    out = [f"fine-tuning MRR@10 plain (seed {seeds('plain')[0].rsplit('-s', 1)[1]}) / base: "
           f"{_ratio(pq(['base']), pq(seeds('plain')[:1]))}"]
    for name in ("plain", "filtered", "distilled", "plain-negs2"):
        each = ", ".join(f"{models[n]['domain']['metrics']['mrr@10']:.4f}" for n in seeds(name))
        out.append(f"  {name}: MRR@10 per training seed {each}")
    for name in ("filtered", "distilled"):
        out.append(f"fine-tuning MRR@10 {name} / plain, {len(seeds(name))}-seed means: "
                   f"{_ratio(pq(seeds('plain')), pq(seeds(name)))}")
    # Same negatives, same seeds; only the loss differs: what distillation itself adds.
    out.append(f"fine-tuning MRR@10 distilled / filtered (same rows, distillation on/off), 3-seed means: "
               f"{_ratio(pq(seeds('filtered')), pq(seeds('distilled')))}")
    out.append(f"noise floor, training seed alone: plain-s14 / plain-s13: {_ratio(pq(['plain-s13']), pq(['plain-s14']))}")
    out.append(f"noise floor, another sample of negatives: plain-negs2 / plain (seed 13): "
               f"{_ratio(pq(['plain-s13']), pq(['plain-negs2-s13']))}")
    return out


def report(wd: Path) -> None:
    lines = []
    if (wd / "margin.json").exists():
        m = json.loads((wd / "margin.json").read_text())
        lines.append(f"margin (calib, {m['questions']} questions with >= 2 relevant articles): {m['margin']:+.3f} logits; "
                     f"catches {m['tpr']:.0%} of {m['false_negatives']} false negatives, drops {m['fpr']:.0%} of "
                     f"{m['true_negatives']} true negatives; AUC {m['auc']:.3f} (peer, e5's cosine difference on the "
                     f"same pairs: AUC {m.get('embedder_auc', float('nan')):.3f}, at its best line catches "
                     f"{m.get('embedder_tpr', 0):.0%} / drops {m.get('embedder_fpr', 0):.0%})")
    rb = wd / "report_rerank" / "results.json"
    if rb.exists():
        res = json.loads(rb.read_text())
        models = res["models"]
        best = max(models, key=lambda n: models[n]["domain"]["metrics"]["mrr@10"])
        for name, row in res["reranked"].items():
            base = models[row["model"]]["domain"]["per_query"]["mrr@10"]
            tag = " (best embedder)" if row["model"] == best else ""
            lines.append(f"reranking MRR@10 {name} / {row['model']}{tag}: "
                         f"{_ratio(base, row['domain']['per_query']['mrr@10'])}; recall@{row['rerank_top']} of "
                         f"{row['model']}: {models[row['model']]['domain']['metrics'].get('recall@20', float('nan')):.3f}; "
                         f"added {(row.get('latency') or {}).get('rerank_p50_ms')} ms p50 per question")
    fb = wd / "report_ft" / "results.json"
    if fb.exists():
        lines += ft_lines(json.loads(fb.read_text())["models"])
    st = wd / "train_hn_rr.stats.json"
    if st.exists():
        r = json.loads(st.read_text())["reranker"]
        lines.append(f"mining with the reranker removed {r['removed']} of {r['candidates_scored']} sampled candidates "
                     f"({r['removed_share']:.1%})")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps to run (default: all)")
    ap.add_argument("--report", action="store_true", help="only print the ratios of a finished run")
    ap.add_argument("--distractors", type=int, default=1200, help="distractor articles sampled into the corpus")
    ap.add_argument("--calib", type=int, default=150, help="questions that set the margin (the rest: test)")
    ap.add_argument("--rr-steps", type=int, default=120, help="reranker training steps (the embedded default)")
    ap.add_argument("--ft-steps", dest="steps_n", type=int, default=100, help="training steps of each fine-tune")
    ap.add_argument("--top", type=int, default=20, help="bench.rerank_top")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    a.steps_arg, a.steps = a.steps.split(","), a.steps_n
    wd = a.workdir.resolve()
    wd.mkdir(parents=True, exist_ok=True)
    if not a.report:
        done = {"subset": wd / "eval_test" / "test_qrels.jsonl", "gen": wd / "train.jsonl",
                "mine": wd / "train_hn_seed2.jsonl", "rr_train": wd / "reranker" / "kit_manifest.json",
                "margin": wd / "margin.json", "bench": wd / "report_rerank" / "results.json",
                "mine_rr": wd / "train_hn_rr.jsonl", "ft": wd / "models" / "distilled-s15" / "kit_manifest.json",
                "ft_eval": wd / "report_ft" / "results.json"}
        for step in [s for s in STEPS if s in a.steps_arg]:
            if done[step].exists():
                log(f"{step}: done already ({done[step]})")
                continue
            t0 = time.time()
            globals()[f"step_{step}"](wd, a)
            log(f"{step}: {time.time() - t0:.0f}s")
    report(wd)


if __name__ == "__main__":
    main()
