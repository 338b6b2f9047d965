"""Text rules shared by every reader: normalisation, what a heading / article / page number looks like,
garbage-glyph detection and joining wrapped lines into paragraphs.

- compatibility characters are normalised with NFKC (Kangxi radicals ⼗⼀⼈ -> 十一人, full-width letters and
  digits -> ASCII), *except* full-width punctuation, which stays Chinese (，。；：？！（）) so sentence splitting
  and the text a user reads keep their Chinese form;
- wrapped lines are joined (no space between Chinese characters, one space between Latin words), paragraph
  breaks are kept (short line ending a sentence, or a heading / article marker starting the next line).
"""
from __future__ import annotations

import re
import unicodedata


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


_WS = re.compile(r"\s+")


def comparable(text: str) -> str:
    """Text as the fidelity check compares it: normalised like prep's output, without any whitespace."""
    return _WS.sub("", nfkc_keep_chinese_punct(text))


CN_NUM = "一二三四五六七八九十百千零〇两"
CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{CJK}]")
_CN_PUNCT = set("，。、；：？！“”‘’（）《》【】…—")
_SUSPECT_SYMBOLS = set("!\"#$%&'*+/<=>@\\^_`|~’")
_CID = re.compile(r"\(cid:\d+\)")

PAGE_NUMBER = re.compile(
    r"^\s*(?:[-–—－_]*\s*\d{1,4}\s*[-–—－_]*|第\s*\d{1,4}\s*页(?:\s*[/，,]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4}|page\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?|[ivxlcdm]{1,6})\s*$",
    re.IGNORECASE)
# A page number as it lands in text copied out of a PDF (—6—, - 6 -, 第 6 页, 6/20): a line of its own, wherever
# the page broke, often inside a sentence or a word ("…第三十九条和第" / "—6—" / "四十条…"). Narrower than
# PAGE_NUMBER, which only looks at a page's edge lines: a bare number or a roman numeral on a line of its own
# is too often the text itself (a table column, a list) when it can be anywhere in a file.
TEXT_PAGE_NUMBER = re.compile(r"^\s*(?:[-–—－_]+\s*\d{1,4}\s*[-–—－_]+|第\s*\d{1,4}\s*页(?:\s*[/，,]?\s*共\s*\d{1,4}\s*页)?"
                              r"|\d{1,4}\s*/\s*\d{1,4})\s*$")
PRINT_HEADER = re.compile(r"^\s*(?:file|https?)://\S*", re.IGNORECASE)
# A line starting with one of these opens a new paragraph (headings, law articles, list items).
BLOCK_START = re.compile(
    r"^\s*(?:第[一二三四五六七八九十百千零〇\d]+(?:[编章节](?:\s|$)|条(?:之[一二三四五六七八九十]+)?(?:\s|$))"
    r"|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）]|\d+(?:\.\d+)*[、.．]\s*\S|[①-⑳]|目\s*录)")
# A short line starting with one of these is a heading and ends its paragraph (articles 第N条 are not headings).
HEADING_LINE = re.compile(
    r"^\s*(?:第[一二三四五六七八九十百千零〇\d]+[编章节]|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）]"
    r"|\d+(?:\.\d+)*[、.．]\s*\S|目\s*录)")
SECTION_HEADING = re.compile(r"^\s*第[一二三四五六七八九十百千零〇\d]+[编章节](?![的规中])\S")
# An article marker glued to its text: OCR (RapidOCR) drops the ideographic space ("第一条为了…"). The same
# shape is also a cross-reference wrapped to a line start ("…没有本法" / "第三十九条和第四十条…"), so it opens an
# article only after a sentence end (see opens_glued_article) and never when the next character reads as a
# reference (第三条的/规定/所称/中/第二款/和/及/或/至/、).
GLUED_ARTICLE = re.compile(r"^(第[一二三四五六七八九十百千零〇两\d]+条(?:之[一二三四五六七八九十]+)?)"
                           r"(?=[^\s　的规所中第和及与或至到、，,；;。：:款项之])")
