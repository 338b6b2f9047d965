"""PDF -> a Document of cleaned pages, with pdfplumber (text, positions, tables) and RapidOCR (scans).

In order, and why:
- bad files are caught before pdfplumber sees them (empty, not a PDF, encrypted, corrupt, truncated, no page),
  so one bad file is one clear line and the batch goes on;
- each page's lines come from layout.py (tables that are tables become ``a | b | c`` rows in place, two-column
  pages are read column by column); its text layer (``extract_text()``) is kept as the reference that
  fidelity.py compares the chunks with;
- image-only pages are read by OCR (``ocr: auto``; ``force`` reads every page by OCR, ``off`` reports them);
- pages whose glyphs decode to garbage (fonts without a ToUnicode map) are reported, never indexed;
- clean.py drops running headers/footers and page numbers (saying how much) and joins wrapped lines.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .clean import RawPage, clean_pages
from .document import Document, display
from .layout import Line, page_lines
from .text import garbage_reason

# pdfminer warns once per glyph about malformed font descriptors that do not affect the text.
logging.getLogger("pdfminer").setLevel(logging.ERROR)

OCR_MODES = ("auto", "off", "force")
MIN_TEXT_CHARS = 10          # fewer text-layer characters than this on a page with images: a scan


def check_file(path: Path) -> str | None:
    try:
        size = path.stat().st_size
    except OSError as e:
        return f"cannot read: {e.strerror}"
    if size == 0:
        return "empty file (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(1024)
        f.seek(max(0, size - 2048))
        tail = f.read()
    if b"%PDF-" not in head:
        return f"not a PDF (starts with {head[:16]!r})"
    if b"%%EOF" not in tail:
        return "truncated PDF (no %%EOF marker at the end: the download or copy was cut short)"
    return None


def _exception_chain(e: BaseException):
    # pdfplumber wraps pdfminer's errors: PdfminerException(PDFPasswordIncorrect()) carries the real one
    # in args / __context__, so the reason has to be looked for along the chain.
    seen = set()
    todo = [e]
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        todo += [a for a in getattr(x, "args", ()) if isinstance(a, BaseException)]
        todo += [c for c in (x.__cause__, x.__context__) if c is not None]


def open_error(e: BaseException) -> str:
    """The one line for a PDF that cannot be opened."""
    chain = list(_exception_chain(e))
    for x in chain:
        name, msg = type(x).__name__, str(x).lower()
        if name in ("PDFPasswordIncorrect", "PDFEncryptionError", "PDFEncryptionWarning") or \
                "password" in msg or "encrypt" in msg:
            return "encrypted PDF (needs a password); decrypt it first"
    root = chain[-1] if len(chain) > 1 else e
    return f"corrupt PDF ({type(root).__name__}: {str(root) or type(root).__name__})"


@dataclass
class _Reader:
    """Per-file state while its pages are read."""
    path: Path
    ocr: str
    doc: Document
    raw: list[RawPage] = field(default_factory=list)
    garbage: int = 0
    _pdfium: object = None

    def scan(self, index: int) -> list[Line]:
        from . import ocr

        if self._pdfium is None:
            import pypdfium2

            # bytes, not the path: pdfium cannot open a file name that is not valid UTF-8
            self._pdfium = pypdfium2.PdfDocument(self.path.read_bytes())
        return [Line(0, t) for t in ocr.ocr_image(ocr.render(self._pdfium, index))]

    def close(self):
        if self._pdfium is not None:
            self._pdfium.close()

    def page(self, number: int, page) -> None:
        ref = page.extract_text() or ""
        scanned = len(ref.strip()) < MIN_TEXT_CHARS and bool(page.images)
        where = f"{self.doc.path}: page {number}"
        if self.ocr == "force" or (self.ocr == "auto" and scanned):
            lines = self.scan(number - 1)
            self.doc.ocr_pages += 1
            self.raw.append(RawPage(number, lines, ref, ocr=True))
            if not lines and not ref.strip():
                self.doc.problems.append(f"{where}: OCR found no text")
            return
        if scanned and not ref.strip():
            self.doc.skipped += 1
            self.doc.problems.append(f"{where}: no text layer (image-only page; set ocr to auto to read it)")
            return
        layout = page_lines(page)
        lines = layout.lines
        self.doc.tables += layout.tables
        why = garbage_reason("\n".join(ln.text for ln in lines if ln.kind == "text"))
        if why:
            self.garbage += 1
            self.doc.skipped += 1
            self.doc.problems.append(f"{where}: skipped, {why}" + ("" if self.ocr == "off" else
                                                                    "; ocr force reads it by OCR"))
            return
        self.raw.append(RawPage(number, lines, ref if layout.flow_ref is None else layout.flow_ref,
                                cells=layout.cell_chars))


def _text_layer(page) -> str:
    try:
        return page.extract_text() or ""
    except Exception:
        return ""


def read_pdf(path, ocr: str = "auto") -> Document:
    """Extract and clean every page of one PDF; problems are recorded, never raised."""
    import pdfplumber

    path = Path(path)
    doc = Document(path=display(path), name=display(path.stem))
    reason = check_file(path)
    if reason:
        return doc.fail(reason)
    reader = _Reader(path, ocr, doc)
    try:
        with pdfplumber.open(path) as pdf:
            doc.page_count = len(pdf.pages)
            for i, page in enumerate(pdf.pages, start=1):
                try:
                    reader.page(i, page)
                except Exception as e:  # one broken page must not lose the file (its text counts as lost)
                    doc.problems.append(f"{doc.path}: page {i}: cannot extract text ({type(e).__name__}: {e})")
                    reader.raw.append(RawPage(i, [], _text_layer(page)))
                    doc.skipped += 1
                finally:
                    page.close()   # frees the page's parsed objects: a 300-page report stays small
    except Exception as e:
        return doc.fail(open_error(e))
    finally:
        reader.close()
    return _finish(doc, reader)


def _finish(doc: Document, reader: _Reader) -> Document:
    if doc.page_count == 0:
        return doc.fail("no pages (a damaged or truncated PDF: its page tree is missing)")
    usable = sum(1 for p in reader.raw if p.lines)
    if not usable:
        return doc.fail(f"no usable text on any of its {doc.page_count} pages")
    if reader.garbage and reader.garbage >= usable:
        return doc.fail(f"rejected: {reader.garbage} of {doc.page_count} pages decode to garbage (fonts without a "
                        f"usable ToUnicode map); the rest cannot be trusted (re-export the PDF with embedded "
                        f"Unicode fonts, or set ocr to force)")
    doc.pages = clean_pages(reader.raw)
    return doc
