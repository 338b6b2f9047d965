"""Offline generators (ict, keywords, headings), the gen_queries stage with them, and the CLI."""
from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from kit.io import KitError
from kit.queries import QueryOptions, gen_queries
from kit.queries.offline import headings, ict, keywords, split_sentences, strip_numbering

from .conftest import KIT, paragraph_chunks, read_rows, synthetic_chunks, write_corpus


def test_split_sentences_keeps_closing_quotes_and_line_breaks():
    assert split_sentences("他说：“好的。”然后走了！真的吗？是的；不过…还有\n新段落") == \
        ["他说：“好的。”", "然后走了！", "真的吗？", "是的；", "不过…", "还有", "新段落"]


def test_ict_query_is_a_sentence_and_positive_is_the_rest():
    chunks = paragraph_chunks()
    drops = Counter()
    pairs = list(ict(chunks, 2, 0, drops, keep_ratio=0.0))
    assert len(pairs) == 2 * len(chunks)
    for chunk, query, pos in pairs:
        assert query in chunk["text"] and query not in pos
        # Putting the sentence back where it was gives the chunk again.
        i = chunk["text"].index(query)
        assert pos == chunk["text"][:i] + chunk["text"][i + len(query):]
    assert len({q for _, q, _ in pairs}) == len(pairs)


def test_ict_keeps_the_sentence_in_a_seeded_share_of_pairs_orqa_style():
    """keep_ratio decides only whether the sentence stays in the positive, never which sentences are asked."""
    chunks = synthetic_chunks(400)
    never = list(ict(chunks, 1, 5, Counter(), keep_ratio=0.0))
    always = list(ict(chunks, 1, 5, Counter(), keep_ratio=1.0))
    some = list(ict(chunks, 1, 5, Counter(), keep_ratio=0.3))
    assert [q for _, q, _ in never] == [q for _, q, _ in always] == [q for _, q, _ in some]
    assert all(pos == c["text"] for c, _, pos in always)
    assert all(q not in pos for _, q, pos in never)
    kept = [pos == c["text"] for c, _, pos in some]
    assert 0.22 < sum(kept) / len(kept) < 0.38
    assert kept == [pos == c["text"] for c, _, pos in ict(chunks, 1, 5, Counter(), keep_ratio=0.3)]  # seeded
    with pytest.raises(ValueError):
        list(ict(chunks, 1, 5, Counter(), keep_ratio=1.5))


def test_ict_is_seeded_per_chunk_and_skips_one_sentence_chunks():
    chunks = synthetic_chunks(8) + [{"id": "short", "doc": "d", "title": "", "text": "只有一句话而已。"}]
    drops = Counter()
    a = [(c["id"], q) for c, q, _ in ict(chunks, 1, 7, drops)]
    assert drops["ict_too_few_sentences"] == 1 and "short" not in {cid for cid, _ in a}
    # Same seed -> same queries, whatever the order of the corpus; another seed picks other sentences.
    assert sorted(a) == sorted((c["id"], q) for c, q, _ in ict(chunks[::-1], 1, 7, Counter()))
    other = [(c["id"], q) for c, q, _ in ict(chunks, 1, 8, Counter())]
    assert other != a


def test_keywords_are_jieba_words_of_the_chunk():
    chunks = paragraph_chunks()
    pairs = list(keywords(chunks, 2, 0, Counter()))
    by_chunk = Counter(c["id"] for c, _, _ in pairs)
    assert by_chunk == {c["id"]: 2 for c in chunks}
    for chunk, query, pos in pairs:
        words = query.split(" ")
        assert 2 <= len(words) <= 4 and len(set(words)) == len(words)
        assert all(w in chunk["title"] + chunk["text"] for w in words)
        assert pos == chunk["text"]
    # jieba segments words, not characters: the law chunk's top keywords include 劳动合同 / 试用期.
    first = {q for c, q, _ in pairs if c["id"].endswith("0002")}
    assert any("试用期" in q.split(" ") for q in first)
    assert pairs == list(keywords(chunks, 2, 0, Counter()))


