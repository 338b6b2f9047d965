"""A knowledge base that grows (issue 22, point 5): v1 trained on half of the laws, the other half arrives; the v1
model unchanged against a full re-run from the base model and against `kit update` from v1, on real questions about
the old laws and about the new ones.

    .venv/bin/python benchmarks/update_sequence.py [--seed 22] [--work runs/update_sequence]

Data: stard_dev (../shared/data/retrieval/stard_dev): 9,626 articles of 127 laws, 657 real layperson questions. A
law is an article's title without its article number (as benchmarks/drift_trials.py). A seeded half of the laws is
v1's documents (input/old_laws.jsonl); the others arrive later (input/new_laws.jsonl). A question is "old" when every
article answering it belongs to an old law, "new" when every one belongs to a new law (the few that span both are
left out and counted).

The sequence, with the kit's own commands and configs/demo.yaml's recipe (as benchmarks/real_questions.py: no real
question in training, offline generators, the kit's mining defaults; `deploy.fit_all: off`, so every arm's model
never trained on an article any evaluated question points to):
  v1      `kit run` on the old laws; the old questions are its eval (split.eval_queries: their articles held out)
  drift   prep.inputs now names both files: `kit drift` (its verdict and exit status recorded), then again with a
          question log: a seeded half of the new questions' texts (no label), the questions users would ask about
          the new laws once they are searchable
  (c)     `kit update` from v1's deployed model; the new questions are the new documents' eval (update.questions:
          their articles held out); the gate decides, the candidate is measured either way
  (b)     `kit run` from the base model on both files, every question in its eval (all their articles held out)
  (a)     the v1 model, unchanged
Then one `kit bench` of base, (a), (b), (c) over the whole current corpus on each question set, every ratio with its
95% paired-bootstrap interval. Wall times: v1, the update, the full re-run, each as `kit` ran it.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.real_questions import MODEL, STARD, _beir, _jsonl, _qrels, _write_jsonl, print_table  # noqa: E402

ARTICLE = re.compile(r"第[零一二三四五六七八九十百千〇两]+条(之[一二三四五六七八九十]+)?$")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def law_of(title: str) -> str:
    return ARTICLE.sub("", title)


def build_inputs(work: Path, seed: int) -> dict:
    corpus = _jsonl(STARD / "corpus.jsonl")
    qrels = _qrels(STARD / "qrels.tsv")
    queries = [q for q in _jsonl(STARD / "queries.jsonl") if q["_id"] in qrels]
    law = {c["_id"]: law_of(c["title"]) for c in corpus}
    laws = sorted(set(law.values()))
    old_laws = set(random.Random(seed).sample(laws, len(laws) // 2))
    rows = {c["_id"]: {"_id": c["_id"], "title": c.get("title", "").replace("中华人民共和国", ""), "text": c["text"]}
            for c in corpus}
    old = [r for i, r in rows.items() if law[i] in old_laws]
    new = [r for i, r in rows.items() if law[i] not in old_laws]
    _write_jsonl(work / "input" / "old_laws.jsonl", old)
    _write_jsonl(work / "input" / "new_laws.jsonl", new)
    side = {q["_id"]: {law[d] in old_laws for d in qrels[q["_id"]]} for q in queries}
    old_q = [q for q in queries if side[q["_id"]] == {True}]
    new_q = [q for q in queries if side[q["_id"]] == {False}]
    logged = random.Random(seed).sample(new_q, len(new_q) // 2)
    _write_jsonl(work / "input" / "log_new_questions.jsonl", [{"text": q["text"]} for q in logged])
    unlogged = [q for q in new_q if q not in logged]
    return {"laws": len(laws), "old_laws": len(old_laws), "old_articles": len(old), "new_articles": len(new),
            "old_questions": len(old_q), "new_questions": len(new_q),
            "questions_spanning_both": len(queries) - len(old_q) - len(new_q), "logged_new_questions": len(logged),
            "folders": {"old": _beir(work / "questions_old", old_q, qrels),
                        "new": _beir(work / "questions_new", new_q, qrels),
                        "new_unlogged": _beir(work / "questions_new_unlogged", unlogged, qrels),
                        "all": _beir(work / "questions_all", old_q + new_q, qrels)}}


def write_config(path: Path, workdir: Path, inputs: list[Path], eval_q: Path, update_q: Path | None,
                 replay_share: float | None = None, update_steps: int | None = None,
                 merge_weights: list[float] | None = None) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    cfg["workdir"] = str(workdir)
    cfg["model"] = str(MODEL)
    cfg["prep"]["inputs"] = [str(x) for x in inputs]
    cfg["split"] = {**(cfg.get("split") or {}), "eval_queries": str(eval_q)}
    cfg["split"].pop("eval_ratio", None)
    cfg.setdefault("bench", {}).pop("general", None)
    for key in ("relative_margin", "widen"):   # the kit's own mining defaults, as benchmarks/real_questions.py
        cfg["mine"].pop(key, None)
    cfg["deploy"] = {"fit_all": "off"}   # the held-out pick is deployed: no arm trains on an evaluated article
    if merge_weights is not None:        # fewer candidates to bench (time): the same recipe, the same training
        cfg["merge"]["weights"] = merge_weights
        cfg.pop("adapter", None)
    if update_q:
        cfg["update"] = {"questions": str(update_q)}
        if replay_share is not None:
            cfg["update"]["replay_share"] = replay_share
        if update_steps is not None:
            cfg["update"]["train_args"] = {"max_steps": update_steps}
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def kit(*args, log: Path) -> tuple[int, float]:
    """Run one kit command (its output into ``log``); (exit status, wall seconds)."""
    t0 = time.perf_counter()
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ kit {' '.join(map(str, args))}\n")
        fh.flush()
        rc = subprocess.run([sys.executable, "-m", "kit.cli", *map(str, args)], env=ENV, stdout=fh,
                            stderr=subprocess.STDOUT).returncode
    return rc, round(time.perf_counter() - t0, 1)


def timed_once(record: dict, key: str, *args, log: Path, ok=(0,)) -> int:
    """A step's wall time is measured once: a rerun of the benchmark keeps it (the kit would skip the step)."""
    if key in record:
        return record[key]["rc"]
    rc, wall = kit(*args, log=log)
    if rc not in ok:
        raise SystemExit(f"kit {' '.join(map(str, args))} failed with exit status {rc} (see {log})")
    record[key] = {"rc": rc, "wall_seconds": wall}
    return rc


