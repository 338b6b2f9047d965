"""Embedding providers behind one interface (the layer the stages use): ``local:NAME_OR_PATH``,
``openai:MODEL``, ``dashscope:MODEL``, ``bm25`` and ``adapter:DIR``.

Every dense provider embeds through :func:`kit.embed.embed_with_cache`, so each text is paid for once, ever.
"""
from __future__ import annotations

from ..catalog import embedding_price
from ..io import KitError
from .adapter import AdapterProvider, adapter_meta, load_adapter
from .base import Provider, normalise
from .bm25 import BM25Provider, jieba_tokens

__all__ = ["AdapterProvider", "BM25Provider", "Provider", "adapter_meta", "embedding_price", "jieba_tokens",
           "load_adapter", "make_provider", "normalise", "price_per_million_tokens"]

SPECS = "openai:MODEL, dashscope:MODEL, local:NAME_OR_PATH, bm25 or adapter:DIR"


def price_per_million_tokens(model_name) -> float | None:
    """USD per 1M input tokens from the model catalogue; 0 for local/bm25 (compute not included)."""
    return embedding_price(model_name)


def make_provider(spec: str, *, base_url: str | None = None, dimensions: int | None = None, cache=None,
                  batch_size=None, concurrency: int = 4, precision="auto", **kw) -> Provider:
    """Build a provider from a spec string: openai:MODEL, dashscope:MODEL, local:PATH, bm25, adapter:DIR.

    Extra ``kw``: max_retries, retry_max_wait, timeout (API); max_length, progress (local); k1, b (bm25).
    """
    spec = spec.strip()
    prefix, _, rest = spec.partition(":")
    if spec == "bm25":
        return BM25Provider(**{k: v for k, v in kw.items() if k in ("k1", "b")})
    api_kw = {k: v for k, v in kw.items() if k in ("max_retries", "retry_max_wait", "timeout")}
    if prefix in ("openai", "dashscope") and rest:
        from .api import dashscope_provider, openai_provider
        make = openai_provider if prefix == "openai" else dashscope_provider
        return make(rest, base_url=base_url, dimensions=dimensions, cache=cache, batch_size=batch_size,
                    concurrency=concurrency, **api_kw)
    if prefix == "local" and rest:
        from .local import LocalProvider
        return LocalProvider(rest, cache=cache, batch_size=batch_size, precision=precision,
                             **{k: v for k, v in kw.items() if k in ("max_length", "progress")})
    if prefix == "adapter" and rest:
        meta = adapter_meta(rest)
        base = make_provider(meta["base_spec"], base_url=base_url or meta.get("base_url"),
                             dimensions=dimensions or meta.get("dimensions"), cache=cache,
                             batch_size=batch_size, concurrency=concurrency, precision=precision, **kw)
        return AdapterProvider(rest, base)
    raise KitError(f"unknown provider spec {spec!r}: use {SPECS}")