def test_strip_numbering_and_headings():
    assert strip_numbering("第三章 劳动合同的履行和变更") == "劳动合同的履行和变更"
    assert strip_numbering("（二）风险提示") == "风险提示"
    assert strip_numbering("1.2 安装步骤") == "安装步骤"
    assert strip_numbering("第十条") == ""
    assert strip_numbering("2023年度报告") == "2023年度报告"
    chunks = paragraph_chunks()
    chunks.append(dict(chunks[1], id="repeat", text="劳动者依法享有获得劳动报酬的权利。"))  # same title, same doc
    drops = Counter()
    pairs = [(c["id"], q) for c, q, _ in headings(chunks, 3, 0, drops)]
    assert pairs == [("劳动合同法-0001", "劳动合同的履行和变更"), ("劳动合同法-0002", "试用期"),
                     ("劳动合同法-0003", "公司概况"), ("劳动合同法-0005", "风险提示")]
    assert drops == Counter(headings_numbering_only=1, headings_no_title=1, headings_repeated_title=1)


def test_gen_queries_combines_generators_and_reports_bad_lines(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", paragraph_chunks(),
                          extra_lines=["{broken", '{"id": "x", "text": ""}', '{"text": "无编号"}',
                                       '{"id": "劳动合同法-0001", "text": "同一编号的另一段。"}'])
    out = tmp_path / "pairs.jsonl"
    res = gen_queries(corpus, out, QueryOptions(generator="ict,keywords,headings", per_chunk=2, seed=1))
    rows = read_rows(out)
    assert res.pairs == len(rows) == sum(res.by_generator.values())
    assert res.by_generator == {"ict": 12, "keywords": 12, "headings": 4}
    assert [e.split(": ")[0].rsplit(":", 1)[1] for e in res.read_errors] == ["7", "8", "9", "10"]
    assert "duplicate id '劳动合同法-0001' (first on line 2)" in res.read_errors[-1]
    assert all(set(r) == {"query", "pos", "chunk_id", "doc", "generator"} and isinstance(r["pos"], list)
               and r["doc"] == "劳动合同法" for r in rows)
    # Deterministic: the same seed writes the same file.
    gen_queries(corpus, tmp_path / "again.jsonl", QueryOptions(generator=["ict", "keywords", "headings"],
                                                               per_chunk=2, seed=1))
    assert read_rows(tmp_path / "again.jsonl") == rows
    with pytest.raises(KitError, match="unknown generator"):
        gen_queries(corpus, out, QueryOptions(generator="bm25"))


def test_cli_offline_and_nothing_generated(tmp_path, corpus_file):
    out = tmp_path / "pairs.jsonl"
    ok = subprocess.run(KIT + ["gen-queries", str(corpus_file), "-o", str(out), "-g", "headings", "-g", "ict",
                               "--per-chunk", "1", "--ict-keep", "1"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "10 pairs from 6 chunks" in ok.stdout and "headings_numbering_only 1" in ok.stdout
    rows = read_rows(out)
    assert {r["generator"] for r in rows} == {"headings", "ict"}
    texts = {c["id"]: c["text"] for c in read_rows(corpus_file)}
    assert all(r["pos"] == [texts[r["chunk_id"]]] for r in rows)  # --ict-keep 1: the sentence stays in
    lone = write_corpus(tmp_path / "lone.jsonl", [{"id": "a", "doc": "d", "title": "", "text": "一句话。"}])
    none = subprocess.run(KIT + ["gen-queries", str(lone), "-o", str(tmp_path / "none.jsonl"), "-g", "ict"],
                          capture_output=True, text=True, timeout=60)
    assert none.returncode == 1 and "no query could be generated" in none.stderr
    assert not (tmp_path / "none.jsonl").exists()
    helped = subprocess.run(KIT + ["gen-queries", "--help"], capture_output=True, text=True, timeout=60)
    assert "kit gen-queries work/corpus.jsonl" in helped.stdout
