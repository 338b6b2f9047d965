"""Real-question benchmark (issue 13): the kit's own pipeline on the stard_dev statutes, every model evaluated
on the real layperson questions, each ratio to the base model with its 95% paired-bootstrap interval.

    .venv/bin/python benchmarks/real_questions.py                   # no real question in training
    .venv/bin/python benchmarks/real_questions.py --half-real       # half of the questions (seeded) train

What it does, with the kit's own commands only:
1. corpus: all 9,626 articles, or every article a question points to + a seeded sample of the others
   (``--distractors N``),
   written as a JSONL corpus (``{_id, title, text}``) that enters ``kit prep`` as documents. Titles lose the
   "中华人民共和国" prefix: in stard_dev the relevant 刑法 articles carry it and its distractors do not, a form
   difference a model could learn instead of the content.
2. questions: BEIR folders of the real questions (qrels keyed by article id = the chunks' ``source_id``); with
   ``--half-real`` a seeded half joins training (``split.train_queries``) and the other half is evaluated.
3. config: ``configs/demo.yaml`` -- the shipped defaults -- with only the inputs, the questions and the
   workdir replaced (``--steps`` overrides train.args.max_steps when given), then ``kit run``.
4. prints MRR@10 of every model and fine-tuned/base, merged/base, best/base with their intervals.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
STARD = REPO.parent / "shared" / "data" / "retrieval" / "stard_dev"
MODEL = REPO.parent / "shared" / "models" / "zh-e5-small"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _qrels(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if n == 0 and not parts[-1].strip().isdigit():
            continue
        if len(parts) >= 3 and int(parts[2]) > 0:
            out.setdefault(parts[0], []).append(parts[1])
    return out


def _beir(folder: Path, queries: list[dict], qrels: dict[str, list[str]]) -> Path:
    _write_jsonl(folder / "queries.jsonl", queries)
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q['_id']}\t{d}\t1" for q in queries for d in qrels[q["_id"]]]
    (folder / "qrels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def build_inputs(work: Path, distractors: int | None, seed: int, half_real: bool) -> tuple[Path, Path, Path | None]:
    """(JSONL corpus, eval questions, training questions or None)."""
    corpus = _jsonl(STARD / "corpus.jsonl")
    queries = _jsonl(STARD / "queries.jsonl")
    qrels = _qrels(STARD / "qrels.tsv")
    queries = [q for q in queries if q["_id"] in qrels]
    relevant = {d for ds in qrels.values() for d in ds}
    others = sorted(c["_id"] for c in corpus if c["_id"] not in relevant)
    n = len(others) if distractors is None else min(distractors, len(others))
    keep = relevant | set(random.Random(seed).sample(others, n))
    rows = [{"_id": c["_id"], "title": c.get("title", "").replace("中华人民共和国", ""), "text": c["text"]}
            for c in corpus if c["_id"] in keep]
    _write_jsonl(work / "input" / "stard_articles.jsonl", rows)
    if not half_real:
        return work / "input" / "stard_articles.jsonl", _beir(work / "questions_eval", queries, qrels), None
    order = sorted(queries, key=lambda q: q["_id"])
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    train_q, eval_q = order[:half], order[half:]
    return (work / "input" / "stard_articles.jsonl", _beir(work / "questions_eval", eval_q, qrels),
            _beir(work / "questions_train", train_q, qrels))


def _set(cfg: dict, assignment: str) -> None:
    """``section.key=value`` (YAML value) into the config, for ablations: --set mine.relative_margin=0.05"""
    key, sep, value = assignment.partition("=")
    if not sep or "." not in key:
        raise SystemExit(f"--set {assignment!r}: expected SECTION.KEY=VALUE")
    *path, last = key.split(".")
    node = cfg
    for part in path:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)


def write_config(work: Path, corpus: Path, eval_q: Path, train_q: Path | None, steps: int | None,
                 sets: list[str] = ()) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    cfg["workdir"] = str(work / "run")
    cfg["model"] = str(MODEL)
    cfg["prep"]["inputs"] = [str(corpus)]
    cfg["split"] = {**(cfg.get("split") or {}), "eval_queries": str(eval_q)}
    cfg["split"].pop("eval_ratio", None)
    if train_q:
        cfg["split"]["train_queries"] = str(train_q)
    if steps:
        cfg["train"]["args"]["max_steps"] = steps
    cfg.setdefault("bench", {}).pop("general", None)   # the general check is the demo's business, not this one's
    # the kit's own mining defaults (no margin, no widening): the demo's are for its generated statute questions
    for key in ("relative_margin", "widen"):
        cfg["mine"].pop(key, None)
    for assignment in sets:
        _set(cfg, assignment)
    path = work / "real_questions.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def summarise(results: dict, deployed: dict | None = None) -> dict:
    """Every row (models, hybrid rows; with ``deployed``, the deploy report's rows as "deploy: NAME") against base,
    the recommended candidate against base, and each factor of issue 21 on its own: fusion method and weight
    (each hybrid against its dense model, weighted against even), the final fit (deployed against held out)."""
    from kit.bench.metrics import paired_bootstrap

    rows = {**results["models"], **(results.get("hybrid") or {})}
    base = results["baseline"]
    rr = {m: e["domain"]["per_query"]["mrr@10"] for m, e in rows.items()}
    if deployed:
        rr.update({f"deploy: {m}": e["domain"]["per_query"]["mrr@10"]
                   for m, e in {**deployed["models"], **(deployed.get("hybrid") or {})}.items() if m != "bm25"})
    out = {"questions": len(rr[base]), "mrr@10": {m: round(sum(v) / len(v), 4) for m, v in rr.items()}}
    tuned = [m for m in results["models"] if m.startswith(("fine-tuned", "merged", "adapter"))]
    for m in [m for m in rr if m != base and m != "deploy: base"]:   # bm25 too: every figure carries its interval
        out[f"{m}/base"] = paired_bootstrap(rr[base], rr[m])
    if tuned:
        best = max(tuned, key=lambda m: out["mrr@10"][m])
        out["best"] = best
        out["best/base"] = out[f"{best}/base"]
    factors = {}
    for name, row in (results.get("hybrid") or {}).items():   # fusion: the hybrid against its own dense model
        factors[f"{name} / {row['model']}"] = paired_bootstrap(rr[row["model"]], rr[name])
    for name in [n for n in rr if n.endswith("(weighted)")]:   # weight: fitted against a fixed 0.5
        even = name.replace("(weighted)", "(even)")
        if even in rr:
            factors[f"{name} / {even}"] = paired_bootstrap(rr[even], rr[name])
    if deployed:   # final fit: the deployed model (and its hybrids) against the held-out pick (and its hybrids)
        held = next((m for m in deployed["models"] if m.endswith("(held out)")), None)
        for m in [m for m in rr if m.startswith("deploy: deployed")]:
            ref = m.replace("deployed", held, 1) if held else None
            if ref and ref in rr:
                factors[f"{m} / {ref}"] = paired_bootstrap(rr[ref], rr[m])
        pick = deployed["recommendation"].get("recommended_search")
        if pick:
            out["recommended"] = f"deploy: {pick}"
            out["recommended/base"] = out[f"deploy: {pick}/base"]
    elif results["recommendation"].get("recommended_search") not in (None, base):
        out["recommended"] = results["recommendation"]["recommended_search"]
        out["recommended/base"] = out[f"{out['recommended']}/base"]
    out["factors"] = factors
    return out


def print_table(mrr: dict, ratios: dict, out=print) -> None:
    """MRR@10 per model, then each ratio with its interval (shared with peer_recipes.py)."""
    width = max(map(len, mrr), default=0) + 2
    for m, v in mrr.items():
        out(f"  MRR@10 {m:<{width}} {v:.4f}")
    width = max(map(len, ratios), default=0) + 2
    for key, c in ratios.items():
        out(f"  {key:<{width}} x{c['ratio']:.3f}  95% CI [{c['ratio_lo']:.3f}, {c['ratio_hi']:.3f}]"
            f"{'  (significant)' if c['significant'] else ''}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(REPO / "runs" / "real_questions"))
    # The whole corpus by default (9,626 articles, about 25 minutes on 2 cores): on a 2,000-article subset
    # (--distractors 1351) the base loses less to the distractors and the same models measure x1.09-1.10
    # instead of x1.12-1.16, too close to the 1.10 bar to show it (exploration in benchmarks/RESULTS.md).
    ap.add_argument("--distractors", type=int, default=None,
                    help="articles besides the relevant ones, a seeded sample (default: all of them)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--steps", type=int, default=None, help="override train.args.max_steps")
    ap.add_argument("--half-real", action="store_true", help="a seeded half of the questions joins training")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a setting of configs/demo.yaml (ablations), e.g. mine.relative_margin=0.05")
    ap.add_argument("--name", default=None, help="subfolder of --work (default: offline or half_real)")
    ap.add_argument("--summary-only", action="store_true",
                    help="no kit run: summarise the reports already in WORK/NAME/run (e.g. a run of "
                         "benchmarks/peer_recipes.py: --work runs/peers/recipes --name lr1e5)")
    a = ap.parse_args()
    work = Path(a.work) / (a.name or ("half_real" if a.half_real else "offline"))
    t0 = time.perf_counter()
    if not a.summary_only:
        corpus, eval_q, train_q = build_inputs(work, a.distractors, a.seed, a.half_real)
        config = write_config(work, corpus, eval_q, train_q, a.steps, a.set)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if a.set:
            print("overrides: " + ", ".join(a.set))
        rc = subprocess.run([sys.executable, "-m", "kit.cli", "run", str(config)], env=env).returncode
        if rc != 0:
            print(f"kit run failed with exit status {rc}", file=sys.stderr)
            return rc
    results = json.loads((work / "run" / "report" / "results.json").read_text(encoding="utf-8"))
    deployed = work / "run" / "deploy" / "report" / "results.json"   # kit/deploy/: the pick refitted on every chunk
    s = summarise(results, json.loads(deployed.read_text(encoding="utf-8")) if deployed.exists() else None)
    s["wall_seconds"] = round(time.perf_counter() - t0, 1)
    print(f"stard_dev real questions: {s['questions']} evaluated ({'half-real' if a.half_real else 'offline'}: "
          f"{'half of the questions in training' if a.half_real else 'no real question in training'}), "
          f"kit run {s['wall_seconds']:.0f}s")
    print_table(s["mrr@10"], {k: s[k] for k in s if k.endswith("/base")})
    if s.get("recommended"):
        print(f"the report's recommendation: {s['recommended']}")
    if s["factors"]:
        print("factors, each on its own (same questions):")
        print_table({}, s["factors"])
    (work / "summary.json").write_text(json.dumps(s, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
