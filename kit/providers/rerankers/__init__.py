"""Rerankers behind one interface (beside the embedding providers): ``local:NAME_OR_PATH`` (a cross-encoder
folder or hub id), ``dashscope:MODEL`` (DashScope's native text-rerank API) and ``openai:MODEL`` (any
OpenAI-compatible ``/v1/rerank`` server: vLLM, TEI, Xinference, Jina/Cohere-style). Every score goes through the
on-disk cache (:mod:`.cache`), so each (query, passage) pair is paid for once.

base.py the interface and the logit scale    local.py   transformers cross-encoders
api.py  the two HTTP protocols               settings.py per-reranker YAML settings     cache.py SQLite scores
"""
from __future__ import annotations

import os

from ...catalog import catalog
from ...io import KitError
from .base import Reranker, to_logits
from .cache import RerankCache, default_rerank_cache_path
from .local import RERANKER_FILE, LocalReranker
from .settings import SPECS, RerankerSettings, check_settings, parse_reranker_entry

__all__ = ["RERANKER_FILE", "LocalReranker", "RerankCache", "Reranker", "RerankerSettings", "SPECS",
           "check_settings", "default_rerank_cache_path", "make_reranker", "parse_reranker_entry",
           "rerank_limits", "to_logits"]

DASHSCOPE_MODELS = ("gte-rerank", "gte-rerank-v2", "qwen3-rerank")


def rerank_limits(model: str) -> dict:
    """What a rerank model accepts and costs, from the catalogue (``rerank:``); unknown models get
    ``rerank_unknown``'s moderate batch, no token limits and an unknown price."""
    entry = (catalog().get("rerank") or {}).get(model)
    e = entry or catalog().get("rerank_unknown") or {}
    price = e.get("usd_per_1m_tokens")
    return {"known": entry is not None, "max_documents": int(e.get("max_documents") or 64),
            "request_tokens": e.get("request_tokens"), "input_tokens": e.get("input_tokens"),
            "tokenizer": e.get("tokenizer"), "price": None if price is None else float(price)}


def make_reranker(spec: str, settings: dict | None = None, *, cache=None, progress: bool = True) -> Reranker:
    """A reranker from its spec (:data:`SPECS`) and settings (:class:`RerankerSettings` fields)."""
    from .api import DASHSCOPE_RERANK_URL, APIReranker

    s = check_settings(dict(settings or {}), "reranker settings")   # typed: "16" from a flag becomes 16
    prefix, _, rest = spec.strip().partition(":")
    if prefix == "local" and rest:
        return LocalReranker(rest, batch_size=s.get("batch_size"), precision=s.get("precision") or "auto",
                             max_length=s.get("max_length"), cache=cache, progress=progress)
    api = {k: s[k] for k in ("batch_size", "concurrency", "timeout", "max_retries") if s.get(k) is not None}
    if prefix == "dashscope" and rest:
        if rest not in DASHSCOPE_MODELS:
            raise KitError(f"dashscope rerank model {rest!r} unknown; one of {', '.join(DASHSCOPE_MODELS)}")
        return APIReranker("dashscope", rest, base_url=s.get("base_url") or DASHSCOPE_RERANK_URL,
                           protocol="dashscope", api_key_env=s.get("api_key_env") or "DASHSCOPE_API_KEY",
                           key_required=True, limits=rerank_limits(rest), cache=cache, progress=progress, **api)
    if prefix == "openai" and rest:
        base_url = s.get("base_url") or os.environ.get("OPENAI_RERANK_BASE_URL")
        if not base_url:
            raise KitError(f"{spec}: an OpenAI-compatible reranker needs its server's base_url (e.g. "
                           f"http://gpu-box:8000/v1 for vLLM; OpenAI itself has no rerank API)")
        # Self-hosted servers (vLLM, TEI, Xinference) usually take no key; one that does answers 401, which
        # names the variable to set.
        return APIReranker("openai", rest, base_url=base_url, protocol="v1",
                           api_key_env=s.get("api_key_env") or "OPENAI_API_KEY", key_required=False,
                           limits=rerank_limits(rest), cache=cache, progress=progress, **api)
    raise KitError(f"unknown reranker spec {spec!r}: use {SPECS}")
