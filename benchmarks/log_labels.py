"""Question-log benchmark (issue 23): a seeded half of stard_dev's real questions is the search log, its labels
removed; the other half is the eval set. The kit labels the log itself (the `logs:` stage) and trains on it.

    .venv/bin/python benchmarks/log_labels.py --judge-only     # the judge alone: kit run --until logs (~1 min)
    .venv/bin/python benchmarks/log_labels.py                  # the whole kit run (~25 min on 2 cores)

What it does, with the kit's own commands only:
1. the corpus, the half/half split and the config of benchmarks/real_questions.py (``--half-real``, seed 13: the
   split of its "half real" figures); the training half becomes ``log.jsonl``, one question a row and nothing
   else, and the config gets ``logs: {path: log.jsonl}`` instead of ``split.train_queries``.
2. ``kit run`` (``--until logs`` with --judge-only).
3. the judge against the hidden labels: precision (accepted passages that are a gold article's) and recall
   (questions given at least one gold passage), candidate recall (a gold passage among the candidates at all),
   and where the wrong labels go (the right law's neighbouring article, or another law).
4. the judge chosen by measurement: every offline method x threshold x max_labels, over 20 seeded halves of the
   log: on each, the rule with the most correct labels net of wrong ones on the calibration half is picked and
   scored on the other half (the selection's held-out figure: a calibration half's own figures are optimistic by
   construction); the default shipped is the rule with the best mean calibration net.
5. missing documents: the gold articles of a seeded fifth of the log taken out of the corpus, the stage run again:
   are those questions judged "no answer" and listed first in the report?
6. with the whole run: MRR@10 of every model against base with 95% paired-bootstrap intervals, beside the same
   split's figures without the log and with the labelled half (benchmarks/RESULTS.md).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_questions as rq  # noqa: E402  (the same corpus, questions, split and config)

REPO = rq.REPO
# The same split's figures without the log (no real question in training) and with the labelled half in training
# (split.train_queries), benchmarks/RESULTS.md "Real questions (issue 13)": best/base.
REFERENCE = {"offline (no real question in training)": 1.115, "labelled half in training": 1.236}


def build(work: Path, seed: int, steps: int | None, sets: list[str], judge_only: bool) -> Path:
    corpus, eval_q, train_q = rq.build_inputs(work, None, seed, half_real=True)
    log = work / "log.jsonl"
    rq._write_jsonl(log, [{"question": q["text"]} for q in rq._jsonl(train_q / "queries.jsonl")])
    config = rq.write_config(work, corpus, eval_q, None, steps)
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg["logs"] = {"path": str(log), "judge": "offline"}
    # The held-out figure is the one measured here; deploy's refit on every chunk would train again (and does not
    # take the log's questions yet: kit/deploy/stage.py calls split_for_deployment without them).
    cfg["deploy"] = {"fit_all": "off"}
    for assignment in sets:
        rq._set(cfg, assignment)
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return config


def hidden_labels(work: Path) -> tuple[dict[str, set[str]], dict[str, str], dict[str, str]]:
    """(question text -> gold article ids, chunk id -> article id, article id -> law name)."""
    qrels = rq._qrels(rq.STARD / "qrels.tsv")
    # keyed as the log reader writes a question: whitespace runs collapsed to one space
    gold = {" ".join(q["text"].split()): set(qrels[q["_id"]])
            for q in rq._jsonl(work / "questions_train" / "queries.jsonl")}
    chunks = rq._jsonl(work / "run" / "corpus.jsonl")
    article = {c["id"]: str(c.get("source_id")) for c in chunks}
    law = {str(c.get("source_id")): (c.get("title") or "").rpartition("第")[0] for c in chunks}
    return gold, article, law


def judged(rows: list[dict], gold, article, score_of, bar: float, max_labels: int) -> list[tuple[int, int, bool]]:
    """Per question (accepted, accepted that are gold, any gold among the candidates) under a rule."""
    out = []
    for r in rows:
        scored = sorted(((score_of(r, c), c["id"]) for c in r["candidates"]), key=lambda x: -x[0])
        acc = [cid for s, cid in scored if s >= bar][:max_labels]
        g = gold.get(r["query"], set())
        out.append((len(acc), sum(article[c] in g for c in acc), any(article[c["id"]] in g for c in r["candidates"])))
    return out


def score_fn(method: str):
    if method == "agreement":
        return lambda r, c: (math.sqrt(1 / (c["model_rank"] * c["bm25_rank"]))
                             if c["model_rank"] and c["bm25_rank"] else 0.0)
    return lambda r, c: r["margin"] if c["model_rank"] == 1 else 0.0


def figures(res: list[tuple[int, int, bool]]) -> dict:
    acc, good = sum(a for a, _, _ in res), sum(g for _, g, _ in res)
    return {"questions": len(res), "labelled": sum(a > 0 for a, _, _ in res), "labels": acc,
            "precision": round(good / acc, 3) if acc else None,
            "recall": round(sum(g > 0 for _, g, _ in res) / len(res), 3), "net": good - (acc - good)}


GRID = {"agreement": [1.0, 0.7, 0.57, 0.5, 0.44, 0.4, 0.33], "dense_margin": [0.03, 0.02, 0.015, 0.01, 0.005]}


def _mean(dicts: list[dict], key: str) -> float | None:
    vals = [d[key] for d in dicts if d[key] is not None]
    return round(sum(vals) / len(vals), 3) if vals else None


def sweep(rows, gold, article, splits: int) -> dict:
    """Every method x threshold x max_labels, over ``splits`` seeded halves of the log: on each, the rule with the
    most correct labels net of wrong ones on the calibration half is picked and scored on the other half (the
    selection's honest, held-out figure); the rule shipped is the one with the best mean calibration net."""
    rules = [(m, b, k) for m, bars in GRID.items() for b in bars for k in (1, 2)]
    cal_figs = {r: [] for r in rules}
    rep_figs = {r: [] for r in rules}
    picked = []
    for seed in range(splits):
        order = sorted(range(len(rows)), key=lambda i: rows[i]["id"])
        random.Random(seed).shuffle(order)
        cal, rest = [rows[i] for i in order[:len(rows) // 2]], [rows[i] for i in order[len(rows) // 2:]]
        for r in rules:
            cal_figs[r].append(figures(judged(cal, gold, article, score_fn(r[0]), r[1], r[2])))
            rep_figs[r].append(figures(judged(rest, gold, article, score_fn(r[0]), r[1], r[2])))
        best = max(rules, key=lambda r: (cal_figs[r][-1]["net"], cal_figs[r][-1]["precision"] or 0))
        picked.append((best, rep_figs[best][-1]))
    table = [{"method": r[0], "threshold": r[1], "max_labels": r[2],
              "calibration": {k: _mean(cal_figs[r], k) for k in ("precision", "recall", "net")},
              "report": {k: _mean(rep_figs[r], k) for k in ("precision", "recall", "net")}} for r in rules]
    pick = max(table, key=lambda t: (t["calibration"]["net"], t["calibration"]["precision"] or 0))
    held_out = {k: _mean([f for _, f in picked], k) for k in ("precision", "recall", "net")}
    counts: dict[str, int] = {}
    for (m, b, k), _ in picked:
        counts[f"{m} >= {b:g} max {k}"] = counts.get(f"{m} >= {b:g} max {k}", 0) + 1
    return {"splits": splits, "half": len(rows) // 2, "table": table, "pick": pick, "picks": counts,
            "selection_held_out": held_out}


def wrong_labels(rows, gold, article, law) -> dict:
    """Where the judge's wrong labels go: the neighbouring article of a gold article's law, or another law."""
    same = other = 0
    for r in rows:
        g = gold.get(r["query"], set())
        for cid in r["label"]:
            if article[cid] in g:
                continue
            if law[article[cid]] in {law.get(x) for x in g}:
                same += 1
            else:
                other += 1
    return {"wrong": same + other, "same_law_other_article": same, "other_law": other}


def judge_report(work: Path, splits: int) -> dict:
    rows = rq._jsonl(work / "run" / "data" / "log_labels.jsonl")
    gold, article, law = hidden_labels(work)
    used = [r for r in rows if r["status"] in ("labelled", "no_answer")]
    res = [(len(r["label"]), sum(article[c] in gold.get(r["query"], set()) for c in r["label"]),
            any(article[c["id"]] in gold.get(r["query"], set()) for c in r["candidates"])) for r in used]
    out = {"log_questions": len(rows), "judged": len(used), "as_run": figures(res),
           "candidate_recall": round(sum(x for _, _, x in res) / max(1, len(res)), 3),
           "wrong_labels": wrong_labels(used, gold, article, law), "sweep": sweep(used, gold, article, splits)}
    return out


def missing_documents(work: Path, share: float, seed: int) -> dict:
    """Does the report find the documents a company lacks? The articles answering a seeded ``share`` of the log's
    questions are taken out of the corpus and the stage runs again over what is left (kit.questionlog.run, same
    settings): the questions left without any gold article should be judged "no answer", and come first in the
    report's list of questions nothing answers, more often than the others."""
    from sklearn.metrics import roc_auc_score

    from kit.questionlog import LogFiles, LogOptions, run

    gold, article, _ = hidden_labels(work)
    questions = sorted(gold)
    lost_q = set(random.Random(seed).sample(questions, round(share * len(questions))))
    removed = set().union(*(gold[q] for q in lost_q))
    chunks = [c for c in rq._jsonl(work / "run" / "corpus.jsonl") if str(c.get("source_id")) not in removed]
    out = work / "missing"
    rq._write_jsonl(out / "corpus.jsonl", chunks)
    (out / "log_labels.jsonl").unlink(missing_ok=True)
    result = run(LogFiles(corpus=str(out / "corpus.jsonl"), model=str(rq.MODEL), labels=str(out / "log_labels.jsonl"),
                          report=str(out / "log_report.json")), LogOptions(path=str(work / "log.jsonl")),
                 progress=False)
    rows = [r for r in rq._jsonl(result.labels_path) if r["status"] in ("labelled", "no_answer")]
    lost = [not (gold[r["query"]] - removed) for r in rows]
    listed = {m["query"] for m in json.loads(result.report_path.read_text(encoding="utf-8"))["missing"]}

    def no_answer(flag: bool) -> float:
        group = [r for r, x in zip(rows, lost) if x == flag]
        return round(sum(r["status"] == "no_answer" for r in group) / max(1, len(group)), 3)

    return {"questions": len(rows), "without_any_gold_article": sum(lost), "articles_removed": len(removed),
            "no_answer_share_lost": no_answer(True), "no_answer_share_kept": no_answer(False),
            "top1_auc": round(float(roc_auc_score(lost, [-r["top1"] for r in rows])), 3),
            "listed": len(listed), "listed_lost": sum(q in listed for q, x in zip([r["query"] for r in rows], lost)
                                                      if x),
            "base_rate": round(sum(lost) / len(rows), 3)}


def print_missing(m: dict) -> None:
    print(f"missing documents: the gold articles of {m['without_any_gold_article']} of {m['questions']} log "
          f"questions removed ({m['articles_removed']} articles): judged 'no answer' {m['no_answer_share_lost']:.0%} "
          f"of them vs {m['no_answer_share_kept']:.0%} of the others; top-1 score tells them apart with AUC "
          f"{m['top1_auc']}; {m['listed_lost']} of the report's {m['listed']} listed questions are theirs "
          f"(base rate {m['base_rate']:.0%})")


def print_judge(j: dict) -> None:
    a = j["as_run"]
    print(f"log: {j['log_questions']} questions, {j['judged']} judged; judge as run: {a['labelled']} labelled "
          f"({a['labels']} passages), precision {a['precision']}, recall {a['recall']}; a gold passage among the "
          f"candidates at all: {j['candidate_recall']}")
    w = j["wrong_labels"]
    print(f"wrong labels: {w['wrong']} ({w['same_law_other_article']} the right law's other article, "
          f"{w['other_law']} another law)")
    s = j["sweep"]
    print(f"judge chosen by measurement: {s['splits']} seeded halves of the judged log ({s['half']} questions a "
          f"side), calibration half | report half (means over the splits):")
    for t in s["table"]:
        c, r = t["calibration"], t["report"]
        mark = "  <- pick" if t is s["pick"] else ""
        print(f"  {t['method']:<12} >= {t['threshold']:<5g} max {t['max_labels']}: calibration P {c['precision']} "
              f"R {c['recall']} net {c['net']:+.1f} | report P {r['precision']} R {r['recall']} net "
              f"{r['net']:+.1f}{mark}")
    h = s["selection_held_out"]
    print(f"picked on each calibration half: {s['picks']}; those picks on their report halves: P {h['precision']} "
          f"R {h['recall']} net {h['net']:+.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(REPO / "runs" / "log_labels"))
    ap.add_argument("--seed", type=int, default=13, help="the half/half split (13: real_questions.py's)")
    ap.add_argument("--splits", type=int, default=20, help="seeded calibration/report halves of the log")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--judge-only", action="store_true", help="kit run --until logs, then the judge's figures")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--name", default="offline_judge")
    ap.add_argument("--missing-share", type=float, default=0.2,
                    help="share of the log whose gold articles are removed to test the missing-documents list (0: no)")
    ap.add_argument("--summary-only", action="store_true", help="no kit run: the figures of WORK/NAME as it is")
    a = ap.parse_args()
    work = Path(a.work) / a.name
    t0 = time.perf_counter()
    if not a.summary_only:
        config = build(work, a.seed, a.steps, a.set, a.judge_only)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "kit.cli", "run", str(config)] + ["--from", "logs"] \
            + (["--until", "logs"] if a.judge_only else [])   # --from: a changed default of the judge re-runs it
        rc = subprocess.run(cmd, env=env).returncode
        if rc != 0:
            print(f"kit run failed with exit status {rc}", file=sys.stderr)
            return rc
    out = {"judge": judge_report(work, a.splits), "wall_seconds": round(time.perf_counter() - t0, 1)}
    print_judge(out["judge"])
    if a.missing_share > 0:
        out["missing_documents"] = missing_documents(work, a.missing_share, a.seed)
        print_missing(out["missing_documents"])
    if not a.judge_only:
        results = json.loads((work / "run" / "report" / "results.json").read_text(encoding="utf-8"))
        s = rq.summarise(results)
        out["bench"] = s
        print(f"stard_dev: {s['questions']} eval questions; the log's {out['judge']['log_questions']} questions "
              f"trained with the judge's labels, no human label; kit run {out['wall_seconds']:.0f}s")
        rq.print_table(s["mrr@10"], {k: s[k] for k in s if k.endswith("/base")})
        for name, ratio in REFERENCE.items():
            print(f"  same split, {name}: best/base x{ratio:.3f}")
    (work / "summary.json").write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
