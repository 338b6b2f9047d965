"""The ``prep:`` section, and what `kit prep` writes."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option
from .pdf import OCR_MODES


def _positive(v) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _not_negative(v) -> str | None:
    return None if v >= 0 else "must be 0 or more"


@dataclass
class PrepOptions:
    """The ``prep:`` section; field names equal its keys."""

    inputs: list[str] = option(default_factory=list, path=True, argument=True,
                               help="Documents: PDF, TXT, MD, DOCX or JSONL corpus files, or folders (searched "
                                    "recursively).")
    max_tokens: int = option(480, check=_positive,
                             help="Chunk budget in tokens of the target tokenizer (characters without one).")
    overlap: int = option(0, check=_not_negative,
                          help="Sentences repeated at the start of the next chunk when running text is cut.")
    tokenizer: str | None = option(None, help="Hub id or folder of the target model whose tokenizer counts tokens; "
                                   "`model` = the model being fine-tuned; null counts characters.")
    min_chars: int = option(10, check=_not_negative,
                            help="A section with less text than this joins the chunk before (or after) it "
                                 "instead of standing alone; no text is dropped.")
    ocr: str = option("auto", choices=OCR_MODES,
                      help="OCR (RapidOCR, CPU) for PDF pages: `auto` reads image-only pages, `force` reads "
                           "every page from its image (text layer ignored), `off` reports image-only pages.")
    exclude: list[str] = option(default_factory=lambda: ["README*", "SOURCE*", "LICENSE*"],
                                help="File-name patterns skipped when a folder is searched (a file named "
                                     "explicitly is always read).")
    workers: int = option(0, check=_not_negative, help="Parallel processes (0 = one per CPU core).")
    progress: bool = option(True, yaml=False, help="Show a progress bar.")


@dataclass
class PrepFiles:
    """What `kit prep` writes (`kit run` writes the workdir's corpus.jsonl)."""

    output: str = option(yaml=False, required=True, short="o", help="corpus.jsonl to write.")
