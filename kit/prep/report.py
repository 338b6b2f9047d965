"""What prep tells: per-file reports from the workers, the run's summary, warnings and statistics."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .fidelity import Fidelity


@dataclass
class FileReport:
    """One input file's outcome (built in a worker, pickled back)."""
    path: str
    kind: str = ""
    documents: int = 0
    page_count: int = 0
    pages_skipped: int = 0
    failed: bool = False
    problems: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    chars: int = 0               # source characters compared (whitespace and dropped lines excluded)
    found: int = 0               # of those, found in the chunks in order
    dropped: int = 0             # headers, footers, page numbers dropped on purpose
    ocr_pages: int = 0
    ocr_chars: int = 0
    text_chars: int = 0          # characters of the documents' cleaned text (OCR'd or not)
    tables: int = 0
    low_pages: list = field(default_factory=list)

    def add_document(self, doc) -> None:
        self.kind = doc.kind
        self.documents += 1
        self.page_count += doc.page_count      # PDF pages (text inputs have none)
        self.pages_skipped += doc.page_count if doc.failed else doc.skipped
        self.failed = self.failed or doc.failed
        self.problems += doc.problems
        self.ocr_pages += doc.ocr_pages
        self.tables += doc.tables

    def add_chunks(self, chunks, fid: Fidelity) -> None:
        self.rows += [c.to_json() for c in chunks]
        self.chars += fid.chars
        self.found += fid.found
        self.dropped += fid.dropped
        self.ocr_chars += fid.ocr_chars
        self.text_chars += fid.text_chars
        self.low_pages += list(fid.lost_pages)

    @property
    def fidelity(self) -> float | None:
        return self.found / self.chars if self.chars else None

    def stats(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("rows", "problems")}
        d.update(chunks=len(self.rows), fidelity=None if self.fidelity is None else round(self.fidelity, 5),
                 problems=len(self.problems))
        return d


@dataclass
class PrepResult:
    files: int = 0
    files_failed: int = 0
    pages: int = 0
    pages_skipped: int = 0
    chunks: int = 0
    ocr_pages: int = 0
    ocr_chars: int = 0
    text_chars: int = 0
    dropped_chars: int = 0
    fidelity: dict = field(default_factory=dict)     # file -> share of its text found in the chunks, in order
    problems: list[str] = field(default_factory=list)
    stats_path: str | None = None
    excluded: list[str] = field(default_factory=list)  # files in the folders left out by prep.exclude

    def __post_init__(self):
        # per-file reports (with their chunk rows) are kept off the dataclass fields, so a summary made with
        # dataclasses.asdict (the run manifest) stays small
        self.reports: list[FileReport] = []

    def collect(self, report: FileReport, echo) -> None:
        for p in report.problems:
            echo(p)
        self.problems += report.problems
        self.files += 1
        self.files_failed += int(report.failed)
        self.pages += report.page_count
        self.pages_skipped += report.pages_skipped
        self.ocr_pages += report.ocr_pages
        self.ocr_chars += report.ocr_chars
        self.text_chars += report.text_chars
        self.dropped_chars += report.dropped
        if report.fidelity is not None:
            self.fidelity[report.path] = round(report.fidelity, 5)
        self.reports.append(report)

    @property
    def ocr_share(self) -> float:
        return self.ocr_chars / self.text_chars if self.text_chars else 0.0

    def summary(self) -> str:
        lines = [f"{self.files} files, {self.pages} pages, {self.chunks} chunks; "
                 f"{self.files_failed} files failed, {self.pages_skipped} pages skipped"]
        if self.fidelity:
            worst = min(self.fidelity, key=self.fidelity.get)
            below = sum(1 for v in self.fidelity.values() if v < 0.99)
            lines.append(f"fidelity (text layer found in the chunks, in order): lowest {self.fidelity[worst]:.2%} "
                         f"({worst}); {below} of {len(self.fidelity)} files below 99%; "
                         f"{self.dropped_chars} header/footer/page-number characters dropped on purpose")
        lines.append(f"OCR: {self.ocr_pages} pages, {self.ocr_share:.1%} of the text")
        if self.excluded:
            names = ", ".join(self.excluded[:5]) + (f" and {len(self.excluded) - 5} more" if len(self.excluded) > 5
                                                    else "")
            lines.append(f"left out by exclude patterns: {len(self.excluded)} files ({names})")
        return "\n".join(lines)

    def warn(self, echo, below: float) -> None:
        """A loud line per file whose chunks miss more than 1 - ``below`` of its text."""
        for r in sorted(self.reports, key=lambda r: r.path):
            if r.fidelity is not None and r.fidelity < below:
                pages = ", ".join(f"{p} ({s:.0%})" for p, s in sorted(r.low_pages, key=lambda x: x[1])[:5])
                echo(f"WARNING: {r.path}: only {r.fidelity:.2%} of its text reached the chunks "
                     f"({r.chars - r.found} of {r.chars} characters missing); worst pages: {pages}")

    def stats(self) -> dict:
        return {"files": [r.stats() for r in self.reports], "totals": {
            "files": self.files, "files_failed": self.files_failed, "pages": self.pages,
            "pages_skipped": self.pages_skipped, "chunks": self.chunks, "ocr_pages": self.ocr_pages,
            "excluded": self.excluded,
            "ocr_share": round(self.ocr_share, 5), "dropped_chars": self.dropped_chars,
            "fidelity_min": min(self.fidelity.values()) if self.fidelity else None}}
