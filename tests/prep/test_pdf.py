"""PDF cleaning on the real statute PDFs and on bad input made in the test."""
import functools
import re

import pytest

from kit.prep.pdf import _clean_pages, garbage_reason, join_lines, nfkc_keep_chinese_punct, read_pdf

from conftest import BROKEN_PDFS, LAW_PDFS


@functools.lru_cache(maxsize=None)
def law(name: str):
    """Each statute is extracted once per session (pdfplumber is the slow part of these tests)."""
    return read_pdf(LAW_PDFS / name)


def test_nfkc_turns_radicals_into_characters_but_keeps_chinese_punctuation():
    assert nfkc_keep_chinese_punct("⼗⼀⼈") == "十一人"
    assert nfkc_keep_chinese_punct("ＡＢ１２，。；：？！（）") == "AB12，。；：？！（）"


def test_radicals_excerpt_reads_as_normal_characters(shared_dir):
    doc = law("中华人民共和国劳动合同法实施条例_excerpt.pdf")
    text = "".join(p.text for p in doc.pages)
    assert not doc.failed
    assert not re.search("[\u2e80-\u2eff\u2f00-\u2fdf]", text)  # no radicals left
    assert "第十一条" in text and "劳动合同" in text


def test_running_headers_footers_and_page_numbers_are_dropped():
    """Every page-number form and a header whose date/url/page counter changes per page; the real statutes
    are checked at chunk level in test_stage.py."""
    numbers = ["-1-", "第2页", "3/20", "- 4 -", "—5—", "第 6 页 共 20 页"]
    topics = ["工资支付", "休息休假", "社会保险", "劳动安全", "职业培训", "争议处理"]
    raw, bodies = [], []
    for i, (number, topic) in enumerate(zip(numbers, topics), start=1):
        body = [f"本页讲{topic}的规定。", f"用人单位应当依法办理{topic}事项。", f"劳动者对{topic}有异议的可以申诉。"]
        lines = [f"file://G:\\法规\\刑法\\page{i}.htm 2002-9-{i}",
                 f"某某股份有限公司 2019 年年度报告全文 {i}", *body, number]
        raw.append((i, lines, []))
        bodies.append("\n".join(body))
    pages = _clean_pages(raw)
    assert [p.text.replace("\n", "") for p in pages] == [b.replace("\n", "") for b in bodies]


def test_wrapped_chinese_lines_are_joined_without_spaces():
    lines = ["第二条 中华人民共和国境内的企业、个体经济组织、民办",
             "非企业单位等组织与劳动者建立劳动关系，适用本法。",
             "第三条 订立劳动合同，应当遵循合法、公平的原则。"]
    pars = join_lines(lines)
    assert pars[0] == "第二条 中华人民共和国境内的企业、个体经济组织、民办非企业单位等组织与劳动者建立劳动关系，适用本法。"
    assert pars[1].startswith("第三条")


def test_section_heading_without_a_space_starts_its_own_paragraph():
    # annual reports print "第七节优先股相关情况" with no space; a wrapped reference "第三章规定的…" is not a heading
    pars = join_lines(["5、控股股东股份限制减持情况□ 适用 √ 不适用", "第七节优先股相关情况", "报告期公司不存在优先股。"])
    assert pars == ["5、控股股东股份限制减持情况□ 适用 √ 不适用", "第七节优先股相关情况", "报告期公司不存在优先股。"]
    pars = join_lines(["用人单位应当按照本法第二十条和", "第三章规定的程序办理手续。"])
    assert pars == ["用人单位应当按照本法第二十条和第三章规定的程序办理手续。"]


@pytest.mark.parametrize("name", sorted(p.name for p in BROKEN_PDFS.glob("*.pdf")) or ["missing"])
def test_broken_digit_pdfs_are_reported_not_indexed(shared_dir, name):
    doc = read_pdf(BROKEN_PDFS / name)
    assert doc.failed and not doc.pages
    assert any("ToUnicode" in p for p in doc.problems)
    assert any(name in p for p in doc.problems)


def test_garbage_detector_on_text():
    assert garbage_reason('当依照有关法律!行政法规规定的权利和义务订立合同"第三十九条 #格式合同条款定义及使用人义务$采用格'
                          '式条款订立合同的%提供格式条款的一方应当遵循公平原则确定当事人之间的权利和义务%并采取合理的方式') is not None
    assert garbage_reason("(cid:12)(cid:13)(cid:14) abc") is not None
    assert garbage_reason("第一条 为了完善劳动合同制度，明确劳动合同双方当事人的权利和义务，保护劳动者的合法权益，"
                          "构建和发展和谐稳定的劳动关系，制定本法。") is None


def _write_bad_files(tmp_path):
    src = LAW_PDFS / "中华人民共和国就业促进法_2007.pdf"
    data = src.read_bytes()
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "notes.pdf").write_text("这不是PDF文件", encoding="utf-8")
    (tmp_path / "truncated.pdf").write_bytes(data[: len(data) // 2])
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 200 + b"\n%%EOF\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    fig = plt.figure(figsize=(3, 3))
    fig.figimage(np.random.default_rng(0).random((60, 60)))
    fig.savefig(tmp_path / "scan.pdf")
    plt.close(fig)
    # pypdf (test-only dependency) writes a real password-protected PDF; pdfminer cannot write PDFs.
    from pypdf import PdfWriter
    writer = PdfWriter(clone_from=src)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    with open(tmp_path / "locked.pdf", "wb") as f:
        writer.write(f)
    return {"empty.pdf": "empty file", "notes.pdf": "not a PDF", "truncated.pdf": "truncated",
            "corrupt.pdf": "corrupt", "scan.pdf": "no text layer", "locked.pdf": "encrypted PDF"}


def test_bad_files_each_get_one_clear_line(shared_dir, tmp_path):
    expect = _write_bad_files(tmp_path)
    for name, words in expect.items():
        doc = read_pdf(tmp_path / name)
        assert doc.failed and not doc.pages, name
        assert any(words in p and name in p for p in doc.problems), (name, doc.problems)
        # a file-level failure is exactly one line, not a traceback or one line per page
        assert len(doc.problems) <= 2 and all("\n" not in p for p in doc.problems), doc.problems


def test_tables_become_pipe_rows_and_their_cells_are_not_read_twice(tmp_path):
    """Page 6 of a real annual report (key financial data): each table row becomes one `a | b | c` line, and the
    cells leave the running text, so a figure is not indexed twice or glued into a sentence."""
    from pypdf import PdfReader, PdfWriter

    from conftest import DATA

    report = next((DATA / "pdfs" / "annual_reports").glob("*航天电器*年度报告.pdf"), None)
    if report is None:
        pytest.skip("annual report 航天电器 2019 not in ../shared/data")
    page = tmp_path / "key_figures.pdf"
    writer = PdfWriter()
    writer.add_page(PdfReader(report).pages[5])
    writer.write(page)
    doc = read_pdf(page)
    assert not doc.problems and len(doc.pages) == 1
    text = doc.pages[0].text
    lines = text.splitlines()
    assert "营业收入（元） | 3,533,710,584.98 | 2,834,084,194.08 | 24.69% | 2,612,127,319.84" in lines
    assert "基本每股收益（元/股） | 0.94 | 0.84 | 11.90% | 0.73" in lines
    assert text.count("3,533,710,584.98") == 1 and text.count("5,593,990,470.97") == 1
    assert "八、分季度主要财务指标" in lines  # the running text around the tables is kept