def keep_candidate(work: Path, key: str) -> dict:
    """The candidate of the update that just ran, copied out of the update folder (the next update, when this one
    kept the deployed model, reuses and rewrites that folder); its gate decision."""
    promotion = json.loads((work / "living" / "promotion.json").read_text(encoding="utf-8"))
    dst = work / "arms" / key
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(promotion["candidate"]["path"], dst)
    return {"model": str(dst), "decision": promotion.get("decision"), "reasons": promotion.get("reasons")}


def deployed_path(config: Path) -> tuple[str, str]:
    from kit.drift.workdir import deployed_model
    from kit.update.config import load_pipeline

    d = deployed_model(load_pipeline(config))
    return d.name, d.path


def subset_eval(full_eval: Path, folder: Path, texts: set[str]) -> Path:
    """The full re-run's eval set (the whole current corpus) with only the questions whose text is in ``texts``
    (split gives the real questions ids of its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(full_eval / "corpus.jsonl", folder / "corpus.jsonl")
    qs = [q for q in _jsonl(full_eval / "test_queries.jsonl") if q["text"] in texts]
    ids = {str(q["id"]) for q in qs}
    rel = [r for r in _jsonl(full_eval / "test_qrels.jsonl") if str(r["qid"]) in ids]
    _write_jsonl(folder / "test_queries.jsonl", qs)
    _write_jsonl(folder / "test_qrels.jsonl", rel)
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(REPO / "runs" / "update_sequence"))
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--update-steps", default="",
                    help="more `kit update` arms from v1 training this many steps (comma-separated; the default arm "
                         "trains train.args.max_steps)")
    ap.add_argument("--replay-shares", default="",
                    help="more `kit update` arms from v1 with these update.replay_share values (comma-separated), "
                         "each measured beside the default's; v1 is promoted back before each")
    ap.add_argument("--full-merge-weights", default="",
                    help="the full re-run benches only these merge weights and no adapter (comma-separated; default: "
                         "configs/demo.yaml's candidates), to save its bench time on two cores")
    ap.add_argument("--until", choices=("v1", "drift"), default=None,
                    help="stop after this step (a rerun goes on from there: every step done is kept in record.json)")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "kit.log"
    rec_path = work / "record.json"
    record = json.loads(rec_path.read_text(encoding="utf-8")) if rec_path.exists() else {}
    data = build_inputs(work, a.seed)
    record["data"] = {k: v for k, v in data.items() if k != "folders"}
    q = data["folders"]
    old_in, new_in = work / "input" / "old_laws.jsonl", work / "input" / "new_laws.jsonl"
    save = lambda: rec_path.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")  # noqa

    living = work / "living.yaml"
    print(f"v1: {data['old_laws']} of {data['laws']} laws ({data['old_articles']} articles), "
          f"{data['old_questions']} old questions; later {data['new_articles']} articles, {data['new_questions']} "
          f"new questions ({data['questions_spanning_both']} span both, left out)", flush=True)
    write_config(living, work / "living", [old_in], q["old"], q["new"])
    timed_once(record, "v1", "run", living, log=log)
    # v1 kept as a version while prep.inputs still name what it was made from (README: register right after kit run),
    # so the update preps only the new file
    timed_once(record, "register_v1", "promote", living, log=log)
    save()
    if a.until == "v1":
        return 0
    write_config(living, work / "living", [old_in, new_in], q["old"], q["new"])   # the new laws arrive
    drift_report = work / "living" / "drift" / "report.json"
    if "drift" not in record:
        timed_once(record, "drift", "drift", living, log=log, ok=(0, 3))
        shutil.copyfile(drift_report, work / "drift_report.json")
    record["drift_verdict"] = json.loads((work / "drift_report.json").read_text())["verdict"]
    if "drift_log" not in record:    # the same, with a log of questions about the new laws: do they need training?
        timed_once(record, "drift_log", "drift", living, "--log", work / "input" / "log_new_questions.jsonl", log=log,
                   ok=(0, 3))
        shutil.copyfile(drift_report, work / "drift_log_report.json")
    with_log = json.loads((work / "drift_log_report.json").read_text())
    record["drift_log_verdict"], record["drift_log_reasons"] = with_log["verdict"], with_log["reasons"]
    save()
    if a.until == "drift":
        return 0
    timed_once(record, "update", "update", living, log=log, ok=(0, 3))
    # v1's deployed model as the first update kept it (kit/versions/: the report's pick, or the best model folder)
    v1 = json.loads((work / "living" / "versions" / "v0001" / "version.json").read_text(encoding="utf-8"))
    record["v1_model"] = {"name": v1["source"]["name"], "path": str(work / "living" / "versions" / "v0001" / "model"),
                          "note": v1["source"].get("note", "")}
    if "update_model" not in record:
        kept = keep_candidate(work, "update")
        record["update_decision"], record["update_model"] = kept["decision"], kept["model"]
        record["update_reasons"] = kept["reasons"]
    save()
    weights = [float(x) for x in a.full_merge_weights.split(",") if x.strip()] or None
    full = write_config(work / "full.yaml", work / "full", [old_in, new_in], q["all"], None, merge_weights=weights)
    timed_once(record, "full", "run", full, log=log)
    record["full_model"] = dict(zip(("name", "path"), deployed_path(full)))
    save()
    replays = {}
    arms = [(f"update_steps_{n}", f"(c) update, {n} steps", {"update_steps": int(n)})
            for n in a.update_steps.split(",") if n.strip()]
    arms += [(f"update_replay_{float(x):g}", f"(c) update, replay {float(x):g}", {"replay_share": float(x)})
             for x in a.replay_shares.split(",") if x.strip()]
    for key, label, setting in arms:
        if key not in record:
            timed_once(record, f"promote_v1_{key}", "promote", living, "v0001", log=log)
            write_config(living, work / "living", [old_in, new_in], q["old"], q["new"], **setting)
            timed_once(record, key, "update", living, log=log, ok=(0, 3))
            record[key].update(keep_candidate(work, key))
            write_config(living, work / "living", [old_in, new_in], q["old"], q["new"])
            save()
        replays[label] = f"local:{record[key]['model']}"

    from kit.bench.metrics import paired_bootstrap
    from kit.bench.stage import BenchOptions, bench

    full_eval = work / "full" / "data" / "eval"
    models = {"base": f"local:{MODEL}", "(a) v1 unchanged": f"local:{record['v1_model']['path']}",
              "(b) full re-run": f"local:{record['full_model']['path']}",
              "(c) kit update": f"local:{record['update_model']}", **replays}
    opts = BenchOptions(k=[10], general=None, latency_samples=0, hybrid=[], title="Update sequence")
    out: dict = {}
    for side in ("old", "new", "new_unlogged"):
        texts = {x["text"] for x in _jsonl(q[side] / "queries.jsonl")}
        folder = subset_eval(full_eval, work / "eval" / side, texts)
        res = bench(str(folder), models, str(work / "eval" / side / "report"), opts)
        per = {m: e["domain"]["per_query"]["mrr@10"] for m, e in res["models"].items()}
        mrr = {m: round(sum(v) / len(v), 4) for m, v in per.items()}
        ratios = {f"{m} / base": paired_bootstrap(per["base"], per[m]) for m in per if m != "base"}
        ratios["(c) / (a)"] = paired_bootstrap(per["(a) v1 unchanged"], per["(c) kit update"])
        ratios["(c) / (b)"] = paired_bootstrap(per["(b) full re-run"], per["(c) kit update"])
        ratios["(a) / (b)"] = paired_bootstrap(per["(b) full re-run"], per["(a) v1 unchanged"])
        for m in replays:
            ratios[f"{m} / (a)"] = paired_bootstrap(per["(a) v1 unchanged"], per[m])
            ratios[f"{m} / (b)"] = paired_bootstrap(per["(b) full re-run"], per[m])
        out[side] = {"questions": len(per["base"]), "mrr@10": mrr, "ratios": ratios}
        print(f"\n{side} laws' real questions ({len(per['base'])}):")
        print_table(mrr, ratios)
    record["eval"] = out
    record["update_over_full_wall"] = round(record["update"]["wall_seconds"] / record["full"]["wall_seconds"], 3)
    save()
    print(f"\nwall: v1 {record['v1']['wall_seconds']:.0f}s, drift {record['drift']['wall_seconds']:.0f}s "
          f"(verdict {record['drift_verdict']}; with the log of new questions: {record['drift_log_verdict']}), "
          f"update {record['update']['wall_seconds']:.0f}s "
          f"(gate: {record['update_decision']}), full re-run {record['full']['wall_seconds']:.0f}s; "
          f"update / full = {record['update_over_full_wall']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
