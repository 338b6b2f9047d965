"""The ``queries:`` section, and what `kit gen-queries` reads and writes."""
from __future__ import annotations

from dataclasses import dataclass

from ..io import KitError
from ..options import option
from .offline import OFFLINE

GENERATORS = ("llm", *OFFLINE)


def _keep(v) -> str | None:
    return None if 0.0 <= v <= 1.0 else "must lie in [0, 1]"


@dataclass
class QueryOptions:
    """The ``queries:`` section; field names equal its keys."""

    generator: str | list[str] = option("llm", short="g", help="llm, ict, keywords or headings; a list (or "
                                        "comma-separated) combines them.")
    per_chunk: int = option(3, short="n", help="Questions per chunk (per generator).")
    preset: str | None = option(None, choices=("openai", "dashscope", "deepseek"),
                                help="Known LLM endpoint (base URL, key variable, default model).")
    base_url: str | None = option(None, help="Any OpenAI-compatible endpoint (vLLM, Ollama, a proxy...).")
    model: str | None = option(None, help="Chat model (default: the preset's, e.g. qwen-plus for dashscope).")
    api_key_env: str | None = option(None, help="Name of the environment variable holding the API key (default: "
                                     "the preset's, or OPENAI_API_KEY). The key itself is never accepted.")
    concurrency: int = option(8, help="LLM requests in flight.")
    timeout: float = option(60.0, help="Seconds per LLM request.")
    max_retries: int = option(5, help="Retries per request on 429/5xx/timeouts.")
    seed: int = option(0, help="Seed of the offline generators.")
    ict_keep: float = option(0.5, check=_keep, help="ict: share of pairs whose positive keeps the query sentence.")
    cache_path: str | None = option(None, path=True, help="SQLite cache of LLM answers (default "
                                    "$KIT_CACHE_DIR/llm.sqlite).")
    temperature: float = option(0.7, help="LLM sampling temperature.")
    junk_retries: int = option(2, help="Extra calls when an answer holds no readable question.")
    backoff: float = option(1.0, help="First wait (s) of the exponential backoff when the server gives no "
                            "Retry-After.")
    progress: bool = option(True, yaml=False, help="Show progress bars.")

    def generators(self) -> list[str]:
        names = self.generator if isinstance(self.generator, (list, tuple)) else [self.generator]
        out = []
        for n in names:
            out += [x.strip() for x in str(n).split(",") if x.strip()]
        bad = [n for n in out if n not in GENERATORS]
        if bad or not out:
            raise KitError(f"unknown generator {', '.join(bad) or '(none)'}; choose from {', '.join(GENERATORS)}")
        return list(dict.fromkeys(out))


@dataclass
class QueryFiles:
    """The files `kit gen-queries` reads and writes (`kit run` takes them from the workdir)."""

    corpus: str = option(argument=True, yaml=False, help="prep's corpus.jsonl.")
    output: str = option(yaml=False, required=True, short="o", help="pairs.jsonl to write.")
