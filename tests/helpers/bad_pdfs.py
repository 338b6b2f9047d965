"""Bad PDFs of every kind, made from a real law PDF of ../shared (the prep tests' one-line-per-file checks)."""
from __future__ import annotations

from conftest import LAW_PDFS


def write_bad_files(tmp_path):
    """Bad PDFs of every kind, and the words their one line must carry."""
    src = LAW_PDFS / "中华人民共和国就业促进法_2007.pdf"
    data = src.read_bytes()
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "notes.pdf").write_text("这不是PDF文件", encoding="utf-8")
    (tmp_path / "truncated.pdf").write_bytes(data[: len(data) // 2])
    # cut short, then "repaired" by appending the end marker: opens, but has no page at all
    (tmp_path / "cut_eof.pdf").write_bytes(data[: len(data) // 3] + b"\n%%EOF\n")
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 200 + b"\n%%EOF\n")
    # pypdf (test-only dependency) writes a real password-protected PDF; pdfminer cannot write PDFs.
    from pypdf import PdfWriter
    writer = PdfWriter(clone_from=src)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    with open(tmp_path / "locked.pdf", "wb") as f:
        writer.write(f)
    return {"empty.pdf": "empty file", "notes.pdf": "not a PDF", "truncated.pdf": "truncated",
            "cut_eof.pdf": "PDF", "corrupt.pdf": "corrupt", "locked.pdf": "encrypted PDF"}
