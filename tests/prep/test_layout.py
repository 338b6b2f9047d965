"""Tables that are tables, text that is text: PDFs made here (pdfgen.py) and real annual-report pages."""
import functools
import re

import pdfplumber
import pytest

from kit.prep import PrepOptions
from kit.prep.chunk import chunk_document
from kit.prep.fidelity import measure
from kit.prep.pdf import read_pdf

import pdfgen
from conftest import DATA


def _flat(doc) -> str:
    return "\n".join(p.text for p in doc.pages)


def test_shaded_article_boxes_stay_statute_text(tmp_path):
    pdf = tmp_path / "statute.pdf"
    articles = pdfgen.shaded_articles(pdf)
    with pdfplumber.open(pdf) as raw:   # the trap is real: pdfplumber's default finder sees one-row "tables"
        found = [t.extract() for page in raw.pages for t in page.find_tables()]
    assert len(found) >= len(articles) and all(len(t) == 1 for t in found)
    doc = read_pdf(pdf)
    assert doc.tables == 0 and not doc.problems
    text = _flat(doc)
    assert " | " not in text
    flat = text.replace("\n", "")
    positions = [flat.index(a) if a in flat else -1 for a in articles]    # every article, in order
    assert -1 not in positions or flat.count("第十条") == 1
    from kit.prep.structure import paragraphs_of
    pars = [p.block.text for p in paragraphs_of(doc)]
    assert [p for p in pars if re.match("第.{1,3}条 ", p)] == articles    # whole paragraphs, also over the break
    # each article (one runs over the page break) is one unit of one chunk, titled with its path
    chunks = chunk_document(doc, PrepOptions(max_tokens=200), len)
    for art in articles:
        holders = [c for c in chunks if art in c.text.replace("\n", "")]
        assert len(holders) == 1, art[:10]
        assert holders[0].title.startswith("第一章 总则 第")
    crossing = [c for c in chunks if c.page_start == 1 and c.page_end == 2]
    assert crossing, "the article cut by the page break is joined back"
    assert measure(doc, chunks).share >= 0.995


def test_framed_paragraph_is_text_in_place(tmp_path):
    pdf = tmp_path / "framed.pdf"
    before, framed, after = pdfgen.framed_paragraph(pdf)
    doc = read_pdf(pdf)
    assert doc.tables == 0
    assert _flat(doc).split("\n") == [before, framed, after]


def test_two_columns_are_read_column_by_column(tmp_path):
    pdf = tmp_path / "columns.pdf"
    title, left, right = pdfgen.two_columns(pdf)
    with pdfplumber.open(pdf) as raw:   # pdfplumber alone reads across both columns
        assert not any(p in raw.pages[0].extract_text().replace("\n", "") for p in left)
    text = _flat(read_pdf(pdf)).replace("\n", "")
    assert text.startswith(title)
    positions = [text.index(p) for p in left + right]   # every paragraph whole, left column first
    assert positions == sorted(positions)


def test_a_table_over_a_page_break_keeps_every_row_between_its_text(tmp_path):
    pdf = tmp_path / "table.pdf"
    before, data, after = pdfgen.long_table(pdf)
    doc = read_pdf(pdf)
    assert doc.tables == 2 and len(doc.pages) == 2
    lines = _flat(doc).split("\n")
    assert lines[0] == before and lines[-1] == after
    rows = [ln for ln in lines if " | " in ln and not ln.startswith("项目")]
    assert rows == [" | ".join(r) for r in data[1:]]
    chunks = chunk_document(doc, PrepOptions(max_tokens=400), len)
    assert measure(doc, chunks).share >= 0.995
    assert all(" | " in row for c in chunks for row in c.text.split("\n") if "项费用" in row)


def test_a_one_cell_frame_is_not_a_table(tmp_path):
    """A single framed line and a 2-row, 1-column box are ordinary text; a 2 x 2 grid with text is a table."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "boxes.pdf"
    c = canvas.Canvas(str(path))
    c.setFont(pdfgen.FONT, 11)
    c.rect(70, 700, 300, 20)
    c.drawString(74, 706, "单独一行的边框文字。")
    c.rect(70, 600, 300, 40)
    c.line(70, 620, 370, 620)
    c.drawString(74, 626, "上面一行文字。")
    c.drawString(74, 606, "下面一行文字。")
    c.grid([70, 200, 370], [450, 480, 510])
    c.drawString(74, 490, "项目")
    c.drawString(204, 490, "金额")
    c.drawString(74, 460, "营业收入")
    c.drawString(204, 460, "1,000.00")
    c.save()
    doc = read_pdf(path)
    assert doc.tables == 1
    assert _flat(doc).split("\n") == ["单独一行的边框文字。上面一行文字。下面一行文字。",
                                     "项目 | 金额", "营业收入 | 1,000.00"]


@functools.lru_cache(maxsize=None)
def _report_page(pattern: str, index: int, tmp: str):
    from pypdf import PdfReader, PdfWriter

    report = next((DATA / "pdfs" / "annual_reports").glob(pattern), None)
    if report is None:
        pytest.skip(f"{pattern} not in ../shared/data")
    out = f"{tmp}/page{index + 1}.pdf"
    writer = PdfWriter()
    writer.add_page(PdfReader(report).pages[index])
    writer.write(out)
    return read_pdf(out)


def test_annual_report_key_figures_are_rows_in_place(tmp_path):
    """Page 6 of 航天电器 2019 (key financial data): each row one `a | b | c` line, figures once, between the
    running text around the tables."""
    doc = _report_page("*航天电器*年度报告.pdf", 5, str(tmp_path))
    assert not doc.problems and len(doc.pages) == 1 and doc.tables >= 2
    lines = doc.pages[0].text.splitlines()
    assert "营业收入（元） | 3,533,710,584.98 | 2,834,084,194.08 | 24.69% | 2,612,127,319.84" in lines
    assert "基本每股收益（元/股） | 0.94 | 0.84 | 11.90% | 0.73" in lines
    text = doc.pages[0].text
    assert text.count("3,533,710,584.98") == 1 and text.count("5,593,990,470.97") == 1
    heading = lines.index("八、分季度主要财务指标")
    assert lines.index("营业收入（元） | 3,533,710,584.98 | 2,834,084,194.08 | 24.69% | 2,612,127,319.84") < heading


def test_annual_report_wrapped_cells_keep_their_text(tmp_path):
    """Page 28 of 建新股份 2019: a two-column table whose right cell holds 2,000 characters over 30 lines;
    the text layer interleaves them, prep keeps the cell whole in one row."""
    doc = _report_page("*建新股份*年度报告.pdf", 27, str(tmp_path))
    rows = [b.text for b in doc.pages[0].blocks if b.kind == "row"]
    assert rows[0].startswith("金额、用途及使用进展情况 | 公司超募资金33,233.31万元。")
    assert "2017年投资收益2,113,967.13元，累计投资收益共计2,686,241.10元。" in rows[0]
    assert re.search(r"募集资金投资项目实施地点变更情况 \| 不适用", "\n".join(rows))
    chunks = chunk_document(doc, PrepOptions(max_tokens=480), len)
    assert measure(doc, chunks).share >= 0.995
