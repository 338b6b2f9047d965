"""The small training and eval data ``kit export`` is tested on (tests/export/, tests/providers/test_m3.py): six
statute passages with titles, five questions with one relevant passage each; ``write_eval`` writes them as the kit's
eval folder, ``write_train`` as training rows (one of them without negatives)."""
from __future__ import annotations

import json
from pathlib import Path

PASSAGES = {
    "a1": ("第十条", "建立劳动关系，应当订立书面劳动合同。"),
    "a2": ("第十九条", "劳动合同期限三个月以上不满一年的，试用期不得超过一个月。"),
    "a3": ("第三十条", "用人单位应当按照劳动合同约定和国家规定，向劳动者及时足额支付劳动报酬。"),
    "a4": ("第四十六条", "用人单位依法解除劳动合同的，应当向劳动者支付经济补偿。"),
    "a5": ("第三十七条", "劳动者提前三十日以书面形式通知用人单位，可以解除劳动合同。"),
    "a6": ("", "社会保险由用人单位和劳动者共同缴纳。"),
}
QUERIES = {"q1": ("劳动合同要用什么形式订立？", "a1"), "q2": ("试用期最长可以多久？", "a2"),
           "q3": ("工资应当怎么支付？", "a3"), "q4": ("解除合同有没有经济补偿？", "a4"),
           "q5": ("辞职需要提前多久通知？", "a5")}


def write_eval(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "corpus.jsonl").write_text("".join(json.dumps({"id": k, "title": t, "text": x}, ensure_ascii=False) + "\n"
                                            for k, (t, x) in PASSAGES.items()), encoding="utf-8")
    (d / "test_queries.jsonl").write_text("".join(json.dumps({"id": q, "text": t}, ensure_ascii=False) + "\n"
                                                  for q, (t, _) in QUERIES.items()), encoding="utf-8")
    (d / "test_qrels.jsonl").write_text("".join(json.dumps({"qid": q, "docid": a, "relevance": 1}) + "\n"
                                                for q, (_, a) in QUERIES.items()), encoding="utf-8")
    return d


def write_train(path: Path) -> Path:
    texts = [x for _, x in PASSAGES.values()]
    rows = [{"query": q, "pos": [PASSAGES[a][1]], "neg": [t for t in texts if t != PASSAGES[a][1]][:3 + i % 2]}
            for i, (q, a) in enumerate(QUERIES.values())]
    rows.append({"query": "没有负例的问题", "pos": [texts[0]], "neg": []})   # too few negatives: dropped, counted
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
