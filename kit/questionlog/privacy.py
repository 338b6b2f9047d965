"""Masking of personal data in logged questions: e-mail addresses, PRC resident ID numbers, phone numbers.

Regular expressions written here rather than a PII library: the patterns needed are three national formats, the
libraries that cover Chinese ones (presidio and the like) bring spaCy models for much more than that, and a
false positive only masks a number in a question. The order matters: an ID number holds eleven digits that look
like a mobile number, so IDs are masked before phones.
"""
from __future__ import annotations

import re

TOKENS = {"email": "[邮箱]", "id_number": "[身份证号]", "phone": "[电话]"}

_PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
    # 18 characters: 6-digit area, birth date 18xx-20xx, 3-digit sequence, check digit or X
    "id_number": re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
                            r"\d{3}[\dXx](?![0-9A-Za-z])"),
    # mobile (optionally +86 / 86, spaces or hyphens between groups), or a landline with its area code
    "phone": re.compile(r"(?<!\d)(?:(?:\+|00)?86[\s\-]?)?1[3-9]\d(?:[\s\-]?\d{4}){2}(?!\d)"
                        r"|(?<!\d)0\d{2,3}[\s\-]\d{7,8}(?!\d)|(?<!\d)\(0\d{2,3}\)\s?\d{7,8}(?!\d)"),
}
ORDER = ("email", "id_number", "phone")


def mask(text: str, kinds) -> tuple[str, dict[str, int]]:
    """``text`` with every match of ``kinds`` (names of TOKENS) replaced by its token; (text, {kind: count})."""
    counts: dict[str, int] = {}
    for kind in ORDER:
        if kind not in kinds:
            continue
        text, n = _PATTERNS[kind].subn(TOKENS[kind], text)
        if n:
            counts[kind] = n
    return text, counts
