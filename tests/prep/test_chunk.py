"""Chunking keeps articles, clauses and sections whole, carries title paths and pages, and gives stable ids."""
import re

from kit.prep import PrepOptions
from kit.prep.chunk import chunk_document, make_token_counter, split_sentences
from kit.prep.document import Document, Page
from kit.prep.pdf import read_pdf

from conftest import LAW_PDFS

CN = "一二三四五六七八九十百零"


def _doc(*pages: str, name: str = "manual") -> Document:
    return Document(path=f"{name}.pdf", name=name, pages=[Page.from_text(i, t) for i, t in enumerate(pages, 1)])


def _chunks(doc, budget, **kw):
    return chunk_document(doc, PrepOptions(max_tokens=budget, **kw), len)


def test_sentences_split_on_chinese_terminators():
    assert split_sentences("甲。乙！丙？丁；戊") == ["甲。", "乙！", "丙？", "丁；", "戊"]
    assert split_sentences("他说：“好。”然后走了。") == ["他说：“好。”", "然后走了。"]


def test_every_article_of_the_labour_contract_law_is_intact(shared_dir):
    doc = read_pdf(LAW_PDFS / "中华人民共和国劳动合同法_2012修正.pdf", ocr="off")
    budget = 300
    chunks = _chunks(doc, budget)
    full = "\n".join(p.text for p in doc.pages)
    # articles as they appear in the cleaned text: from one marker to the next marker or heading
    articles = re.findall(rf"(第[{CN}]+条 .*?)(?=\n第[{CN}]+[条章节] |\Z)", full, re.S)
    assert len(articles) >= 95
    numbers = [re.match(rf"第[{CN}]+条", a).group(0) for a in articles]
    assert numbers[0] == "第一条" and numbers[-1] == "第九十八条"
    texts = [c.text.replace("\n", "") for c in chunks]
    whole = 0
    for art in articles:
        flat = art.replace("\n", "").strip()
        if len(flat) <= budget - 40:
            assert any(flat in t for t in texts), flat[:40]
            whole += 1
    assert whole >= 80
    # titles carry the chapter and the article numbers
    assert any(c.title.startswith("第二章 劳动合同的订立") and "第十九条" in c.title for c in chunks)
    assert all(c.page_start <= c.page_end for c in chunks)


def test_an_article_across_a_page_break_stays_in_one_chunk():
    doc = _doc("第一章 总则\n第一条 为了规范管理，制定本办法。\n第二条 用人单位应当按照本办法的规定，",
               "与劳动者订立书面劳动合同，并向劳动者支付报酬。\n（一）按月支付；\n第三条 本办法自公布之日起施行。")
    chunks = _chunks(doc, 60)
    second = [c for c in chunks if "第二条" in c.text]
    assert len(second) == 1
    assert "第二条 用人单位应当按照本办法的规定，与劳动者订立书面劳动合同，并向劳动者支付报酬。\n（一）按月支付；" in second[0].text
    assert (second[0].page_start, second[0].page_end) == (1, 2)


def test_long_article_is_cut_only_when_it_exceeds_the_budget():
    text = "第一条 " + "".join(f"这是第{i}句话，内容足够长以便测试。" for i in range(30))
    chunks = _chunks(_doc("第一章 总则\n" + text + "\n第二条 本法自公布之日起施行。"), 120)
    assert len(chunks) >= 4
    assert all(len(c.text) <= 120 for c in chunks)
    assert chunks[-1].text.endswith("第二条 本法自公布之日起施行。")  # the short article is whole
    assert all("第一条" in c.title for c in chunks[:-1]) and "第二条" in chunks[-1].title


def test_numbered_clauses_and_paragraphs_are_never_cut_when_they_fit():
    clauses = [f"{i}. 第{i}项规定。员工应当遵守公司的各项规章制度。按时完成本岗位的工作任务。" for i in range(1, 8)]
    chunks = _chunks(_doc("二、工作纪律\n" + "\n".join(clauses)), 100)
    texts = [c.text.split("\n") for c in chunks]
    assert sorted(x for t in texts for x in t) == sorted(clauses)   # each clause whole in one chunk
    assert all(c.title == "二、工作纪律" for c in chunks)


