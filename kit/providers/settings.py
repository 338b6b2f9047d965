"""Per-model settings of an embedding provider, written in YAML next to the model's spec::

    bench:
      models:
        ada: openai:text-embedding-ada-002                    # a plain spec: the provider's defaults
        ali: {spec: "dashscope:text-embedding-v4", dimensions: 512, batch_size: 10, concurrency: 2}
        e5:  {spec: "openai:multilingual-e5-small", base_url: "http://gpu-box:8000/v1", max_input_tokens: 512,
              input_type: {query: query, document: passage}, timeout: 30}

Unset fields fall back to the section's own (``bench.base_url``, ``bench.concurrency``...) and then to the
model catalogue (:mod:`kit.catalog`: batch rows, input tokens, dimensions, input kinds).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..options import OptionError, from_section, option

KINDS = ("query", "document")


def _kinds(v) -> str | None:
    bad = [k for k in v if k not in KINDS]
    return f"keys must be {' and '.join(KINDS)}, not {', '.join(bad)}" if bad else None


def _positive(v) -> str | None:
    return None if v > 0 else "must be above 0"


@dataclass
class ModelSettings:
    """One candidate model of ``bench.models`` (or one provider of ``adapter.providers``) written as a mapping."""

    spec: str | None = option(None, help="Provider spec: openai:MODEL, dashscope:MODEL, local:PATH, bm25 or "
                              "adapter:DIR.")
    base_url: str | None = option(None, help="OpenAI-compatible endpoint of this model (credentials in it are "
                                  "redacted wherever the kit writes or prints it).")
    dimensions: int | None = option(None, check=_positive, help="Output dimensions, where the model can choose.")
    batch_size: int | None = option(None, check=_positive, help="Texts per request (capped at the model's "
                                    "limit from the catalogue).")
    concurrency: int | None = option(None, check=_positive, help="Requests in flight.")
    timeout: float | None = option(None, check=_positive, help="Seconds per request.")
    max_retries: int | None = option(None, help="Attempts per request on 429/5xx/timeouts.")
    max_input_tokens: int | None = option(None, check=_positive, help="Longest input the model takes (texts "
                                          "are cut to it); default: the catalogue's, else unknown.")
    input_type: dict[str, str] | None = option(None, check=_kinds, help="What the server is told each text "
                                               "is: {query: ..., document: ...} (e.g. passage); DashScope "
                                               "v3/v4 get text_type query/document by default.")
    input_field: str = option("input_type", help="Request field that carries input_type (input_type, "
                              "text_type, task...).")

    def overrides(self) -> dict:
        """The fields that were set (None = not set), spec excluded."""
        return {k: v for k, v in asdict(self).items() if v is not None and k != "spec"
                and not (k == "input_field" and self.input_type is None)}


def parse_model_entry(name: str, value, where: str) -> tuple[str, dict]:
    """(spec, settings) from a plain spec string or a mapping; OptionError names the key that is wrong."""
    if isinstance(value, str):
        return value, {}
    if not isinstance(value, dict):
        raise OptionError([f"{where}.{name}: expected a spec text or a mapping with `spec`, got {value!r}"])
    s = from_section(ModelSettings, value, f"{where}.{name}")
    if not s.spec:
        raise OptionError([f"{where}.{name}.spec: missing (e.g. spec: openai:text-embedding-3-small)"])
    return s.spec, s.overrides()


def check_settings(name: str, value: dict, where: str) -> dict:
    """A ``{field: value}`` mapping of settings validated against :class:`ModelSettings` (no spec)."""
    if "spec" in value:
        raise OptionError([f"{where}.{name}.spec: give the spec in `models`, not here"])
    return from_section(ModelSettings, value, f"{where}.{name}").overrides()


SETTING_NAMES = tuple(f.name for f in fields(ModelSettings) if f.name != "spec")
