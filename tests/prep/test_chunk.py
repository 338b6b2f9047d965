"""Chunking keeps law articles whole, carries titles and pages, and gives stable ids."""
import json
import re

from kit.prep import PrepOptions, prep
from kit.prep.chunk import ChunkOptions, chunk_document, make_token_counter, split_sentences
from kit.prep.pdf import Document, Page, read_pdf

from conftest import LAW_PDFS

CN = "一二三四五六七八九十百零"


def test_sentences_split_on_chinese_terminators():
    assert split_sentences("甲。乙！丙？丁；戊") == ["甲。", "乙！", "丙？", "丁；", "戊"]
    assert split_sentences("他说：“好。”然后走了。") == ["他说：“好。”", "然后走了。"]


def test_every_article_of_the_labour_contract_law_is_intact(shared_dir):
    doc = read_pdf(LAW_PDFS / "中华人民共和国劳动合同法_2012修正.pdf")
    budget = 300
    chunks = chunk_document(doc, ChunkOptions(max_tokens=budget), len)
    full = "\n".join(p.text for p in doc.pages)
    # articles as they appear in the cleaned text: from one marker to the next marker or heading
    articles = re.findall(rf"(第[{CN}]+条 .*?)(?=\n第[{CN}]+[条章节] |\Z)", full, re.S)
    assert len(articles) >= 95
    numbers = [re.match(rf"第[{CN}]+条", a).group(0) for a in articles]
    assert numbers[0] == "第一条" and numbers[-1] == "第九十八条"
    texts = [c.text.replace("\n", "") for c in chunks]
    short_ok = 0
    for art in articles:
        flat = art.replace("\n", "").strip()
        if len(flat) <= budget - 40:
            assert any(flat in t for t in texts), flat[:40]
            short_ok += 1
    assert short_ok >= 80
    # titles carry the chapter and the article numbers
    assert any(c.title.startswith("第二章 劳动合同的订立") and "第十九条" in c.title for c in chunks)
    assert all(c.page_start <= c.page_end for c in chunks)


def test_long_article_is_cut_only_when_it_exceeds_the_budget():
    text = "第一条 " + "".join(f"这是第{i}句话，内容足够长以便测试。" for i in range(30))
    doc = Document(path="x.pdf", name="x", pages=[Page(1, "第一章 总则\n" + text + "\n第二条 本法自公布之日起施行。")])
    chunks = chunk_document(doc, ChunkOptions(max_tokens=120), len)
    assert len(chunks) >= 4
    assert all(len(c.text) <= 120 for c in chunks)
    assert chunks[-1].text.endswith("第二条 本法自公布之日起施行。")  # the short article is whole
    assert all("第一条" in c.title for c in chunks[:-1]) and "第二条" in chunks[-1].title


def test_token_budget_uses_the_model_tokenizer(zh_e5_path):
    doc = read_pdf(LAW_PDFS / "中华人民共和国就业促进法_2007.pdf")
    count = make_token_counter(str(zh_e5_path))
    chunks = chunk_document(doc, ChunkOptions(max_tokens=128), count)
    assert chunks
    assert max(count(c.title) + count(c.text) for c in chunks) <= 128 + 8


def test_prep_ids_are_stable_and_bad_files_do_not_stop_the_batch(shared_dir, tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("中华人民共和国就业促进法_2007.pdf", "中华人民共和国劳动合同法实施条例_excerpt.pdf"):
        (tmp_path / "in" / name).write_bytes((LAW_PDFS / name).read_bytes())
    (tmp_path / "in" / "bad.pdf").write_text("not a pdf")
    opts = PrepOptions(max_tokens=200, progress=False)
    r1 = prep([tmp_path / "in"], tmp_path / "a.jsonl", opts, echo=lambda m: None)
    r2 = prep([tmp_path / "in"], tmp_path / "b.jsonl", PrepOptions(max_tokens=200, progress=False, workers=1),
              echo=lambda m: None)
    assert r1.files == 3 and r1.files_failed == 1 and any("bad.pdf" in p for p in r1.problems)
    a = [json.loads(x) for x in open(tmp_path / "a.jsonl", encoding="utf-8")]
    b = [json.loads(x) for x in open(tmp_path / "b.jsonl", encoding="utf-8")]
    assert a == b and len({r["id"] for r in a}) == len(a)
    assert set(a[0]) == {"id", "doc", "page_start", "page_end", "title", "text"}
    assert {r["doc"] for r in a} == {"中华人民共和国就业促进法_2007", "中华人民共和国劳动合同法实施条例_excerpt"}
    assert not any("file://" in r["text"] for r in a)
