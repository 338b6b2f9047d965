"""Reading PDFs: real statutes, and bad input made in the test (one clear line per file)."""
import functools
import re

from kit.prep.pdf import read_pdf

from conftest import LAW_PDFS
from helpers.bad_pdfs import write_bad_files


@functools.lru_cache(maxsize=None)
def law(name: str):
    """Each statute is extracted once per session (pdfplumber is the slow part of these tests)."""
    return read_pdf(LAW_PDFS / name, ocr="off")


def test_radicals_excerpt_reads_as_normal_characters(shared_dir):
    doc = law("中华人民共和国劳动合同法实施条例_excerpt.pdf")
    text = "".join(p.text for p in doc.pages)
    assert not doc.failed
    assert not re.search("[\u2e80-\u2eff\u2f00-\u2fdf]", text)  # no radicals left
    assert "第十一条" in text and "劳动合同" in text


def test_an_image_only_page_is_named_when_ocr_is_off(shared_dir):
    doc = law("中华人民共和国公司法_1999修正.pdf")
    assert doc.problems == [f"{LAW_PDFS / '中华人民共和国公司法_1999修正.pdf'}: page 1: no text layer "
                            "(image-only page; set ocr to auto to read it)"]
    assert doc.skipped == 1 and doc.pages[0].number == 2


def write_scan(path):
    """A PDF whose only page is an image of noise (no text to read, by OCR either)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    fig = plt.figure(figsize=(3, 3))
    fig.figimage(np.random.default_rng(0).random((60, 60)))
    fig.savefig(path)
    plt.close(fig)


def test_bad_files_each_get_one_clear_line(shared_dir, tmp_path):
    expect = write_bad_files(tmp_path)
    for name, words in expect.items():
        doc = read_pdf(tmp_path / name)
        assert doc.failed and not doc.pages, name
        assert any(words in p and name in p for p in doc.problems), (name, doc.problems)
        # a file-level failure is exactly one line, not a traceback or one line per page
        assert len(doc.problems) == 1 and "\n" not in doc.problems[0], doc.problems


def test_a_truncated_pdf_with_an_end_marker_and_no_page_fails(shared_dir, tmp_path):
    write_bad_files(tmp_path)
    doc = read_pdf(tmp_path / "cut_eof.pdf")
    assert doc.failed and doc.page_count == 0
    assert re.search(r"cut_eof\.pdf: (no pages|corrupt PDF)", doc.problems[0]), doc.problems


def test_an_image_of_noise_is_reported_not_indexed(tmp_path):
    write_scan(tmp_path / "scan.pdf")
    off = read_pdf(tmp_path / "scan.pdf", ocr="off")
    assert off.failed and any("no text layer" in p for p in off.problems)
    auto = read_pdf(tmp_path / "scan.pdf", ocr="auto")
    assert auto.failed and auto.ocr_pages == 1 and any("OCR found no text" in p for p in auto.problems)
