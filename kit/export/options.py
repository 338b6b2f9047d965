"""The ``export:`` section, and what `kit export` reads and writes."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option


def _non_negative(v) -> str | None:
    return None if v is None or v >= 0 else "must be >= 0"


@dataclass
class ExportOptions:
    """`kit export`'s settings."""

    negatives: int | None = option(None, check=_non_negative,
                                   help="negative_1..negative_N columns per training row; default: the most that 90% "
                                        "of the rows have (rows with fewer are dropped and counted).")
    model: str | None = option(None, help="Model (hub id or folder) whose query/passage instructions are written to "
                               "prompts.json, for the trainer's and the evaluator's prompt arguments.")
    datasets_folder: bool = option(True, help="Also write the training rows as a Hugging Face datasets folder.")


@dataclass
class ExportFiles:
    """What `kit export` reads and writes."""

    output: str = option(yaml=False, required=True, short="o", help="Folder: sentence-transformers/, beir/ and "
                         "ir-evaluator/ are written here.")
    train: str | None = option(None, yaml=False, help="Training rows (split's train.jsonl or mine's train_hn.jsonl).")
    eval: str | None = option(None, yaml=False, help="Eval folder (FlagEmbedding custom-eval or BEIR layout).")