# A table-of-contents line: dot leaders (or a long run of spaces) then a page number.
TOC_LINE = re.compile(r"(?:[.．·…‥]{3,}|…{2,}|\s{4,})\s*\d{1,4}\s*$")
SENTENCE_END = tuple("。！？；：…」』”)）") + (".", "!", "?", ";", ":")


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
        suspect = 0
        for i, c in enumerate(text):
            if c in _SUSPECT_SYMBOLS and any(_CJK_RE.match(x) for x in text[max(0, i - 1):i + 2] if x != c):
                suspect += 1
        cn_punct = sum(1 for c in text if c in _CN_PUNCT or c in "，。；：？！（）")
        if suspect / cjk > 0.02 and cn_punct / cjk < 0.01:
            return (f"digits/punctuation decode as ASCII symbols ({suspect} symbols inside Chinese text, "
                    f"{cn_punct} Chinese punctuation marks): the font has no usable ToUnicode map")
    return None


def joiner(prev: str, nxt: str) -> str:
    """What goes between two wrapped pieces: one space between Latin letters/digits, nothing otherwise."""
    if not prev or not nxt:
        return ""
    a, b = prev[-1], nxt[0]
    if a.isascii() and a.isalnum() and b.isascii() and b.isalnum():
        return " "
    return ""


def join_wrapped(pieces) -> str:
    out = ""
    for p in pieces:
        p = p.strip()
        out = out + joiner(out, p) + p if out else p
    return out


def is_section_heading(line: str) -> bool:
    # 第X编/章/节 on a short line is a heading even without a space after the marker (annual reports print
    # "第七节优先股相关情况"); such a line is never the wrapped tail of a sentence.
    return (bool(SECTION_HEADING.match(line)) and len(line) <= 30 and not TOC_LINE.search(line)
            and not line.endswith(("，", "、", ",", "。", "；")))


def opens_glued_article(line: str, before: str) -> bool:
    """A line starting with a glued article marker opens an article when the text before it (the paragraph
    so far, or the previous paragraph) is empty or ends a sentence; after a line that breaks off mid-sentence
    it is a wrapped cross-reference. The law PDFs' text layers have no glued marker after a sentence end (their
    three glued markers are wrapped cross-references), so their articles are found as before."""
    return bool(GLUED_ARTICLE.match(line)) and (not before or before.endswith(SENTENCE_END))


def full_line_length(lines: list[str]) -> int:
    """Length of a full line on the page (80th percentile), to tell a paragraph's short last line."""
    lens = sorted(len(ln.strip()) for ln in lines if ln.strip())
    return lens[int(0.8 * (len(lens) - 1))] if lens else 0


def join_lines(lines: list[str], full: int | None = None) -> list[str]:
    """Join wrapped lines into paragraphs. A paragraph ends after a line that ends a sentence and is
    visibly shorter than the page's full lines, or before a heading/article/list marker."""
    # Spaces inside a line are kept (collapsed): in some PDFs they stand where punctuation glyphs were lost.
    lines = [_WS.sub(" ", ln).strip() for ln in lines if ln and ln.strip()]
    if not lines:
        return []
    full = full or full_line_length(lines)
    paragraphs: list[str] = []
    cur = ""
    for ln in lines:
        section_heading = is_section_heading(ln)
        toc = bool(TOC_LINE.search(ln))
        if cur and (BLOCK_START.match(ln) or section_heading or toc or opens_glued_article(ln, cur)):
            paragraphs.append(cur)
            cur = ""
        cur = cur + joiner(cur, ln) + ln if cur else ln
        is_heading = section_heading or (bool(HEADING_LINE.match(ln)) and len(ln) <= 30 and len(ln) < 0.6 * full
                                         and not ln.endswith(("，", "、", ",")))
        if is_heading or toc or (ln.endswith(SENTENCE_END) and len(ln) < 0.9 * full):
            paragraphs.append(cur)
            cur = ""
    if cur:
        paragraphs.append(cur)
    return paragraphs
