"""Nothing a PDF says is lost: the fidelity figure over every PDF we have, and the figure itself."""
import dataclasses

import pdfplumber
import pytest
from rapidfuzz.distance import LCSseq

from kit.prep import PrepOptions
from kit.prep.chunk import chunk_document
from kit.prep.fidelity import measure
from kit.prep.pdf import read_pdf
from kit.prep.stage import PrepOptions, work
from kit.prep.text import comparable

from conftest import BROKEN_PDFS, DATA, LAW_PDFS, REPO

PDF_DIRS = [REPO / "examples" / "data", DATA / "pdfs" / "laws", DATA / "pdfs" / "annual_reports",
            DATA / "pdfs" / "manuals"]
ALL_PDFS = sorted(p for d in PDF_DIRS if d.is_dir() for p in d.glob("*.pdf"))


@pytest.mark.slow
@pytest.mark.parametrize("path", ALL_PDFS or [None], ids=lambda p: p.name if p else "missing")
def test_every_pdf_reaches_its_chunks(path):
    """>= 99.5% of each file's text layer is in its chunks, in order (tables: every cell character)."""
    if path is None:
        pytest.skip("no PDFs in examples/data or ../shared/data/pdfs")
    report = work((path, PrepOptions(max_tokens=480, ocr="off")))
    assert not report.failed, report.problems
    assert report.chars > 1000 and report.fidelity >= 0.995, (report.fidelity, report.low_pages)
    # only image-only pages may be left out, and they are named
    assert all("no text layer" in p for p in report.problems), report.problems
    assert report.pages_skipped == len(report.problems)


@pytest.mark.parametrize("path", sorted(BROKEN_PDFS.glob("*.pdf")) or [None], ids=lambda p: p.name if p else "x")
def test_broken_digit_pdfs_are_reported_as_broken(path):
    if path is None:
        pytest.skip("../shared/data/pdfs/broken is missing")
    report = work((path, PrepOptions(ocr="off")))
    assert report.failed and not report.rows and report.fidelity is None
    assert any("ToUnicode" in p and "rejected" in p and path.name in p for p in report.problems)


def test_the_figure_is_the_text_layer_found_in_order(shared_dir):
    """On a statute without tables the reference is exactly pdfplumber's extract_text() per page; the figure
    falls when chunk text is lost or shuffled."""
    path = LAW_PDFS / "中华人民共和国就业促进法_2007.pdf"
    doc = read_pdf(path, ocr="off")
    with pdfplumber.open(path) as pdf:
        assert [p.ref for p in doc.pages] == [pdf.pages[p.number - 1].extract_text() for p in doc.pages]
    chunks = chunk_document(doc, PrepOptions(max_tokens=300), len)
    full = measure(doc, chunks)
    assert full.share == 1.0 and full.chars > 5000
    ref = "".join(comparable(p.ref) for p in doc.pages)
    out = "".join(comparable(c.title) + comparable(c.text) for c in chunks)
    assert LCSseq.similarity(ref, out) == full.chars + full.dropped   # per page == over the whole file
    lost = measure(doc, chunks[:3] + chunks[4:])
    assert lost.share < 1 - len(comparable(chunks[3].text)) / full.chars / 2
    shuffled = [dataclasses.replace(c, text=c.text[len(c.text) // 2:] + c.text[:len(c.text) // 2]) for c in chunks]
    assert measure(doc, shuffled).share < 0.9


def test_table_cells_count_as_a_bag_and_are_missed_when_gone(tmp_path):
    import pdfgen

    path = tmp_path / "table.pdf"
    pdfgen.long_table(path, rows=20)
    doc = read_pdf(path)
    chunks = chunk_document(doc, PrepOptions(max_tokens=200), len)
    assert measure(doc, chunks).share >= 0.995
    no_rows = [dataclasses.replace(c, text="\n".join(ln for ln in c.text.split("\n") if " | " not in ln))
               for c in chunks]
    assert measure(doc, no_rows).share < 0.5
