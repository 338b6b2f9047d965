"""kit split: by document, leak-free, FlagEmbedding eval layout, real-question import, bad lines."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.io import KitError
from kit.split import SplitOptions, choose_eval_docs, norm_text, split


def cli_main():
    """The click group (every subcommand registered)."""
    from kit.cli import main
    return main

def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _corpus(n_docs=10, per_doc=5):
    chunks = []
    for d in range(n_docs):
        for c in range(per_doc):
            chunks.append({"id": f"d{d}-c{c}", "doc": f"doc{d}", "page_start": c + 1, "page_end": c + 1,
                           "title": f"第{c + 1}条", "text": f"文件{d}第{c}段：用人单位应当依法支付劳动报酬，编号{d * 100 + c}。"})
    return chunks


def _pairs(chunks, per_chunk_of_doc=lambda d: 1 + d % 3):
    pairs = []
    for ch in chunks:
        d = int(ch["doc"][3:])
        for k in range(per_chunk_of_doc(d)):
            pairs.append({"query": f"问题{ch['id']}-{k}：报酬怎么支付？", "pos": [ch["text"]], "chunk_id": ch["id"],
                          "doc": ch["doc"], "generator": "llm"})
    return pairs


@pytest.fixture
def data(tmp_path):
    chunks = _corpus()
    return tmp_path, _write(tmp_path / "corpus.jsonl", chunks), _write(tmp_path / "pairs.jsonl", _pairs(chunks)), chunks


def test_split_by_document_writes_flagembedding_layout(data):
    tmp, corpus, pairs, chunks = data
    res = split(pairs, corpus, tmp / "out", SplitOptions(eval_ratio=0.2, seed=1))
    train = _read(tmp / "out" / "train.jsonl")
    eval_dir = tmp / "out" / "eval"
    ecorpus, equeries, eqrels = (_read(eval_dir / f) for f in
                                 ("corpus.jsonl", "test_queries.jsonl", "test_qrels.jsonl"))
    # every chunk in the eval corpus, in FlagEmbedding's keys
    assert [c["id"] for c in ecorpus] == [c["id"] for c in chunks]
    assert set(ecorpus[0]) == {"id", "title", "text"}
    # train rows: FlagEmbedding format + provenance
    assert set(train[0]) == {"query", "pos", "neg", "pos_ids", "doc", "generator"} and train[0]["neg"] == []
    # by document: no document on both sides
    doc_of = {c["id"]: c["doc"] for c in chunks}
    eval_docs = {doc_of[q["docid"]] for q in eqrels}
    train_docs = {r["doc"] for r in train}
    assert eval_docs and train_docs and not (eval_docs & train_docs)
    assert set(res.stats["eval_docs"]) == eval_docs
    # qrels point at existing queries and chunks
    qids = {q["id"] for q in equeries}
    assert {q["qid"] for q in eqrels} == qids and all(q["relevance"] == 1 for q in eqrels)
    # eval share of pairs close to the ratio (docs hold 5, 10 or 15 pairs of 95)
    n_pairs = len(_read(pairs))
    assert abs(len(equeries) / n_pairs - 0.2) <= 0.08
    assert len(train) + len(equeries) == n_pairs
    stats = json.loads((tmp / "out" / "split_stats.json").read_text())
    assert stats["leakage"]["eval_positive_ids_in_train"] == 0
    assert stats["leakage"]["eval_positive_texts_in_train"] == 0


def test_split_is_deterministic_per_seed(data):
    tmp, corpus, pairs, _ = data
    a = split(pairs, corpus, tmp / "a", SplitOptions(seed=7)).stats["eval_docs"]
    b = split(pairs, corpus, tmp / "b", SplitOptions(seed=7)).stats["eval_docs"]
    assert a == b
    assert (tmp / "a" / "train.jsonl").read_bytes() == (tmp / "b" / "train.jsonl").read_bytes()
    others = {tuple(split(pairs, corpus, tmp / f"s{s}", SplitOptions(seed=s)).stats["eval_docs"]) for s in range(6)}
    assert len(others) > 1  # the seed matters


def test_choose_eval_docs_keeps_one_doc_each_side():
    assert len(choose_eval_docs({"a": 10, "b": 10}, 0.01, 0)) == 1
    assert len(choose_eval_docs({"a": 10, "b": 10, "c": 1}, 0.99, 0)) == 2
    assert choose_eval_docs({"a": 10}, 0.5, 0) == set()


def test_same_text_in_two_documents_does_not_leak(tmp_path):
    chunks = _corpus(n_docs=4, per_doc=3)
    boiler = "本合同一式两份，双方各执一份，具有同等法律效力。"
    chunks[0]["text"] = boiler      # doc0
    chunks[3]["text"] = boiler      # doc1
    corpus = _write(tmp_path / "corpus.jsonl", chunks)
    pairs = _write(tmp_path / "pairs.jsonl", _pairs(chunks, lambda d: 1))
    real = _write(tmp_path / "real.jsonl", [{"question": "合同有几份？", "chunk_ids": ["d0-c0"]}])
    res = split(pairs, corpus, tmp_path / "out", SplitOptions(eval_queries=str(real), holdout="documents"))
    leak = res.stats["leakage"]
    assert res.stats["eval_docs"] == ["doc0"]
    assert leak["train_pairs_with_eval_positive_text"] == 1 and leak["train_pairs_dropped"] == 1
    assert leak["eval_positive_texts_in_train"] == 0
    train = _read(tmp_path / "out" / "train.jsonl")
    assert all(norm_text(boiler) not in {norm_text(t) for t in r["pos"]} for r in train)
    assert all(r["doc"] != "doc0" for r in train)


def test_eval_queries_import_by_ids_and_answers(tmp_path, data):
    _, corpus, pairs, chunks = data
    real = _write(tmp_path / "real.jsonl", [
        {"question": "文件3第1段说了什么？", "chunk_ids": ["d3-c1"]},
        # verbatim containment, whitespace and full-width differences ignored
        {"query": "编号502是哪段？", "answer": "文件5 第2段：用人单位应当依法支付劳动报酬，编号502"},
        # no verbatim match: character-bigram overlap picks the chunk
        {"query": "编号704？", "answer": "文件7第4段 用人单位应依法支付劳动报酬 编号704"},
        {"query": "完全无关", "answer": "量子色动力学的渐近自由"},
        {"query": "错误的编号", "chunk_ids": ["no-such-chunk"]},
        {"query": "缺少答案"},
    ])
    res = split(pairs, corpus, tmp_path / "out", SplitOptions(eval_queries=str(real), holdout="documents"))
    qrels = _read(tmp_path / "out" / "eval" / "test_qrels.jsonl")
    assert sorted(q["docid"] for q in qrels) == ["d3-c1", "d5-c2", "d7-c4"]
    assert res.stats["eval_docs"] == ["doc3", "doc5", "doc7"]
    train = _read(tmp_path / "out" / "train.jsonl")
    assert not {r["doc"] for r in train} & {"doc3", "doc5", "doc7"}
    assert res.stats["unmatched_eval_queries"] == 3
    text = "\n".join(res.problems)
    assert f"{real}:4: answer not found" in text
    assert f"{real}:5: chunk id(s) not in the corpus: no-such-chunk" in text
    assert f"{real}:6: needs 'chunk_ids'" in text


def test_duplicate_queries_across_sides_are_reported(tmp_path):
    chunks = _corpus(n_docs=3, per_doc=2)
    pairs = _pairs(chunks, lambda d: 1)
    pairs[0]["query"] = pairs[-1]["query"] = "同一个问题？"   # doc0 and doc2
    corpus = _write(tmp_path / "corpus.jsonl", chunks)
    real = _write(tmp_path / "real.jsonl", [{"query": "同一个问题？", "chunk_ids": ["d2-c1"]}])
    res = split(_write(tmp_path / "pairs.jsonl", pairs), corpus, tmp_path / "out",
                SplitOptions(eval_queries=str(real), holdout="documents"))
    assert res.stats["duplicate_queries"] == {"count": 1, "examples": ["同一个问题？"]}


def test_bad_lines_reported_rest_split(tmp_path, data):
    _, corpus, _, chunks = data
    good = _pairs(chunks)
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps(good[0], ensure_ascii=False), "{not json", json.dumps({"query": "q", "pos": []}),
             json.dumps({"query": "没有文档", "pos": ["不在语料里的文本"]})]
    lines += [json.dumps(p, ensure_ascii=False) for p in good[1:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = split(path, corpus, tmp_path / "out", SplitOptions())
    assert res.stats["pairs_read"] == len(good)
    text = "\n".join(res.problems)
    assert f"{path}:2: not valid JSON" in text
    assert f"{path}:3: pair has no positive" in text
    assert f"{path}:4: cannot tell which document" in text
    with pytest.raises(KitError, match="eval_ratio"):
        split(path, corpus, tmp_path / "x", SplitOptions(eval_ratio=1.5))


def test_pairs_without_ids_are_matched_by_text(tmp_path, data):
    _, corpus, _, chunks = data
    pairs = [{"query": f"问{c['id']}", "pos": [" " + c["text"] + "\n"]} for c in chunks]  # plain FlagEmbedding rows
    res = split(_write(tmp_path / "pairs.jsonl", pairs), corpus, tmp_path / "out", SplitOptions(eval_ratio=0.3))
    train = _read(tmp_path / "out" / "train.jsonl")
    assert all(len(r["pos_ids"]) == 1 and r["doc"] for r in train)
    assert res.stats["eval_queries"] > 0 and not res.problems


def test_cli_split(tmp_path, data):
    from click.testing import CliRunner

    _, corpus, pairs, _ = data
    r = CliRunner().invoke(cli_main(), ["split", str(pairs), "--corpus", str(corpus), "-o", str(tmp_path / "d"),
                                        "--eval-ratio", "0.2", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "leakage: 0 eval positive ids" in r.output
    assert (tmp_path / "d" / "eval" / "test_qrels.jsonl").exists()
    r = CliRunner().invoke(cli_main(), ["split", str(tmp_path / "missing.jsonl"), "--corpus", str(corpus),
                                        "-o", str(tmp_path / "e")])
    assert r.exit_code == 2 and "missing.jsonl: file not found" in r.output


def test_gold_holdout_keeps_the_rest_of_one_corpus_and_real_questions_train(tmp_path):
    """One corpus, real questions about it (issue 13.4): only the eval questions' gold passages and the pairs
    made from them leave training; labelled real questions join training, repeated; BEIR questions map to
    chunks through the JSONL corpus ids (source_id)."""
    chunks = _corpus(n_docs=1, per_doc=20)
    for i, c in enumerate(chunks):
        c["source_id"] = f"art{i}"
    corpus = _write(tmp_path / "corpus.jsonl", chunks)
    pairs = _write(tmp_path / "pairs.jsonl", _pairs(chunks, lambda d: 2))
    beir = tmp_path / "beir"
    beir.mkdir()
    _write(beir / "queries.jsonl", [{"_id": "q1", "text": "工资拖欠怎么办？"}, {"_id": "q2", "text": "加班费怎么算？"}])
    (beir / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tart3\t1\nq2\tart7\t1\nq2\tart8\t1\n",
                                    encoding="utf-8")
    train_q = _write(tmp_path / "train_q.jsonl", [{"query": "老板不发工资怎么办？", "source_ids": ["art3"]},
                                                  {"query": "加班费怎么算？", "source_ids": ["art9"]}])
    res = split(pairs, corpus, tmp_path / "out", SplitOptions(eval_queries=str(beir), train_queries=str(train_q),
                                                              real_repeat=3, generated_keep=1.0))
    s = res.stats
    assert s["holdout"] == "gold" and s["eval_questions"] == "real" and s["eval_queries"] == 2
    qrels = _read(tmp_path / "out/eval/test_qrels.jsonl")
    assert sorted(q["docid"] for q in qrels) == ["d0-c3", "d0-c7", "d0-c8"]
    train = _read(tmp_path / "out/train.jsonl")
    gold = {"d0-c3", "d0-c7", "d0-c8"}
    generated = [r for r in train if r["generator"] != "real"]
    assert generated and not {i for r in generated for i in r["pos_ids"]} & gold   # gold passages held out
    assert {i for r in generated for i in r["pos_ids"]} == {c["id"] for c in chunks} - gold  # the rest trains
    real = [r for r in train if r["generator"] == "real"]
    assert [r["query"] for r in real] == ["老板不发工资怎么办？"] * 3      # repeated; the eval question dropped
    assert s["duplicate_queries"]["count"] == 1 and s["leakage"]["real_train_questions_sharing_an_eval_passage"] == 3
    kept = {c["id"] for c in _read(tmp_path / "out/train_corpus.jsonl")}
    assert kept == {c["id"] for c in chunks} - gold                                 # negatives never gold
    info = json.loads((tmp_path / "out/eval/kit_eval.json").read_text())
    assert info["questions"] == "real" and info["holdout"] == "gold"
    assert "held out of training: gold" in res.summary()


def test_documents_holdout_and_generated_keep(tmp_path, data):
    _, corpus, pairs, chunks = data
    real = _write(tmp_path / "real.jsonl", [{"query": "编号304是哪段？", "chunk_ids": ["d3-c4"]}])
    train_q = _write(tmp_path / "tq.jsonl", [{"query": "编号502？", "chunk_ids": ["d5-c2"]},
                                             {"query": "编号301？", "chunk_ids": ["d3-c1"]}])
    res = split(pairs, corpus, tmp_path / "out", SplitOptions(eval_queries=str(real), train_queries=str(train_q),
                                                              holdout="documents", generated_keep=0.5, seed=3))
    train = _read(tmp_path / "out/train.jsonl")
    assert res.stats["holdout"] == "documents" and not {r["doc"] for r in train} & {"doc3"}
    assert [r["query"] for r in train if r["generator"] == "real"] == ["编号502？"] * 4   # doc3's question held out
    n_gen = sum(r["generator"] != "real" for r in train)
    all_gen = len(_read(pairs)) - sum(1 for p in _read(pairs) if p["doc"] == "doc3")
    assert 0.3 * all_gen < n_gen < 0.7 * all_gen                                      # about half kept, seeded
    assert {c["doc"] for c in _read(tmp_path / "out/train_corpus.jsonl")} == {f"doc{d}" for d in range(10)} - {"doc3"}


def test_gold_holdout_needs_real_questions(tmp_path, data):
    _, corpus, pairs, _ = data
    with pytest.raises(KitError, match="holdout gold needs eval_queries"):
        split(pairs, corpus, tmp_path / "out", SplitOptions(holdout="gold"))


def test_mined_negatives_never_hold_eval_text(tmp_path, data):
    """The leakage check after mining (issue 13.6) finds an eval passage planted among negatives."""
    from kit.split import training_leakage

    _, corpus, pairs, chunks = data
    res = split(pairs, corpus, tmp_path / "out", SplitOptions(eval_ratio=0.2))
    rows = _read(tmp_path / "out/train.jsonl")
    gold = _read(tmp_path / "out/eval/test_qrels.jsonl")[0]["docid"]
    text = next(c["text"] for c in chunks if c["id"] == gold)
    clean = training_leakage(tmp_path / "out/train.jsonl", tmp_path / "out/eval", tmp_path / "out/train_corpus.jsonl")
    assert clean["rows_checked"] == len(rows) and clean["eval_passages_among_negatives"] == 0
    rows[0]["neg"] = [text]
    _write(tmp_path / "leaky.jsonl", rows)
    leak = training_leakage(tmp_path / "leaky.jsonl", tmp_path / "out/eval", tmp_path / "out/train_corpus.jsonl")
    assert leak["eval_passages_among_negatives"] == 1 and leak["negatives_outside_training_corpus"] == 1


def test_generated_pairs_thinned_per_real_row_on_the_training_side_only(tmp_path, data):
    """Default: generated_per_real generated rows per real training row (corpus size does not change the mix);
    the generated eval questions of held-out documents stay whole."""
    _, corpus, pairs, chunks = data
    train_q = _write(tmp_path / "tq.jsonl", [{"query": "编号502？", "chunk_ids": ["d5-c2"]},
                                             {"query": "编号301？", "chunk_ids": ["d3-c1"]}])
    full = split(pairs, corpus, tmp_path / "all", SplitOptions(eval_ratio=0.2, seed=3))
    res = split(pairs, corpus, tmp_path / "out", SplitOptions(train_queries=str(train_q), eval_ratio=0.2, seed=3,
                                                              generated_per_real=1.5))
    train = _read(tmp_path / "out/train.jsonl")
    real = [r for r in train if r["generator"] == "real"]
    generated = [r for r in train if r["generator"] != "real"]
    assert len(real) in (4, 8) and len(generated) == round(1.5 * len(real))
    assert len(_read(tmp_path / "out/eval/test_queries.jsonl")) == len(_read(tmp_path / "all/eval/test_queries.jsonl"))
    assert res.stats["generators"]["real"] == len(real)
    none = split(pairs, corpus, tmp_path / "none", SplitOptions(train_queries=str(train_q), eval_ratio=0.2, seed=3,
                                                                generated_per_real=0))
    assert all(r["generator"] == "real" for r in _read(tmp_path / "none/train.jsonl"))
    assert none.stats["train_pairs"] == len(real)
