"""README's config reference, generated from the stages' options dataclasses: ``python -m kit.docgen README.md``
rewrites the block between the markers (a test fails when README and code differ)."""
from __future__ import annotations

import sys
from pathlib import Path

from .options import config_table
from .pipeline import TOP_LEVEL
from .stages import SECTIONS

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def table() -> str:
    from .drift.options import DriftOptions   # read by `kit drift CONFIG`, not a stage of `kit run`

    top = ["| key | what it does |", "|---|---|"] + [f"| `{k}` | {v} |" for k, v in TOP_LEVEL.items()]
    return ("Top level:\n\n" + "\n".join(top) + "\n\nSections (one per stage):\n\n" + config_table(SECTIONS)
            + "\n\nRead by `kit drift CONFIG.yaml` (not a stage of `kit run`):\n\n" + config_table({"drift": DriftOptions}))


def block(readme_text: str) -> str:
    i, j = readme_text.index(START) + len(START), readme_text.index(END)
    return readme_text[i:j].strip()


def update(path) -> bool:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = text[: text.index(START) + len(START)] + "\n" + table() + "\n" + text[text.index(END):]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    changed = update(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    print("README config table " + ("updated" if changed else "already up to date"))
