"""Workdirs for the versions and update tests, from real statute articles (stard_dev): one JSONL file per law, each
article its own document (as prep reads a corpus JSONL), prepped by the real prep stage."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("KIT_SHARED", REPO.parent / "shared")).resolve() / "data"
STARD = DATA / "retrieval" / "stard_dev" / "corpus.jsonl"
ARTICLE = re.compile(r"第[零一二三四五六七八九十百千〇两]+条(之[一二三四五六七八九十]+)?$")


def laws(n_laws: int, per_law: int, seed: int = 0, skip: int = 0) -> dict[str, list[dict]]:
    """``n_laws`` seeded laws (after the first ``skip`` of the seeded order) with ``per_law`` articles each that
    have at least two sentences (ict makes questions of those)."""
    by_law: dict[str, list[dict]] = {}
    for line in STARD.open(encoding="utf-8"):
        r = json.loads(line)
        if r["text"].count("。") >= 2:
            by_law.setdefault(ARTICLE.sub("", r["title"]), []).append(r)
    names = sorted(n for n, rows in by_law.items() if len(rows) >= per_law)
    random.Random(seed).shuffle(names)
    return {n: by_law[n][:per_law] for n in names[skip:skip + n_laws]}


def write_laws(folder: Path, chosen: dict[str, list[dict]], prefix: str = "law") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (law, rows) in enumerate(sorted(chosen.items())):
        path = folder / f"{prefix}{i:02d}_{law}.jsonl"
        path.write_text("".join(json.dumps({"id": r["_id"], "title": r["title"], "text": r["text"]},
                                           ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        out.append(path)
    return out


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def base_config(workdir: Path, model: Path, docs: Path, **sections) -> dict:
    return {"workdir": str(workdir), "model": str(model),
            "prep": {"inputs": [str(docs)], "max_tokens": 200, "tokenizer": None, "workers": 1}, **sections}


def copy_model(src: Path, dst: Path, stage: str, **manifest) -> Path:
    """A copy of a model folder that says how the kit made it (kit_manifest.json)."""
    shutil.copytree(src, dst)
    (dst / "kit_manifest.json").write_text(json.dumps({"stage": stage, **manifest}), encoding="utf-8")
    return dst


def results(path: Path, rows: dict[str, tuple[str, list[float]]], recommended: str) -> None:
    """A report's results.json: {row: (spec, per-question mrr@10)}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    models = {n: {"spec": spec, "domain": {"metrics": {"mrr@10": sum(v) / len(v)}, "per_query": {"mrr@10": v}}}
              for n, (spec, v) in rows.items()}
    path.write_text(json.dumps({"models": models, "recommendation": {"recommended": recommended}}), encoding="utf-8")


def fake_run(tmp_path: Path, model: Path, n_laws: int = 4, per_law: int = 6) -> tuple[Path, Path]:
    """(config, docs folder): the real prep stage over a few laws; an eval set of two laws' articles; training rows
    and a fine-tuned model (the tiny model, copied) for the rest; a report recommending the fine-tuned model."""
    from kit.formats import read_corpus, write_corpus, write_eval
    from kit.stages import run_pipeline

    docs, wd = tmp_path / "docs", tmp_path / "work"
    write_laws(docs, laws(n_laws, per_law))
    config = write_config(tmp_path / "kit.yaml", base_config(wd, model, docs))
    run_pipeline(config, until="prep")
    chunks = read_corpus(wd / "corpus.jsonl")
    files = sorted({c["doc"] for c in chunks})
    eval_docs = set(files[: len(files) // 3])
    ev = [c for c in chunks if c["doc"] in eval_docs]
    queries = [{"id": f"q{i}", "text": c["text"][:20]} for i, c in enumerate(ev)]
    write_eval(wd / "data" / "eval", chunks, queries, [{"qid": q["id"], "docid": c["id"], "relevance": 1}
                                                        for q, c in zip(queries, ev)], info={"questions": "generated"})
    train = [c for c in chunks if c["doc"] not in eval_docs]
    write_corpus(wd / "data" / "train_corpus.jsonl", train)
    (wd / "data" / "train_hn.jsonl").write_text("".join(json.dumps(
        {"query": c["text"][:15], "pos": [c["text"]], "neg": [train[0]["text"]], "pos_ids": [c["id"]], "doc": c["doc"],
         "generator": "ict"}, ensure_ascii=False) + "\n" for c in train[1:]), encoding="utf-8")
    copy_model(model, wd / "models" / "finetuned", "train")
    per_q = [1.0 if i % 2 else 0.5 for i in range(len(queries))]
    results(wd / "report" / "results.json", {"base": (f"local:{model}", [0.5] * len(queries)),
                                             "fine-tuned": (f"local:{wd / 'models' / 'finetuned'}", per_q)},
            "fine-tuned")
    return config, docs