def test_title_path_carries_part_chapter_section():
    doc = _doc("第二编 物权\n第一章 一般规定\n第一节 不动产登记\n第一条 不动产物权的设立，经依法登记，发生效力。\n"
               "第二节 动产交付\n第二条 动产物权的设立和转让，自交付时发生效力。")
    chunks = _chunks(doc, 200)
    assert [c.title for c in chunks] == ["第二编 物权 第一章 一般规定 第一节 不动产登记 第一条",
                                         "第二编 物权 第一章 一般规定 第二节 动产交付 第二条"]


def test_a_heading_with_nothing_under_it_is_not_lost():
    doc = _doc("第六节 股份变动情况\n报告期内公司股份总数未发生变化，股东结构保持稳定。\n第七节 优先股相关情况\n"
               "第八节 董事和高级管理人员情况\n公司董事会由九名董事组成，其中独立董事三名。\n七、其他\n不适用")
    chunks = _chunks(doc, 300)
    everything = "\n".join(c.title + "\n" + c.text for c in chunks)
    for words in ("第七节 优先股相关情况", "七、其他", "不适用", "第八节 董事和高级管理人员情况"):
        assert words in everything
    assert not any(c.text.strip() == "不适用" for c in chunks)   # a tiny section joins its neighbour


def test_headings_become_a_breadcrumb_title():
    doc = _doc("一、总体要求\n（一）适用范围\n本制度适用于公司全体员工。员工应当遵守。\n"
               "（二）职责分工\n人力资源部负责解释本制度。\n二、附则\n本制度自发布之日起施行。")
    titles = {c.text: c.title for c in _chunks(doc, 200)}
    assert titles["本制度适用于公司全体员工。员工应当遵守。"] == "一、总体要求 （一）适用范围"
    assert titles["人力资源部负责解释本制度。"] == "一、总体要求 （二）职责分工"
    assert titles["本制度自发布之日起施行。"] == "二、附则"  # a new 一、-level heading closes the old （一）


def test_token_budget_uses_the_model_tokenizer(zh_e5_path):
    doc = read_pdf(LAW_PDFS / "中华人民共和国就业促进法_2007.pdf", ocr="off")
    count = make_token_counter(str(zh_e5_path))
    chunks = chunk_document(doc, PrepOptions(max_tokens=128), count)
    assert chunks
    assert max(count(c.title) + count(c.text) for c in chunks) <= 128 + 8


def test_running_text_is_packed_with_sentence_overlap():
    sentences = [f"第{i}句内容写在这里。" for i in range(20)]   # 9 characters each
    doc = _doc("".join(sentences))
    chunks = _chunks(doc, 40, overlap=1)
    assert len(chunks) > 4 and all(len(c.text) <= 40 for c in chunks)
    for a, b in zip(chunks, chunks[1:]):
        last = re.findall(r"[^。]+。", a.text)[-1]
        assert b.text.startswith(last)          # one sentence carried over
    no_overlap = _chunks(doc, 40, overlap=0)
    assert "".join(c.text for c in no_overlap) == "".join(sentences)   # nothing lost, nothing repeated


def test_ids_are_deterministic_and_follow_the_text():
    text = "第一章 总则\n第一条 为了规范管理，制定本办法。\n第二条 本办法适用于全体员工。"
    a, b = _chunks(_doc(text), 30), _chunks(_doc(text), 30)
    assert [c.id for c in a] == [c.id for c in b] and len({c.id for c in a}) == len(a) == 2
    changed = _chunks(_doc(text.replace("全体员工", "全体职工")), 30)
    assert changed[0].id == a[0].id and changed[1].id != a[1].id
    other = _chunks(_doc(text, name="other"), 30)
    assert not {c.id for c in other} & {c.id for c in a}
