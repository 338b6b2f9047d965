"""Scanned pages are read: a real statute page rendered to an image and wrapped as a PDF comes back by OCR."""
import json

import pdfplumber
import pypdfium2
import pytest
from rapidfuzz.distance import Levenshtein

from kit.prep import PrepOptions, prep
from kit.prep.ocr import group_lines
from kit.prep.text import comparable

from conftest import LAW_PDFS


def test_boxes_are_grouped_into_lines_top_to_bottom_left_to_right():
    def box(x0, y0, x1, y1, text, score=0.9):
        return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]], text, score]

    boxes = [box(300, 102, 500, 130, "劳动合同"), box(10, 100, 280, 128, "第一条"), box(10, 150, 400, 178, "Section 2"),
             box(420, 151, 600, 179, "applies"), box(10, 200, 100, 230, "印章", 0.2)]
    assert group_lines(boxes) == ["第一条劳动合同", "Section 2 applies"]


@pytest.mark.slow
def test_a_scanned_page_is_read_back_by_ocr(shared_dir, tmp_path):
    """Page 5 of 劳动合同法 rendered at 150 dpi into an image-only PDF: >= 95% character accuracy against the
    page's text layer; its chunks say they were read by OCR, and the summary gives the OCR share."""
    src = LAW_PDFS / "中华人民共和国劳动合同法_2012修正.pdf"
    pdf = pypdfium2.PdfDocument(str(src))
    pdf[4].render(scale=150 / 72).to_pil().save(tmp_path / "scan.pdf", resolution=150)
    with pdfplumber.open(tmp_path / "scan.pdf") as scan:
        assert not scan.pages[0].extract_text().strip() and scan.pages[0].images   # image only
    with pdfplumber.open(src) as original:
        truth = comparable(original.pages[4].extract_text())
    off = prep([tmp_path / "scan.pdf"], tmp_path / "off.jsonl", PrepOptions(ocr="off", progress=False, workers=1),
               echo=lambda m: None)
    assert off.chunks == 0 and off.files_failed == 1 and not (tmp_path / "off.jsonl").exists()
    result = prep([tmp_path / "scan.pdf"], tmp_path / "corpus.jsonl",
                  PrepOptions(ocr="auto", progress=False, workers=1, max_tokens=2000), echo=lambda m: None)
    rows = [json.loads(x) for x in open(tmp_path / "corpus.jsonl", encoding="utf-8")]
    read = comparable("".join(r["text"] for r in rows))
    accuracy = 1 - Levenshtein.distance(truth, read) / len(truth)
    assert accuracy >= 0.95, accuracy
    assert all(r.get("ocr") is True for r in rows)
    assert result.ocr_pages == 1 and result.ocr_share == 1.0
    assert "OCR: 1 pages, 100.0% of the text" in result.summary()
