"""Settings of one reranker, written in YAML next to its spec (``mine.reranker_settings``, ``bench.rerankers``)::

    bench:
      rerankers:
        rr-base: local:BAAI/bge-reranker-base
        ali: dashscope:gte-rerank-v2                                   # key from DASHSCOPE_API_KEY
        vllm: {spec: "openai:BAAI/bge-reranker-v2-m3", base_url: "http://gpu-box:8000/v1", concurrency: 8}

Unset fields fall back to the model catalogue (``rerank:`` in kit/data/catalog.yaml: documents and tokens per
request, price) and then to the defaults below.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ...options import OptionError, from_section, option

SPECS = "local:NAME_OR_PATH, dashscope:MODEL (gte-rerank-v2, ...) or openai:MODEL (an OpenAI-compatible /v1/rerank " \
        "server; give its base_url)"


def _positive(v) -> str | None:
    return None if v > 0 else "must be above 0"


@dataclass
class RerankerSettings:
    """One reranker written as a mapping."""

    spec: str | None = option(None, help=f"Reranker spec: {SPECS}.")
    base_url: str | None = option(None, help="Endpoint: the /v1 root of an OpenAI-compatible rerank server, or "
                                  "DashScope's (default https://dashscope.aliyuncs.com/api/v1). Credentials in it "
                                  "are redacted wherever the kit writes or prints it.")
    api_key_env: str | None = option(None, help="Environment variable holding the key (default OPENAI_API_KEY / "
                                     "DASHSCOPE_API_KEY). The key itself is never accepted.")
    batch_size: int | None = option(None, check=_positive, help="Pairs per batch (local) or documents per "
                                    "request (API, capped at the catalogue's limit).")
    concurrency: int | None = option(None, check=_positive, help="Requests in flight (API).")
    timeout: float | None = option(None, check=_positive, help="Seconds per request (API).")
    max_retries: int | None = option(None, check=_positive, help="Attempts per request on 429/5xx/timeouts.")
    max_length: int | None = option(None, check=_positive, help="Token limit of query + passage (local).")
    precision: str | None = option(None, choices=("auto", "fp32", "bf16", "fp16"), help="Local precision.")

    def overrides(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and k != "spec"}


def parse_reranker_entry(name: str, value, where: str) -> tuple[str, dict]:
    """(spec, settings) from a plain spec or a mapping; OptionError names the key that is wrong."""
    if isinstance(value, str):
        check_spec(value, f"{where}.{name}")
        return value, {}
    if not isinstance(value, dict):
        raise OptionError([f"{where}.{name}: expected a reranker spec or a mapping with `spec`, got {value!r}"])
    s = from_section(RerankerSettings, value, f"{where}.{name}")
    if not s.spec:
        raise OptionError([f"{where}.{name}.spec: missing (e.g. spec: dashscope:gte-rerank-v2)"])
    check_spec(s.spec, f"{where}.{name}.spec")
    return s.spec, s.overrides()


def check_settings(value: dict, where: str) -> dict:
    """A ``{field: value}`` mapping validated against :class:`RerankerSettings` (no spec)."""
    if "spec" in value:
        raise OptionError([f"{where}.spec: give the spec in its own key, not here"])
    return from_section(RerankerSettings, value, where).overrides()


def check_spec(spec: str, where: str) -> None:
    prefix, sep, rest = str(spec).strip().partition(":")
    if not sep or not rest or prefix not in ("local", "dashscope", "openai"):
        raise OptionError([f"{where}: unknown reranker spec {spec!r}; use {SPECS}"])


def reranker_map_problem(value: dict) -> str | None:
    """``check=`` of a {name: spec or mapping} option: the first problem, or None."""
    try:
        for name, v in (value or {}).items():
            parse_reranker_entry(name, v, "rerankers")
    except OptionError as e:
        return e.problems[0]
    return None


def settings_problem(value: dict) -> str | None:
    """``check=`` of a settings mapping: the first problem, or None."""
    try:
        check_settings(value or {}, "reranker_settings")
    except OptionError as e:
        return e.problems[0]
    return None


def spec_problem(value: str) -> str | None:
    try:
        check_spec(value, "reranker")
    except OptionError as e:
        return e.problems[0]
    return None
