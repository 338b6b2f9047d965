"""What the mining tests share (tests/mine/): JSON-lines rows written and read back, and the click group."""
from __future__ import annotations

import json
from pathlib import Path


def write_rows(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def cli_main():
    """The click group (every subcommand registered)."""
    from kit.cli import main
    return main
