"""PDF -> cleaned page text with pdfplumber.

Cleaning, in order, and why:
- bad files are caught before pdfplumber sees them (empty, not a PDF, encrypted, corrupt, truncated), so one
  bad file is one clear line and the batch goes on;
- tables (pdfplumber's table finder) become ``a | b | c`` rows and their characters are removed from the
  running text, so table cells are not read twice or glued into sentences;
- pages whose glyphs decode to garbage (fonts without a ToUnicode map: digits and Chinese punctuation come out
  as ``!"#$%&``, or ``(cid:12)``, or private-use characters) are detected and reported, never indexed;
- lines that repeat at the top or bottom of many pages (running headers, footers, ``file://`` print headers)
  and page numbers (``—1—``, ``- 3 -``, ``第 3 页``, ``3/20``) are dropped;
- compatibility characters are normalised with NFKC (Kangxi radicals ⼗⼀⼈ -> 十一人, full-width letters and
  digits -> ASCII), *except* full-width punctuation, which stays Chinese (，。；：？！（）) so sentence splitting
  and the text a user reads keep their Chinese form;
- wrapped lines are joined (no space between Chinese characters, one space between Latin words), paragraph
  breaks are kept (short line ending a sentence, or a heading / article marker starting the next line).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
import logging

# pdfminer warns once per glyph about malformed font descriptors that do not affect the text.
logging.getLogger("pdfminer").setLevel(logging.ERROR)

def _is_fullwidth_punct(cp: int) -> bool:
    return 0xFF01 <= cp <= 0xFF65 and not chr(cp).isalnum()


def _build_nfkc_table() -> dict[int, str]:
    # Precomputed once over the BMP: str.translate is ~50x faster than normalising text char by char.
    table = {}
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        norm = unicodedata.normalize("NFKC", ch)
        if norm != ch and not _is_fullwidth_punct(cp):
            table[cp] = norm
    return table


_NFKC = _build_nfkc_table()
# NFKC maps the Kangxi radicals (U+2F00..) but not the CJK Radicals Supplement (U+2E80..), which some PDF
# fonts also use for ordinary characters (⺠ for 民, ⻔ for 门). Unicode's EquivalentUnifiedIdeograph.txt is not
# shipped with Python, so the common ones are listed here.
_RADICAL_SUPPLEMENT = {  # checked against unicodedata.name(): e.g. U+2EA0 CJK RADICAL CIVILIAN -> 民
    "⺠": "民", "⻔": "门", "⻅": "见", "⻓": "长", "⻋": "车", "⻢": "马", "⻚": "页", "⻛": "风", "⻜": "飞", "⻝": "食",
    "⻈": "讠", "⻉": "贝", "⻄": "西", "⻆": "角", "⻰": "龙", "⻮": "齿", "⻤": "鬼", "⻥": "鱼", "⻦": "鸟", "⻨": "麦",
    "⻩": "黄", "⻬": "齐", "⻘": "青", "⻙": "韦", "⻣": "骨", "⻏": "阝", "⻖": "阝", "⺮": "竹", "⻌": "辶", "⺌": "小",
    "⺍": "小", "⺡": "氵", "⺣": "灬", "⺤": "爫", "⺦": "丬", "⺧": "牛", "⺨": "犭", "⺩": "王", "⺫": "罒", "⺬": "礻",
    "⺭": "礻", "⺼": "月", "⺾": "艹", "⺿": "艹", "⻀": "艹", "⻁": "虎", "⻂": "衤", "⻃": "覀", "⻗": "雨", "⻠": "饣",
    "⻡": "首", "⻧": "卤", "⻪": "黾", "⻑": "長", "⻊": "足", "⺅": "亻", "⺉": "刂", "⺗": "忄", "⺘": "扌", "⺙": "攵",
    "⺲": "罒", "⺻": "聿", "⻍": "辶", "⻎": "辶", "⻐": "钅",
}
_NFKC.update({ord(k): v for k, v in _RADICAL_SUPPLEMENT.items() if k != v})


def nfkc_keep_chinese_punct(text: str) -> str:
    return text.translate(_NFKC)


CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{CJK}]")
_CN_PUNCT = set("，。、；：？！“”‘’（）《》【】…—")
_SUSPECT_SYMBOLS = set("!\"#$%&'*+/<=>@\\^_`|~’")
_CID = re.compile(r"\(cid:\d+\)")

PAGE_NUMBER = re.compile(
    r"^\s*(?:[-–—－_]*\s*\d{1,4}\s*[-–—－_]*|第\s*\d{1,4}\s*页(?:\s*[/，,]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4}|page\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?|[ivxlcdm]{1,6})\s*$",
    re.IGNORECASE)
PRINT_HEADER = re.compile(r"^\s*(?:file|https?)://\S*", re.IGNORECASE)
# A line starting with one of these opens a new paragraph (headings, law articles, list items).
BLOCK_START = re.compile(
    r"^\s*(?:第[一二三四五六七八九十百千零〇\d]+(?:[编章节](?:\s|$)|条(?:之[一二三四五六七八九十]+)?(?:\s|$))|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）]"
    r"|\d+(?:\.\d+)*[、.．]\s*\S|[①-⑳]|目\s*录)")
# A short line starting with one of these is a heading and ends its paragraph (articles 第N条 are not headings).
HEADING_LINE = re.compile(
    r"^\s*(?:第[一二三四五六七八九十百千零〇\d]+[编章节]|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）]"
    r"|\d+(?:\.\d+)*[、.．]\s*\S|目\s*录)")
SECTION_HEADING = re.compile(r"^\s*第[一二三四五六七八九十百千零〇\d]+[编章节](?![的规中])\S")
SENTENCE_END = tuple("。！？；：…」』”)）") + (".", "!", "?", ";", ":")


@dataclass
class Page:
    number: int                 # 1-based
    text: str                   # cleaned; paragraphs separated by "\n"


@dataclass
class Document:
    path: str
    name: str
    pages: list[Page] = field(default_factory=list)
    page_count: int = 0
    problems: list[str] = field(default_factory=list)   # "file: page N: what" lines
    failed: bool = False                                 # the whole file was rejected


def garbage_reason(text: str) -> str | None:
    """Why a page's text looks like undecodable glyphs, or None. Thresholds tuned on the broken law PDFs
    in ../shared/data/pdfs/broken (ratios there: 4-10% suspect symbols, 0 Chinese punctuation) against
    the clean law PDFs and annual reports (< 1%)."""
    stripped = [c for c in text if not c.isspace()]
    if not stripped:
        return None
    n = len(stripped)
    cid = len(_CID.findall(text))
    if cid and cid * 6 / n > 0.05:
        return f"{cid} glyphs extracted as (cid:N): the font has no ToUnicode map"
    bad = sum(1 for c in stripped if 0xE000 <= ord(c) <= 0xF8FF or c == "\ufffd")
    if bad / n > 0.05:
        return f"{bad} of {n} characters are private-use or replacement characters"
    cjk = len(_CJK_RE.findall(text))
    if cjk >= 40:
        chars = list(text)
        suspect = 0
        for i, c in enumerate(chars):
            if c in _SUSPECT_SYMBOLS:
                near = chars[max(0, i - 1):i] + chars[i + 1:i + 2]
                if any(_CJK_RE.match(x) for x in near):
                    suspect += 1
        cn_punct = sum(1 for c in text if c in _CN_PUNCT or c in "，。；：？！（）")
        if suspect / cjk > 0.02 and cn_punct / cjk < 0.01:
            return (f"digits/punctuation decode as ASCII symbols ({suspect} symbols inside Chinese text, "
                    f"{cn_punct} Chinese punctuation marks): the font has no usable ToUnicode map")
    return None


def _table_rows(table) -> list[str]:
    rows = []
    for row in table.extract() or []:
        cells = [re.sub(r"\s+", " ", c or "").strip() for c in row]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _page_lines(page) -> tuple[list[str], list[str], bool]:
    """Raw text lines outside tables, table rows, and whether the page has images."""
    tables = []
    try:
        tables = page.find_tables()
    except Exception:  # pdfplumber's table finder can fail on odd vector art; the text is still usable
        tables = []
    if tables:
        boxes = [t.bbox for t in tables]

        def outside(obj):
            if obj.get("object_type") != "char":
                return True
            x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
            return not any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)

        text = page.filter(outside).extract_text() or ""
    else:
        text = page.extract_text() or ""
    table_lines = [r for t in tables for r in _table_rows(t)]
    return text.split("\n"), table_lines, bool(page.images)


def _check_file(path: Path) -> str | None:
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


def _root_cause(e: BaseException) -> BaseException:
    chain = list(_exception_chain(e))
    return chain[-1] if len(chain) > 1 else e


def _is_encryption_error(e: BaseException) -> bool:
    for x in _exception_chain(e):
        name, msg = type(x).__name__, str(x).lower()
        if name in ("PDFPasswordIncorrect", "PDFEncryptionError", "PDFEncryptionWarning") or \
                "password" in msg or "encrypt" in msg:
            return True
    return False


def _norm_repeat(line: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", line))


def read_pdf(path) -> Document:
    """Extract and clean every page of one PDF; problems are recorded, never raised."""
    import pdfplumber

    path = Path(path)
    doc = Document(path=str(path), name=path.stem)
    reason = _check_file(path)
    if reason:
        doc.problems.append(f"{path}: {reason}")
        doc.failed = True
        return doc
    raw: list[tuple[int, list[str], list[str]]] = []
    try:
        with pdfplumber.open(path) as pdf:
            doc.page_count = len(pdf.pages)
            for i, page in enumerate(pdf.pages, start=1):
                try:
                    lines, table_lines, has_images = _page_lines(page)
                except Exception as e:  # one broken page must not lose the file
                    doc.problems.append(f"{path}: page {i}: cannot extract text ({type(e).__name__}: {e})")
                    continue
                text = "\n".join(lines)
                if not text.strip() and not table_lines:
                    if has_images:
                        doc.problems.append(f"{path}: page {i}: no text layer (image-only page; OCR it first)")
                    continue
                why = garbage_reason(text)
                if why:
                    doc.problems.append(f"{path}: page {i}: skipped, {why}")
                    continue
                raw.append((i, lines, table_lines))
    except Exception as e:
        root = _root_cause(e)
        name = type(root).__name__
        msg = str(root) or name
        if _is_encryption_error(e):
            doc.problems.append(f"{path}: encrypted PDF (needs a password); decrypt it first")
        else:
            doc.problems.append(f"{path}: corrupt PDF ({name}: {msg})")
        doc.failed = True
        return doc
    if doc.page_count and not raw:
        doc.problems.append(f"{path}: no usable text on any of its {doc.page_count} pages")
        doc.failed = True
        return doc
    garbage_pages = sum(1 for p in doc.problems if "skipped," in p)
    if garbage_pages and garbage_pages >= len(raw):
        doc.problems.append(f"{path}: rejected: {garbage_pages} of {doc.page_count} pages decode to garbage; "
                            f"the rest cannot be trusted (re-export the PDF with embedded Unicode fonts or OCR it)")
        doc.failed = True
        doc.pages = []
        return doc
    doc.pages = _clean_pages(raw)
    return doc


def _clean_pages(raw: list[tuple[int, list[str], list[str]]]) -> list[Page]:
    # Running headers/footers: a line (digits ignored) among the first/last 2 lines of >= 40% of pages.
    edge_counts: Counter = Counter()
    for _, lines, _ in raw:
        ls = [ln for ln in lines if ln.strip()]
        for ln in set(ls[:2] + ls[-2:]):
            edge_counts[_norm_repeat(ln)] += 1
    min_repeat = max(3, int(0.4 * len(raw)))
    repeated = {k for k, c in edge_counts.items() if c >= min_repeat and k}
    pages = []
    for number, lines, table_lines in raw:
        ls = [ln for ln in lines if ln.strip()]
        kept = []
        for j, ln in enumerate(ls):
            edge = j < 2 or j >= len(ls) - 2
            if PRINT_HEADER.match(ln) or PAGE_NUMBER.match(nfkc_keep_chinese_punct(ln)):
                continue
            if edge and _norm_repeat(ln) in repeated:
                continue
            kept.append(nfkc_keep_chinese_punct(ln).strip())
        paragraphs = join_lines(kept)
        paragraphs += [nfkc_keep_chinese_punct(r) for r in table_lines]
        text = "\n".join(p for p in paragraphs if p)
        if text:
            pages.append(Page(number, text))
    return pages


def _joiner(prev: str, nxt: str) -> str:
    if not prev or not nxt:
        return ""
    a, b = prev[-1], nxt[0]
    if a.isascii() and a.isalnum() and b.isascii() and b.isalnum():
        return " "
    return ""


def join_lines(lines: list[str]) -> list[str]:
    """Join wrapped lines into paragraphs. A paragraph ends after a line that ends a sentence and is
    visibly shorter than the page's full lines, or before a heading/article/list marker."""
    # Spaces inside a line are kept (collapsed): in some PDFs they stand where punctuation glyphs were lost.
    lines = [re.sub(r"\s+", " ", ln).strip() for ln in lines if ln and ln.strip()]
    if not lines:
        return []
    full = sorted(len(ln) for ln in lines)[int(0.8 * (len(lines) - 1))]
    paragraphs: list[str] = []
    cur = ""
    for ln in lines:
        # 第X编/章/节 on a short line is a heading even without a space after the marker (annual reports print
        # "第七节优先股相关情况"); such a line is never the wrapped tail of a sentence.
        section_heading = (bool(SECTION_HEADING.match(ln)) and len(ln) <= 30
                           and not ln.endswith(("，", "、", ",", "。", "；")))
        if cur and (BLOCK_START.match(ln) or section_heading):
            paragraphs.append(cur)
            cur = ""
        cur = cur + _joiner(cur, ln) + ln if cur else ln
        is_heading = section_heading or (bool(HEADING_LINE.match(ln)) and len(ln) <= 30 and len(ln) < 0.6 * full
                                         and not ln.endswith(("，", "、", ",")))
        if is_heading or (ln.endswith(SENTENCE_END) and len(ln) < 0.9 * full):
            paragraphs.append(cur)
            cur = ""
    if cur:
        paragraphs.append(cur)
    return paragraphs
