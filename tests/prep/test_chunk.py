"""Chunking keeps law articles whole, carries titles and pages, and gives stable ids."""
import re

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


def _doc(text: str, name: str = "manual") -> Document:
    return Document(path=f"{name}.pdf", name=name, pages=[Page(1, text)])


def test_headings_become_a_breadcrumb_title():
    doc = _doc("一、总体要求\n（一）适用范围\n本制度适用于公司全体员工。员工应当遵守。\n"
               "（二）职责分工\n人力资源部负责解释。\n二、附则\n本制度自发布之日起施行。")
    chunks = chunk_document(doc, ChunkOptions(max_tokens=200), len)
    titles = {c.text: c.title for c in chunks}
    assert titles["本制度适用于公司全体员工。员工应当遵守。"] == "一、总体要求 （一）适用范围"
    assert titles["人力资源部负责解释。"] == "一、总体要求 （二）职责分工"
    assert titles["本制度自发布之日起施行。"] == "二、附则"  # a new 一、-level heading closes the old （一）


def test_running_text_is_packed_with_sentence_overlap():
    sentences = [f"第{i}句内容写在这里。" for i in range(20)]   # 9 characters each
    doc = _doc("".join(sentences))
    chunks = chunk_document(doc, ChunkOptions(max_tokens=40, overlap=1), len)
    assert len(chunks) > 4 and all(len(c.text) <= 40 for c in chunks)
    for a, b in zip(chunks, chunks[1:]):
        last = re.findall(r"[^。]+。", a.text)[-1]
        assert b.text.startswith(last)          # one sentence carried over
    no_overlap = chunk_document(doc, ChunkOptions(max_tokens=40, overlap=0), len)
    assert "".join(c.text for c in no_overlap) == "".join(sentences)   # nothing lost, nothing repeated


def test_ids_are_deterministic_and_follow_the_text():
    text = "第一章 总则\n第一条 为了规范管理，制定本办法。\n第二条 本办法适用于全体员工。"
    a = chunk_document(_doc(text), ChunkOptions(max_tokens=20), len)
    b = chunk_document(_doc(text), ChunkOptions(max_tokens=20), len)
    assert [c.id for c in a] == [c.id for c in b] and len({c.id for c in a}) == len(a) == 2
    changed = chunk_document(_doc(text.replace("全体员工", "全体职工")), ChunkOptions(max_tokens=20), len)
    assert changed[0].id == a[0].id and changed[1].id != a[1].id
    other = chunk_document(_doc(text, name="other"), ChunkOptions(max_tokens=20), len)
    assert not {c.id for c in other} & {c.id for c in a}
