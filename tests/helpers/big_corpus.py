"""A large corpus from real text, for the tests that check the text does not stay in memory: stard_dev's articles
(real statute text) repeated with a numbered prefix until ``n`` chunks, written as prep's corpus.jsonl and as an eval
folder (FlagEmbedding's layout, one question per law article of the first hundred)."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import DATA

STARD = DATA / "retrieval" / "stard_dev"


def write_big_corpus(out: Path, n: int) -> tuple[Path, Path, int]:
    """(corpus.jsonl, eval folder, bytes of text in Python strings: what a list of the texts would hold)."""
    articles = [json.loads(x)["text"] for x in open(STARD / "corpus.jsonl", encoding="utf-8")]
    out.mkdir(parents=True, exist_ok=True)
    ev = out / "eval"
    ev.mkdir(exist_ok=True)
    held = 0
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as c, open(ev / "corpus.jsonl", "w", encoding="utf-8") as e:
        for i in range(n):
            text = f"第{i}段 " + articles[i % len(articles)] * 3
            held += len(text) * 2 + 80        # CPython keeps CJK text at 2 bytes a character, plus the object
            c.write(json.dumps({"id": f"c{i}", "doc": f"d{i // 10}", "title": f"法{i // 10}", "text": text},
                               ensure_ascii=False) + "\n")
            e.write(json.dumps({"id": f"c{i}", "title": f"法{i // 10}", "text": text}, ensure_ascii=False) + "\n")
    with open(ev / "test_queries.jsonl", "w", encoding="utf-8") as q, open(ev / "test_qrels.jsonl", "w") as r:
        for i in range(100):
            q.write(json.dumps({"id": f"q{i}", "text": articles[i][:20]}, ensure_ascii=False) + "\n")
            r.write(json.dumps({"qid": f"q{i}", "docid": f"c{i}", "relevance": 1}) + "\n")
    return out / "corpus.jsonl", ev, held
