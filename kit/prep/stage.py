"""The prep stage: document files and folders -> corpus.jsonl (+ corpus.stats.json), one process per file.

Per file (in a worker): read (pdf.py / inputs.py) -> chunk (chunk.py) -> measure fidelity (fidelity.py).
Here: the options, the worker pool (workers die with the parent, even on SIGKILL; SIGTERM and Ctrl-C stop
them at once), the summary with one line per bad file, and the atomic output. A run that produces no chunk
removes the output of an earlier run instead of leaving it for later stages to read.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..io import KitError, write_json, write_jsonl
from .chunk import chunk_document, make_token_counter
from .fidelity import WARN_BELOW, measure
from .document import Document, display
from .inputs import KINDS, excluded, find_inputs, read_docx, read_jsonl, read_text
from .options import PrepFiles, PrepOptions  # noqa: F401 (re-exported)
from .pdf import read_pdf
from .report import FileReport, PrepResult
from ..logs import note


def stats_path(output) -> Path:
    """The statistics written beside the corpus: ``corpus.jsonl`` -> ``corpus.stats.json``."""
    output = Path(output)
    return output.with_name(output.stem + ".stats.json")


def read_documents(path: Path, ocr: str):
    kind = KINDS.get(path.suffix.lower())
    if kind is None and not _starts_like_pdf(path):   # a file named explicitly with another suffix
        return [Document(path=display(path), name=display(path.stem)).fail(
            f"not a document prep reads ({path.suffix or 'no suffix'}): PDF, TXT, MD, DOCX or JSONL")]
    if kind in (None, "pdf"):
        return [read_pdf(path, ocr)]
    if kind == "docx":
        return [read_docx(path)]
    if kind == "jsonl":
        return read_jsonl(path)
    return [read_text(path, kind)]


def _starts_like_pdf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return b"%PDF-" in f.read(1024)
    except OSError:
        return True   # read_pdf names the problem


# Token counters per tokenizer name, built once per process (a worker handles many files). Keyed by name, not
# one global: a process (or a forked worker inheriting its parent's memory) may prep with several tokenizers.
_counters: dict = {}


def work(args) -> FileReport:
    """One input file -> its chunk rows and its report (runs in a worker process)."""
    path, options = args
    counter = _counters.get(options.tokenizer)
    if counter is None:
        counter = _counters[options.tokenizer] = make_token_counter(options.tokenizer)
    report = FileReport(display(path))
    for doc in read_documents(Path(path), options.ocr):
        report.add_document(doc)
        if doc.failed:
            continue
        chunks = chunk_document(doc, options, counter)
        report.add_chunks(chunks, measure(doc, chunks))
    return report


def _count_pages(path: Path) -> int:
    """Page count for the progress bar only. pypdfium2 (installed with pdfplumber) reads the page tree in
    ~0.1 ms per page; bad files and other inputs count 0 here."""
    import pypdfium2

    if KINDS.get(path.suffix.lower(), "pdf") != "pdf":
        return 0
    try:
        pdf = pypdfium2.PdfDocument(path.read_bytes())
    except Exception:
        return 0
    try:
        return len(pdf)
    finally:
        pdf.close()


def _init_worker(threads: int) -> None:
    """Pool worker: dies with the parent (even a SIGKILLed one), leaves Ctrl-C to the parent, and shares the
    cores with the other workers when it runs OCR."""
    from ..procs import die_with_parent
    from . import ocr

    die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ocr.configure(threads)


@contextlib.contextmanager
def _sigterm_interrupts():
    """While the pool runs, SIGTERM stops prep like Ctrl-C (the pool is terminated on the way out)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _stop(pool) -> None:
    """Kill the pool's workers now (Ctrl-C, SIGTERM, an error): the standard library has no public way to
    before Python 3.14 (``terminate_workers``), hence its ``_processes``."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _pool_pass(jobs: list, workers: int, done) -> list:
    """Run ``jobs`` in a pool until all are done or a worker dies (a reader crashed on some file); returns
    the jobs not done, in their order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker,
                               initargs=(threads,))
    left = dict(enumerate(jobs))
    try:
        with _sigterm_interrupts():
            futures = {pool.submit(work, job): i for i, job in left.items()}
            for fut in as_completed(futures):
                done(fut.result())
                del left[futures[fut]]
    except BrokenProcessPool:
        pass
    except BaseException:
        _stop(pool)
        raise
    _stop(pool)
    return [left[i] for i in sorted(left)]


def _run(jobs, workers: int, done) -> None:
    """Every job once; a file whose reader crashes its worker process is one failed file, the rest goes on."""
    if workers <= 1:
        for job in jobs:
            done(work(job))
        return
    pending = list(jobs)
    while pending:
        pending = _pool_pass(pending, workers, done)
        if pending and workers == 1:     # one at a time: the first one left is the one that crashed
            path = display(pending.pop(0)[0])
            done(FileReport(path, failed=True, problems=[f"{path}: the reader crashed on this file (a bug in "
                                                        f"pdfminer/pdfium or a hostile PDF); skipped"]))
        workers = 1   # after a crash, find the culprit one file at a time


def _remove_stale(output) -> None:
    for p in (Path(output), stats_path(output)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def prep(inputs, output, options: PrepOptions | None = None, echo=None) -> PrepResult:
    """Read every document under ``inputs`` and write their chunks to ``output`` (atomically, ordered by
    file) and the statistics beside it; returns the counts, per-file fidelity and problems."""
    from tqdm.auto import tqdm

    options = options or PrepOptions()
    echo = echo or (note)
    try:
        files, notes = find_inputs(inputs, options.exclude)
    except KitError:
        _remove_stale(output)
        raise
    if not files:
        _remove_stale(output)
        raise KitError(f"no document (PDF, TXT, MD, DOCX, JSONL) found in {', '.join(map(display, inputs))}")
    for n in notes:
        echo(n)
    if options.tokenizer:
        make_token_counter(options.tokenizer)  # fail early, in this process, on a bad tokenizer name
    workers = min(options.workers or os.cpu_count() or 1, len(files))
    result = PrepResult(problems=list(notes), excluded=excluded(inputs, options.exclude))
    by_file: dict[str, FileReport] = {}
    # Largest files first: work is handed out per file, and a big report started last would leave the other
    # workers idle at the end. The output order stays the input order (rows are reassembled by file below).
    jobs = [(p, options) for p in sorted(files, key=lambda f: -f.stat().st_size)]
    bar = tqdm(total=sum(_count_pages(p) for p in files), desc="prep", unit="page",
               disable=not options.progress or None)

    def done(report: FileReport):
        result.collect(report, echo)
        by_file[report.path] = report
        bar.update(report.page_count)
        bar.set_postfix(files=f"{len(by_file)}/{len(files)}", failed=result.files_failed, refresh=False)

    try:
        _run(jobs, workers, done)
    finally:
        bar.close()
    rows = [r for p in files for r in by_file[display(p)].rows]
    dedupe_ids(rows)
    result.chunks = len(rows)
    result.warn(echo, WARN_BELOW)
    if not rows:
        _remove_stale(output)
        return result
    write_jsonl(output, rows)
    result.stats_path = str(stats_path(output))
    write_json(result.stats_path, result.stats())
    return result


def dedupe_ids(rows: list[dict]) -> None:
    """Two files with the same name and text: make their ids distinct but still stable."""
    seen: dict[str, int] = {}
    for r in rows:
        n = seen.get(r["id"], 0)
        seen[r["id"]] = n + 1
        if n:
            r["id"] = f"{r['id']}-{n}"
