"""The prep stage: PDF files and folders -> corpus.jsonl, one process per file in parallel."""
from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..io import KitError, write_jsonl
from .chunk import ChunkOptions, chunk_document, make_token_counter
from .pdf import read_pdf


@dataclass
class PrepOptions:
    max_tokens: int = 480
    overlap: int = 0
    tokenizer: str | None = None     # hub id or folder of the target model; None counts characters
    min_chars: int = 10
    workers: int = 0                 # 0 = one per CPU core
    progress: bool = True


@dataclass
class PrepResult:
    files: int = 0
    files_failed: int = 0
    pages: int = 0
    pages_skipped: int = 0
    chunks: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.files} files, {self.pages} pages, {self.chunks} chunks; "
                f"{self.files_failed} files failed, {self.pages_skipped} pages skipped")


def find_pdfs(inputs) -> list[Path]:
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(x for x in p.rglob("*") if x.is_file() and x.suffix.lower() == ".pdf")
        elif p.exists():
            out.append(p)
        else:
            raise KitError(f"{p}: no such file or folder")
    # the same file named twice is read once
    seen, unique = set(), []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _count_pages(path: Path) -> int:
    """Page count for the progress bar only. pypdfium2 (installed with pdfplumber) reads the page tree in
    ~0.1 ms per page, where pdfplumber would parse every page object; bad files count 0 here and are
    reported by read_pdf."""
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(str(path))
    except Exception:
        return 0
    try:
        return len(pdf)
    finally:
        pdf.close()


# Token counters per tokenizer name, built once per process (a worker handles many files). Keyed by name, not
# one global: a process (or a forked worker inheriting its parent's memory) may prep with several tokenizers.
_counters: dict = {}


def _work(args):
    path, options = args
    counter = _counters.get(options.tokenizer)
    if counter is None:
        counter = _counters[options.tokenizer] = make_token_counter(options.tokenizer)
    doc = read_pdf(path)
    chunks = [] if doc.failed else chunk_document(
        doc, ChunkOptions(options.max_tokens, options.overlap, options.min_chars), counter)
    return (str(path), doc.page_count, len(doc.pages), doc.failed, doc.problems, [c.to_json() for c in chunks])


def prep(inputs, output, options: PrepOptions | None = None, echo=None) -> PrepResult:
    """Read every PDF under ``inputs`` and write their chunks to ``output`` (atomically, ordered by file)."""
    from tqdm.auto import tqdm

    options = options or PrepOptions()
    echo = echo or (lambda m: print(m, file=sys.stderr))
    files = find_pdfs(inputs)
    if not files:
        raise KitError(f"no PDF found in {', '.join(map(str, inputs))}")
    if options.tokenizer:
        make_token_counter(options.tokenizer)  # fail early, in this process, on a bad tokenizer name
    workers = options.workers or min(len(files), os.cpu_count() or 1)
    result = PrepResult(files=len(files))
    by_file: dict[str, list[dict]] = {}
    # Largest files first: work is handed out per file, and a big report started last would leave the other
    # workers idle at the end. The output order stays the input order (rows are reassembled by file below).
    jobs = [(p, options) for p in sorted(files, key=lambda f: -f.stat().st_size)]
    # Progress in pages (what the time goes into); work is handed out per file, so the bar moves by whole files.
    bar = tqdm(total=sum(_count_pages(p) for p in files), desc="prep", unit="page",
               disable=not options.progress or None)

    def done(outcome):
        _collect(outcome, result, by_file, echo)
        bar.update(outcome[1])
        bar.set_postfix(files=f"{len(by_file)}/{len(files)}", failed=result.files_failed, refresh=False)

    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for outcome in pool.map(_work, jobs):
                done(outcome)
    else:
        for job in jobs:
            done(_work(job))
    bar.close()
    rows = [r for p in files for r in by_file.get(str(p), [])]
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        # two files with the same name and text: make their ids distinct but still stable
        seen: dict[str, int] = {}
        for r in rows:
            n = seen.get(r["id"], 0)
            seen[r["id"]] = n + 1
            if n:
                r["id"] = f"{r['id']}-{n}"
    result.chunks = len(rows)
    if rows:
        write_jsonl(output, rows)
    return result


def _collect(outcome, result: PrepResult, by_file: dict, echo) -> None:
    path, page_count, pages_ok, failed, problems, rows = outcome
    for p in problems:
        echo(p)
    result.problems += problems
    result.pages += page_count
    result.pages_skipped += max(0, page_count - pages_ok) if not failed else page_count
    if failed:
        result.files_failed += 1
    by_file[path] = rows
