"""Which files prep reads, and the readers for inputs that are not PDFs.

``.txt`` / ``.md`` (UTF-8, or GB18030 as Chinese Windows saves it), ``.docx`` (python-docx: paragraphs, heading
styles and tables in document order) and ``.jsonl`` corpora (``{id|_id, title, text}``, e.g. a BEIR
``corpus.jsonl``; rows sharing a ``doc`` field form one document, otherwise each row is its own document named
by its title or id) become the same Document of pages and blocks as a PDF, so they flow through the same
structure, chunking, ids and fidelity check. Each JSONL row's id stays on its chunks as ``source_id``.
"""
from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

from ..io import KitError, ReadReport, iter_jsonl
from .document import Block, Document, Page, display
from .text import SENTENCE_END, TEXT_PAGE_NUMBER, full_line_length, join_lines

KINDS = {".pdf": "pdf", ".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".docx": "docx",
         ".jsonl": "jsonl"}
SEGMENT_CHARS = 3000      # text inputs are compared with their chunks in pieces of about this size


def utf8_name(path) -> bool:
    try:
        str(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _wanted(p: Path, exclude: list[str]) -> bool:
    name = p.name
    return (p.suffix.lower() in KINDS and not name.startswith((".", "~$"))
            and not any(fnmatch.fnmatch(name.lower(), pat.lower()) for pat in exclude))


def excluded(inputs, exclude) -> list[str]:
    """Names of supported files that the ``exclude`` patterns leave out of the folders in ``inputs``."""
    return sorted(display(x.name) for item in inputs if Path(item).is_dir() for x in Path(item).rglob("*")
                  if x.is_file() and _wanted(x, []) and not _wanted(x, list(exclude)))


def find_inputs(inputs, exclude=()) -> tuple[list[Path], list[str]]:
    """The files to read (folders searched recursively for supported types, ``exclude`` patterns skipped
    there; a file named explicitly is always read) and one line per file name that is not valid UTF-8."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted((x for x in p.rglob("*") if x.is_file() and _wanted(x, list(exclude))),
                          key=lambda x: os.fsencode(str(x)))
        elif p.exists():
            out.append(p)
        else:
            raise KitError(f"{display(p)}: no such file or folder")
    seen, unique, notes = set(), [], []
    for p in out:   # the same file named twice is read once
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
            if not utf8_name(p):
                notes.append(f"{display(p)}: file name is not valid UTF-8; read it as {display(p.name)!r}")
    return unique, notes


def _decode(data: bytes) -> str | None:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return None


def text_width(lines: list[str]) -> int:
    """The length of a full line of a text (as a PDF page's is measured); the longest line of a text of a
    few lines, whose 80th percentile can be a title's length."""
    body = [ln.strip() for ln in lines if ln.strip()]
    return full_line_length(body) if len(body) >= 5 else max((len(ln) for ln in body), default=0)


def text_blocks(lines: list[str], full: int | None = None) -> list[Block]:
    """Paragraphs of plain text. Text copied out of a PDF keeps its hard line breaks, even inside a word
    ("民\n事法律行为"), so lines are joined by the PDF path's rules (text.join_lines: no space between Chinese
    characters, a heading, article or list marker starts a paragraph). A break that cannot be a wrap stays: a
    blank line, a line that ends a sentence (whatever its length: in a typed text that break is the
    writer's), and a line ending mid-sentence that is clearly shorter than the full lines (a title such as
    "公司简介" above its text). ``full``: the full line length, when ``lines`` are part of a longer text."""
    full = full or text_width(lines)
    blocks, run = [], []
    for ln in lines + [""]:
        ln = ln.strip()
        if ln:
            run.append(ln)
        if run and (not ln or ln.endswith(SENTENCE_END) or len(ln) < 0.6 * full):
            blocks += [Block(p) for p in join_lines(run, full)]
            run = []
    return blocks


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def row_blocks(lines: list[str]) -> list[Block]:
    """Paragraphs of one JSONL row's text. A row comes from the user's own records (a database, a BEIR set), whose
    line breaks are the writer's: one paragraph per line, unless the whole row is hard-wrapped (most lines end
    mid-sentence), then joined like a PDF page's. Kept apart from :func:`text_blocks` (files copied out of PDFs)
    so that a JSONL corpus chunks the same from one kit version to the next (its chunk ids stay)."""
    body = [ln.strip() for ln in lines if ln.strip()]
    wrapped = len(body) >= 4 and sum(1 for ln in body if not ln.endswith(SENTENCE_END)) > 0.6 * len(body)
    if not wrapped:
        return [Block(ln) for ln in body]
    blocks, run = [], []
    for ln in lines + [""]:
        if ln.strip():
            run.append(ln)
        elif run:
            blocks += [Block(p) for p in join_lines(run)]
            run = []
    return blocks


def md_blocks(lines: list[str]) -> tuple[list[Block], str]:
    """Markdown: ``#`` headings keep their level, ``| a | b |`` lines are table rows; the rest is text.
    Returns the blocks and the source text they are compared with (markup removed)."""
    blocks: list[Block] = []
    ref: list[str] = []
    run: list[str] = []
    full = text_width([ln for ln in lines                # the full line of its running text
                       if not (_MD_HEADING.match(ln) or _MD_RULE.match(ln) or ln.strip().startswith("|"))])
    for ln in lines + [""]:
        m = _MD_HEADING.match(ln)
        row = ln.strip().startswith("|") and ln.strip().endswith("|")
        if m or row or _MD_RULE.match(ln) or not ln.strip():
            blocks += text_blocks(run, full)
            run = []
        if m:
            blocks.append(Block(m.group(2), "heading", len(m.group(1))))
            ref.append(m.group(2))
        elif row and not _MD_RULE.match(ln):
            cells = [c.strip() for c in ln.strip().strip("|").split("|")]
            blocks.append(Block(" | ".join(cells), "row"))
            ref.append(" ".join(cells))
        elif ln.strip() and not _MD_RULE.match(ln):
            run.append(ln)
            ref.append(ln)
    return blocks, "\n".join(ref)


def drop_page_numbers(lines: list[str]) -> tuple[list[str], list[str]]:
    """(the lines without the page numbers a PDF copy carries, those page numbers). A page number's line goes with
    the blank lines around it, so the text on either side of a page break joins by the usual rules (a word or a
    sentence cut by the break is whole again; a paragraph that ended before it still ends)."""
    kept, dropped = [], []
    for ln in lines:
        if TEXT_PAGE_NUMBER.match(ln):
            dropped.append(ln.strip())
            while kept and kept[-1] is not None and not kept[-1].strip():
                kept.pop()
            kept.append(None)   # marks the break: blank lines right after it go too
        elif ln.strip() or (kept and kept[-1] is not None):
            kept.append(ln)
    return [ln for ln in kept if ln is not None], dropped


def _segments(doc: Document, blocks: list[Block], refs: list[str], dropped: list[str] = ()) -> Document:
    """Blocks grouped into fidelity segments of about SEGMENT_CHARS (page 1 throughout: no pages); ``dropped``:
    what was left out on purpose (page numbers), counted as such by the fidelity check."""
    seg, size, page = 1, 0, Page(1, [], seg=1)
    for b, r in zip(blocks, refs):
        if size >= SEGMENT_CHARS:
            doc.pages.append(page)
            seg, size = seg + 1, 0
            page = Page(1, [], seg=seg)
        page.blocks.append(b)
        page.ref += r + "\n"
        size += len(r)
    if dropped:
        page.ref += "\n".join(dropped) + "\n"
        page.dropped_bottom = "\n".join(dropped)
    doc.pages.append(page)
    if not any(p.blocks for p in doc.pages):
        return doc.fail("no text")
    return doc


def read_text(path: Path, kind: str) -> Document:
    doc = Document(path=display(path), name=display(path.stem), kind=kind)
    try:
        text = _decode(path.read_bytes())
    except OSError as e:
        return doc.fail(f"cannot read: {e.strerror}")
    if text is None:
        return doc.fail("not UTF-8 (or GB18030) text; save it as UTF-8")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").split("\n")
    if kind == "md":
        blocks, _ = md_blocks(lines)
        return _segments(doc, blocks, [b.text.replace(" | ", " ") for b in blocks])
    lines, dropped = drop_page_numbers(lines)
    blocks = text_blocks(lines)
    return _segments(doc, blocks, [b.text for b in blocks], dropped)


def read_docx(path: Path) -> Document:
    """Paragraphs (Heading N / 标题 N / Title styles as headings) and tables, in document order."""
    import docx
    from docx.table import Table

    doc = Document(path=display(path), name=display(path.stem), kind="docx")
    try:
        word = docx.Document(str(path))
    except Exception as e:  # python-docx raises zipfile/KeyError/ValueError flavours for non-docx files
        return doc.fail(f"not a Word .docx file ({type(e).__name__}: {e})")
    blocks: list[Block] = []
    for item in word.iter_inner_content():
        if isinstance(item, Table):
            rows = _docx_rows(item)
            blocks += [Block(r, "row") for r in rows]
            doc.tables += 1 if len(rows) >= 2 else 0
            continue
        text = item.text.strip()
        if not text:
            continue
        level = _heading_level(item.style.name if item.style is not None else "")
        blocks.append(Block(text, "heading", level) if level else Block(text))
    return _segments(doc, blocks, [b.text.replace(" | ", " ") for b in blocks])


def _heading_level(style: str) -> int:
    m = re.match(r"^(?:heading|标题)\s*(\d)$", style.strip(), re.I)
    return int(m.group(1)) if m else (1 if style.strip().lower() in ("title", "标题") else 0)


def _docx_rows(table) -> list[str]:
    rows = []
    for row in table.rows:
        cells, last = [], None
        for cell in row.cells:   # a merged cell is returned once per grid column it spans
            if cell._tc is last:
                continue
            last = cell._tc
            cells.append(" ".join(p.text.strip() for p in cell.paragraphs if p.text.strip()))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _row_check(o: dict) -> str | None:
    rid = o.get("id", o.get("_id"))
    if not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid) == "":
        return "row has no 'id' (or '_id')"
    if not isinstance(o.get("text"), str) or not o["text"].strip():
        return "row has no 'text'"
    for k in ("title", "doc"):
        if o.get(k) is not None and not isinstance(o[k], (str, int)):
            return f"row's '{k}' must be a text"
    return None


def read_jsonl(path: Path) -> list[Document]:
    """A corpus in JSONL: one document per ``doc`` value (rows in file order, each row a page), or per row."""
    where = display(path)
    report = ReadReport()
    docs: dict[str, Document] = {}
    order: list[Document] = []
    try:
        rows = list(iter_jsonl(path, report, _row_check))
    except KitError as e:
        return [Document(path=where, name=display(path.stem), kind="jsonl").fail(str(e).split(": ", 1)[-1])]
    for n, row in rows:
        rid = str(row.get("id", row.get("_id")))
        title = str(row["title"]).strip() if row.get("title") not in (None, "") else None
        group = str(row["doc"]) if row.get("doc") not in (None, "") else None
        name = group or title or rid
        doc = docs.get(group) if group else None
        if doc is None:
            doc = Document(path=where, name=name, kind="jsonl")
            order.append(doc)
            if group:
                docs[group] = doc
        number = len(doc.pages) + 1
        blocks = row_blocks(row["text"].replace("\r\n", "\n").split("\n"))
        doc.pages.append(Page(number, blocks, ref=row["text"], source_id=rid, title=title or ""))
    problems = [str(e) for e in report.errors]
    if not order:
        failed = Document(path=where, name=display(path.stem), kind="jsonl").fail("no usable row")
        failed.problems = problems + failed.problems
        return [failed]
    order[0].problems = problems
    return order
