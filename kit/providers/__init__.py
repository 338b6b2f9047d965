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
                  batch_size=None, concurrency: int = 4, precision="auto", settings: dict | None = None,
                  **kw) -> Provider:
    """Build a provider from a spec string: openai:MODEL, dashscope:MODEL, local:PATH, bm25 (bm25:words+bigrams),
    adapter:DIR.

    ``settings``: this model's own settings (:class:`~kit.providers.settings.ModelSettings` fields: base_url,
    dimensions, batch_size, concurrency, timeout, max_retries, max_input_tokens, input_type, input_field); they
    win over the section-wide arguments. Extra ``kw``: max_retries, retry_max_wait, timeout (API); max_length,
    progress (local); k1, b (bm25).
    """
    own = dict(settings or {})
    base_url = own.pop("base_url", None) or base_url
    dimensions = own.pop("dimensions", None) or dimensions
    batch_size = own.pop("batch_size", None) or batch_size
    concurrency = own.pop("concurrency", None) or concurrency
    kw = {**kw, **own}
    spec = spec.strip()
    prefix, _, rest = spec.partition(":")
    if spec == "bm25" or prefix == "bm25" and rest:
        return BM25Provider(**{k: v for k, v in kw.items() if k in ("k1", "b")}, tokens=rest or "words")
    api_kw = {k: v for k, v in kw.items() if k in API_SETTINGS}
    if prefix in ("openai", "dashscope") and rest:
        from .api import dashscope_provider, openai_provider
        make = openai_provider if prefix == "openai" else dashscope_provider
        return make(rest, base_url=base_url, dimensions=dimensions, cache=cache, batch_size=batch_size,
                    concurrency=concurrency, **api_kw)
    if prefix == "local" and rest:
        from .local import LocalProvider
        return LocalProvider(rest, cache=cache, batch_size=batch_size, precision=precision,
                             **{k: v for k, v in kw.items() if k in ("max_length", "progress", "encode_options")})
    if prefix == "adapter" and rest:
        meta = adapter_meta(rest)
        stored = meta.get("base_url")
        if not base_url and stored and "***" in stored:
            raise KitError(f"{spec}: its base provider's endpoint carried credentials, which are never stored; "
                           f"give the endpoint again (base_url, or the model's own base_url)")
        base = make_provider(meta["base_spec"], base_url=base_url or stored,
                             dimensions=dimensions or meta.get("dimensions"), cache=cache,
                             batch_size=batch_size, concurrency=concurrency, precision=precision,
                             settings=meta.get("base_settings"),
                             **kw)   # the corpus vectors are the base's: encode_options reaches a local base
        return AdapterProvider(rest, base)
    raise KitError(f"unknown provider spec {spec!r}: use {SPECS}")


API_SETTINGS = ("max_retries", "retry_max_wait", "timeout", "max_input_tokens", "input_type", "input_field")
