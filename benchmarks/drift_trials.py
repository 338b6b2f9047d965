"""Drift watch calibration (issue 22): how often `kit drift`'s signals call for re-training when they should not,
and when they should.

    .venv/bin/python benchmarks/drift_trials.py [--trials 20] [--json runs/drift_trials.json]

Data: stard_dev (../shared/data/retrieval/stard_dev), 9,626 statute articles of 127 laws; a law is an article's
title without its article number ("刑法第二条" -> "刑法"). Each article is its own document, as prep makes it of a
BEIR corpus, and is embedded as the bench embeds a passage (title + text, the model's passage prefix).
Another domain: the E.SUN insurance clauses and bank FAQ (../shared/data/retrieval/esun_insurance_faq_zhtw,
Traditional Chinese; a clause is cut to its first 300 characters, about one chunk).
Model: ../shared/models/zh-e5-small through the kit's embedding cache (the first run encodes what is missing,
later runs encode nothing).

Scenarios, each over seeded trials (seed = trial number), with the stage's own signal functions and verdict:
  same-laws      v1 = a random half of every article; new = the other half          -> should be no_retrain
  unseen-laws    v1 = the articles of a random half of the laws; new = the others'   -> should be retrain
  faq / clauses  v1 = a random half of the articles; new = 300 sampled FAQ entries / insurance clauses -> retrain
  and, for the record (no target): same-laws-50 / unseen-laws-50 (new = 50 articles only) and one-unseen-law
  (v1 = every law but one with >= 30 articles; new = that law's articles).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
STARD = SHARED / "data/retrieval/stard_dev/corpus.jsonl"
ESUN = SHARED / "data/retrieval/esun_insurance_faq_zhtw"
MODEL = SHARED / "models/zh-e5-small"
ARTICLE = re.compile(r"第[零一二三四五六七八九十百千〇两]+条(之[一二三四五六七八九十]+)?$")


def law_of(title: str) -> str:
    return ARTICLE.sub("", title)


def load(encoder):
    """(stard vectors, laws, article ids, keys), {other domain: vectors}."""
    from kit.formats import titled
    from kit.io import text_hash

    rows = [json.loads(line) for line in STARD.open(encoding="utf-8")]
    texts = [encoder.spec.passage_text(titled(r["title"], r["text"])) for r in rows]
    vecs = encoder.encode(texts, desc="stard_dev")
    laws = np.array([law_of(r["title"]) for r in rows])
    other = {}
    for name, folder, cut in (("faq", "beir_faq", None), ("clauses", "beir_insurance", 300)):
        docs = [json.loads(line) for line in (ESUN / folder / "corpus.jsonl").open(encoding="utf-8")]
        body = ["".join(d["text"].split("\n"))[:cut] if cut else d["text"] for d in docs]
        other[name] = encoder.encode([encoder.spec.passage_text(titled(d.get("title"), b)) for d, b in zip(docs, body)],
                                     desc=name)
    return vecs, laws, np.array([r["_id"] for r in rows]), np.array([text_hash(t) for t in texts]), other


def split(scenario: str, seed: int, laws: np.ndarray, n_other: dict) -> tuple[np.ndarray, np.ndarray | tuple]:
    """(indexes of v1's articles, indexes of the new articles | (domain, indexes))."""
    rng = np.random.default_rng(seed)
    n = len(laws)
    if scenario.startswith("same-laws") or scenario in n_other:
        perm = rng.permutation(n)
        ref, new = np.sort(perm[: n // 2]), np.sort(perm[n // 2:])
        if scenario in n_other:
            return ref, (scenario, np.sort(rng.choice(n_other[scenario], size=300, replace=False)))
    elif scenario.startswith("unseen-laws"):
        names = np.unique(laws)
        held = set(rng.permutation(names)[: len(names) // 2])
        mask = np.array([x in held for x in laws])
        ref, new = np.flatnonzero(~mask), np.flatnonzero(mask)
    elif scenario == "one-unseen-law":
        names, counts = np.unique(laws, return_counts=True)
        law = rng.choice(names[counts >= 30])
        ref, new = np.flatnonzero(laws != law), np.flatnonzero(laws == law)
    else:
        raise ValueError(scenario)
    if scenario.endswith("-50"):
        new = np.sort(rng.choice(new, size=50, replace=False))
    return ref, new


def trial(scenario, seed, data, opts) -> dict:
    from kit.drift.signals import coverage, distribution
    from kit.drift.verdict import coverage_vote, decide, distribution_vote

    vecs, laws, ids, keys, other = data
    ref, new = split(scenario, seed, laws, {k: len(v) for k, v in other.items()})
    new_vecs = other[new[0]][new[1]] if isinstance(new, tuple) else vecs[new]
    if not isinstance(new, tuple):   # new chunks are texts v1 lacks (titles make every article's text unique)
        new_vecs = new_vecs[~np.isin(keys[new], keys[ref])]
    cov = coverage(vecs[ref], ids[ref], keys[ref], new_vecs, opts.coverage_quantile, opts.calibration_sample, seed)
    dist = (distribution(vecs[ref], new_vecs, opts.sample_size, opts.permutations, opts.folds, seed)
            if len(new_vecs) >= opts.min_new_chunks else None)
    votes = [coverage_vote(cov, opts.alpha, opts.coverage_min_share),
             distribution_vote(dist, opts.alpha, opts.min_auc)]
    verdict, _ = decide(votes)
    return {"scenario": scenario, "seed": seed, "v1": len(ref), "new": len(new_vecs), "verdict": verdict,
            "coverage_share": cov.share, "coverage_p": cov.p_value, "coverage_vote": bool(votes[0][0]),
            "mmd_p": dist.p_value if dist else None, "auc": dist.auc if dist else None,
            "distribution_vote": bool(votes[1][0])}


TARGETS = {"same-laws": ("no_retrain", ">= 95% no_retrain (false alarm <= 5%)"),
           "unseen-laws": ("retrain", ">= 95% retrain"), "faq": ("retrain", "100% retrain"),
           "clauses": ("retrain", "100% retrain")}


def table(results: list[dict]) -> str:
    lines = ["| scenario | trials | v1 / new chunks (median) | retrain | coverage: uncovered share (min-max) | "
             "coverage votes | MMD p (max) | AUC (min-max) | distribution votes | target |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for sc in dict.fromkeys(r["scenario"] for r in results):
        rs = [r for r in results if r["scenario"] == sc]
        share = [r["coverage_share"] for r in rs]
        auc = [r["auc"] for r in rs if r["auc"] is not None]
        mmd = [r["mmd_p"] for r in rs if r["mmd_p"] is not None]
        lines.append(
            f"| {sc} | {len(rs)} | {int(np.median([r['v1'] for r in rs]))} / {int(np.median([r['new'] for r in rs]))} "
            f"| {sum(r['verdict'] == 'retrain' for r in rs)}/{len(rs)} | {min(share):.3f}-{max(share):.3f} "
            f"| {sum(r['coverage_vote'] for r in rs)} | {max(mmd):.3g} | {min(auc):.2f}-{max(auc):.2f} "
            f"| {sum(r['distribution_vote'] for r in rs)} | {TARGETS.get(sc, ('', 'for the record'))[1]} |")
    return "\n".join(lines)


def main() -> None:
    from kit.drift.options import DriftOptions
    from kit.embed import LocalEncoder

    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--scenarios", default="same-laws,unseen-laws,faq,clauses,same-laws-50,unseen-laws-50,"
                                           "one-unseen-law")
    ap.add_argument("--json", help="write every trial here")
    args = ap.parse_args()
    opts = DriftOptions()
    t0 = time.perf_counter()
    encoder = LocalEncoder(str(MODEL), batch_size=opts.batch_size, precision=opts.precision)
    data = load(encoder)
    print(f"embeddings ready in {time.perf_counter() - t0:.0f}s ({len(data[0])} articles, "
          f"{len(set(data[1]))} laws)", file=sys.stderr)
    results = []
    for sc in args.scenarios.split(","):
        t1 = time.perf_counter()
        for seed in range(args.trials):
            results.append(trial(sc, seed, data, opts))
        print(f"{sc}: {time.perf_counter() - t1:.0f}s", file=sys.stderr)
    print(f"options: alpha {opts.alpha}, coverage_quantile {opts.coverage_quantile}, coverage_min_share "
          f"{opts.coverage_min_share}, min_auc {opts.min_auc}, sample_size {opts.sample_size}, permutations "
          f"{opts.permutations}, calibration_sample {opts.calibration_sample}")
    print(table(results))
    bad = [sc for sc, (want, _) in TARGETS.items()
           if any(r["scenario"] == sc for r in results)
           and sum(r["verdict"] == want for r in results if r["scenario"] == sc)
           < (0.95 if sc in ("same-laws", "unseen-laws") else 1.0) * sum(r["scenario"] == sc for r in results)]
    print("targets met" if not bad else f"targets missed: {', '.join(bad)}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
