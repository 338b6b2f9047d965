"""The corpus the mining tests share: module-scoped, so each test module builds its own."""
from __future__ import annotations

import csv
import json

import pytest

from conftest import CMRC
from helpers.mining import write_rows as _write


@pytest.fixture(scope="module")
def cmrc_small(tmp_path_factory):
    """A real Chinese corpus: the first 120 cmrc2018 paragraphs (cut to 160 characters), four consecutive
    ones to a document, and train rows for questions whose paragraph is among them."""
    if not (CMRC / "corpus.jsonl").exists():
        pytest.skip(f"cmrc2018 not found at {CMRC}")
    d = tmp_path_factory.mktemp("mine")
    paras = [json.loads(x) for x in open(CMRC / "corpus.jsonl", encoding="utf-8")][:120]
    chunks = [{"id": p["_id"], "doc": f"doc{i // 4}", "page_start": 1, "page_end": 1, "title": p["title"],
               "text": p["text"][:160]} for i, p in enumerate(paras)]
    # A near copy of a positive (ICT-like: one sentence removed) in another document, to be excluded.
    chunks.append({"id": "dup-of-p00003", "doc": "另一份文件", "page_start": 1, "page_end": 1, "title": "",
                   "text": chunks[3]["text"][12:] + "（转载）"})
    text = {c["id"]: c["text"] for c in chunks}
    queries = {}
    for x in open(CMRC / "queries.jsonl", encoding="utf-8"):
        o = json.loads(x)
        queries[o["_id"]] = o["text"]
    rows = []
    with open(CMRC / "qrels.tsv", encoding="utf-8") as f:
        for qid, pid, _ in list(csv.reader(f, delimiter="\t"))[1:]:
            if pid in text and len(rows) < 40 and (not rows or rows[-1]["pos_ids"] != [pid]):
                rows.append({"query": queries[qid], "pos": [text[pid]], "neg": [], "pos_ids": [pid],
                             "doc": "", "generator": "cmrc"})
    return _write(d / "corpus.jsonl", chunks), _write(d / "train.jsonl", rows), chunks, rows
