"""Fixtures of the question-log tests: a small statute corpus, a real slice of stard_dev, a log writer."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import DATA

STARD = DATA / "retrieval" / "stard_dev"

# Articles of the labour-contract law, as prep would emit them (id, doc, title, text).
ARTICLES = [
    ("第十条", "建立劳动关系，应当订立书面劳动合同。已建立劳动关系，未同时订立书面劳动合同的，应当自用工之日起一个月内订立书面劳动合同。"),
    ("第十九条", "劳动合同期限三个月以上不满一年的，试用期不得超过一个月；劳动合同期限一年以上不满三年的，试用期不得超过二个月。"),
    ("第三十条", "用人单位应当按照劳动合同约定和国家规定，向劳动者及时足额支付劳动报酬。拖欠劳动报酬的，劳动者可以申请支付令。"),
    ("第三十八条", "用人单位未及时足额支付劳动报酬的，劳动者可以解除劳动合同。"),
    ("第四十七条", "经济补偿按劳动者在本单位工作的年限，每满一年支付一个月工资的标准向劳动者支付。"),
    ("第八十二条", "用人单位自用工之日起超过一个月不满一年未与劳动者订立书面劳动合同的，应当向劳动者每月支付二倍的工资。"),
]


def law_chunks() -> list[dict]:
    return [{"id": f"ldht-{i:02d}", "doc": "劳动合同法", "page_start": 1, "page_end": 1, "title": t, "text": x,
             "source_id": f"a{i}"} for i, (t, x) in enumerate(ARTICLES)]


def write_jsonl(path, rows, encoding: str = "utf-8") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding=encoding)
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture
def corpus_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "corpus.jsonl", law_chunks())


def _stard_qrels() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for n, line in enumerate((STARD / "qrels.tsv").read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if n and len(parts) >= 3 and int(parts[2]) > 0:
            out.setdefault(parts[0], set()).add(parts[1])
    return out


@pytest.fixture(scope="module")
def stard_slice(tmp_path_factory):
    """40 real questions (seeded), their gold articles and 200 other articles of the same corpus: (corpus path,
    questions [{text, gold}])."""
    if not (STARD / "corpus.jsonl").exists():
        pytest.skip("stard_dev not available")
    d = tmp_path_factory.mktemp("stard_slice")
    qrels = _stard_qrels()
    queries = [q for q in read_jsonl(STARD / "queries.jsonl") if q["_id"] in qrels]
    picked = random.Random(5).sample(sorted(queries, key=lambda q: q["_id"]), 40)
    gold = set().union(*(qrels[q["_id"]] for q in picked))
    corpus = read_jsonl(STARD / "corpus.jsonl")
    others = random.Random(5).sample(sorted(c["_id"] for c in corpus if c["_id"] not in gold), 200)
    keep = gold | set(others)
    chunks = [{"id": c["_id"], "doc": c["_id"], "title": c.get("title", "").replace("中华人民共和国", ""),
               "text": c["text"], "source_id": c["_id"]} for c in corpus if c["_id"] in keep]
    path = write_jsonl(d / "corpus.jsonl", chunks)
    return path, [{"text": q["text"], "gold": qrels[q["_id"]]} for q in picked]
