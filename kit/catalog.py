"""The model catalogue (``kit/data/catalog.yaml``, package data): prices and API limits, defined once."""
from __future__ import annotations

import functools
from importlib import resources


@functools.lru_cache(maxsize=1)
def catalog() -> dict:
    import yaml
    text = resources.files("kit").joinpath("data/catalog.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def embedding_model(name: str) -> dict | None:
    """The catalogue entry of an embedding model (``text-embedding-v3``), or None."""
    return (catalog().get("embedding") or {}).get(name)


def embedding_limits(name: str) -> dict:
    """What an API embedding model accepts: batch, request_tokens, input_tokens (None = unknown), dims (list or
    None), default_dim, shorten, tokenizer, input_kind ({field, query, document} or None), known (in the
    catalogue or not), self_hosted (the limits are those of the servers hosting an open model, not of one
    provider's own endpoint)."""
    entry = embedding_model(name)
    unknown = catalog().get("embedding_unknown") or {}
    e = entry or unknown
    dims = e.get("dims")
    return {"known": entry is not None, "batch": int(e.get("batch") or 64),
            "request_tokens": e.get("request_tokens"), "input_tokens": e.get("input_tokens"),
            "dims": list(dims) if dims else None,
            "default_dim": e.get("default_dim") or (dims[0] if dims else None),
            "shorten": bool(e.get("shorten")), "tokenizer": e.get("tokenizer"), "input_kind": e.get("input_kind"),
            "self_hosted": bool(e.get("self_hosted"))}


def embedding_price(spec: str) -> float | None:
    """USD per 1M input tokens; 0 for local models and bm25 (compute not included); None when unknown."""
    name = str(spec)
    if name == "bm25" or name.startswith(("local:", "bm25")):
        return 0.0
    prefix, sep, rest = name.partition(":")
    entry = embedding_model(rest if sep and prefix in ("openai", "dashscope") else name)
    return None if entry is None else float(entry["usd_per_1m_tokens"])


def chat_prices_date() -> str:
    return str(catalog().get("chat_date", ""))


def chat_cost(model: str, prompt_tokens: int, completion_tokens: int) -> tuple[float, str] | None:
    """(cost, currency) of a chat model's tokens, or None when the model is not in the catalogue. Dated
    snapshots (gpt-4o-mini-2024-07-18) cost what their family costs."""
    prices = catalog().get("chat") or {}
    entry = prices.get(model)
    if entry is None:
        family = [m for m in prices if model.startswith(m + "-")]
        entry = prices[max(family, key=len)] if family else None
    if entry is None:
        return None
    return (prompt_tokens * entry["input"] + completion_tokens * entry["output"]) / 1e6, entry["currency"]
