"""Training sees passages in the form they are scored in (issue 27: a defect class, "trained differently from how
it is scored"): with ``train.passage_titles`` every positive and negative FlagEmbedding reads is exactly a passage
string the benchmark embeds for that chunk."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.formats import load_eval, titled, write_corpus, write_eval
from kit.io import KitError
from kit.train import TrainOptions, validate_training_data
from kit.train.stage import prepare_run

CHUNKS = [
    {"id": "a", "doc": "劳动合同法", "title": "劳动合同法 第二章 劳动合同的订立", "text": "用人单位自用工之日起即与劳动者建立劳动关系。"},
    {"id": "b", "doc": "劳动合同法", "title": "劳动合同法 第二章 劳动合同的订立", "text": "建立劳动关系，应当订立书面劳动合同。"},
    {"id": "c", "doc": "个体工商户条例", "title": "个体工商户条例第二条", "text": "有经营能力的公民，依照本条例规定登记，为个体工商户。"},
    {"id": "d", "doc": "notes", "title": "", "text": "没有标题的段落也照样训练。"},
]


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_trained_passages_are_the_benchmarks_passages(tmp_path):
    corpus = tmp_path / "train_corpus.jsonl"
    write_corpus(corpus, CHUNKS)
    ev = load_eval(write_eval(tmp_path / "eval", CHUNKS, [{"id": "q", "text": "劳动关系何时建立"}],
                              [{"qid": "q", "docid": "a", "relevance": 1}]))
    scored = dict(zip(ev.doc_ids, ev.doc_texts))
    text_of = {c["text"]: c["id"] for c in CHUNKS}
    data = tmp_path / "train_hn.jsonl"
    rows = [{"query": "劳动关系何时建立", "pos": [CHUNKS[0]["text"]], "neg": [CHUNKS[1]["text"], CHUNKS[2]["text"]]},
            # a positive that differs only in whitespace is still recognised as its chunk
            {"query": "个体工商户是什么", "pos": [CHUNKS[2]["text"] + " "], "neg": [CHUNKS[3]["text"], CHUNKS[0]["text"]]},
            {"query": "手写的正例", "pos": ["不在语料里的手写段落"], "neg": [CHUNKS[1]["text"], CHUNKS[3]["text"]]}]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")

    rep = validate_training_data(data, 3, clean_path=tmp_path / "clean.jsonl", corpus=corpus)
    assert rep.path == str(tmp_path / "clean.jsonl")
    got = _rows(Path(rep.path))
    for src, row in zip(rows, got):
        for before, after in zip(src["pos"] + src["neg"], row["pos"] + row["neg"]):
            cid = text_of.get(before.strip())
            if cid is None:
                assert after == before   # no chunk: left as the user wrote it
            else:
                assert after == scored[cid], (before, after)
    assert got[0]["pos"] == ["劳动合同法 第二章 劳动合同的订立 用人单位自用工之日起即与劳动者建立劳动关系。"]
    assert "1 not found" in rep.summary()
    # without the corpus nothing changes and no copy is written
    rep = validate_training_data(data, 3, clean_path=tmp_path / "clean2.jsonl")
    assert rep.path == str(data) and not (tmp_path / "clean2.jsonl").exists()


def test_titled_is_the_one_definition():
    assert titled(" 标题 ", "正文") == "标题 正文"
    assert titled("", "正文") == titled(None, "正文") == "正文"


def test_passage_titles_without_chunks_is_one_line(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"query": "q", "pos": ["p"], "neg": ["n"]}) + "\n", encoding="utf-8")
    opts = TrainOptions(data=str(data), output_dir=str(tmp_path / "out"), passage_titles=True,
                        args={"train_group_size": 2})
    with pytest.raises(KitError, match="passage_titles needs the chunks"):
        prepare_run(opts, "e5", True, lambda m: None, "kit train")


def test_a_positive_that_is_no_chunk_text_is_titled_by_its_id(tmp_path):
    """ict positives are their chunk less the question's sentence: only pos_ids finds their chunk."""
    corpus = tmp_path / "train_corpus.jsonl"
    write_corpus(corpus, CHUNKS)
    cut = CHUNKS[0]["text"][:10]
    data = tmp_path / "train_hn.jsonl"
    data.write_text(json.dumps({"query": "q", "pos": [cut], "pos_ids": ["a"], "neg": [CHUNKS[2]["text"]],
                                "neg_ids": ["c"]}, ensure_ascii=False) + "\n", encoding="utf-8")
    rep = validate_training_data(data, 2, clean_path=tmp_path / "clean.jsonl", corpus=corpus)
    row = _rows(Path(rep.path))[0]
    assert row["pos"] == [titled(CHUNKS[0]["title"], cut)] and row["neg"] == [titled(CHUNKS[2]["title"], CHUNKS[2]["text"])]
    assert "not found" not in rep.summary()
