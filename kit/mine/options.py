"""The ``mine:`` section."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option
from ..providers.rerankers.settings import settings_problem, spec_problem
from ..search import EXACT_MAX

# Logit margin of mine.reranker, measured (benchmarks/rerank_gain.py, step `margin`; benchmarks/RESULTS.md): on 61
# STARD questions with several relevant articles, the line that best separates the other relevant articles (false
# negatives) from the embedder's top-30 wrong ones (Youden's J) lies at -0.004 logits: "scored at least as high
# as the positive". Rounded to 0.
RERANKER_MARGIN = 0.0


def _range(v: str) -> str | None:
    try:
        a, b = (int(x) for x in str(v).split("-"))
    except ValueError:
        return "expected FIRST-LAST ranks, e.g. 2-200"
    return None if 1 <= a <= b else "ranks are 1-based and FIRST <= LAST"


def _positive(v) -> str | None:
    return None if v >= 1 else "must be >= 1"


def _fraction(v) -> str | None:
    return None if v is None or 0 <= v < 1 else "must lie in [0, 1)"


@dataclass
class MineOptions:
    """The ``mine:`` section; field names equal its keys."""

    model: str | None = option(None, help="Embedding model that ranks the candidates (hub id or folder; "
                               "`kit run` uses the top-level model).")
    range: str = option("2-200", check=_range, help="1-based ranks FIRST-LAST of the search results to sample "
                        "negatives from (FlagEmbedding's hn_mine semantics).")
    negatives: int = option(15, check=_positive, help="Negatives per row.")
    sampling: str = option("random", choices=("random", "top"),
                           help="How negatives are picked from the window's candidates that pass the filters: "
                                "random (FlagEmbedding's hn_mine) or the highest-scoring first (top, "
                                "sentence-transformers' sampling_strategy='top').")
    seed: int = option(42, help="Seed of the per-row sampling (same seed, same output).")
    relative_margin: float | None = option(None, check=_fraction,
                                           help="Drop candidates scoring above (1 - m) x the positive's score "
                                                "(NV-Retriever TopK-PercPos); null turns it off (0 drops what scores above "
                                                "the positive, as absolute_margin 0 does). Depends on "
                                                "the model's score scale (see scaled_margin).")
    absolute_margin: float | None = option(None, help="Drop candidates scoring above the positive's score minus "
                                           "this (sentence-transformers' absolute_margin); null turns it off.")
    scaled_margin: float | None = option(None, help="Scale-free margin: drop candidates scoring above the "
                                         "positive's score minus m x the model's score spread (the standard "
                                         "deviation of the window's candidate scores over all rows), so m means the "
                                         "same for models whose cosines live on different scales; null turns it off.")
    min_score: float | None = option(None, help="Drop candidates scoring below this.")
    max_score: float | None = option(None, help="Drop candidates scoring above this.")
    keep_existing: bool = option(False, help="Add to existing 'neg' lists instead of replacing them.")
    batch_size: int = option(64, check=_positive, help="Texts per encoding batch.")
    precision: str = option("auto", choices=("auto", "fp32", "bf16", "fp16"),
                            help="Encoding precision; auto = fp16 on CUDA, bf16 on CPUs that have it, else fp32.")
    max_length: int | None = option(None, help="Token limit of the texts (default: the model's).")
    adjacent: int = option(1, help="Chunks of the same document within this many positions of a positive "
                           "(corpus order) are never negatives; 0 turns it off.")
    overlap_threshold: float = option(0.5, help="Character 5-gram containment above which a candidate counts as "
                                      "the positive's text (never a negative).")
    exact_max: int = option(EXACT_MAX, help="Unique chunks up to which the search is exact (IndexFlatIP); "
                            "HNSW beyond.")
    widen: bool = option(False, help="A row short of negatives searches past the window's last rank (doubling) "
                         "until it has enough; the share of negatives from inside the window is reported.")
    short_rows: str = option("keep", choices=("keep", "drop"),
                             help="A row left with fewer than `negatives` negatives after the filters: keep it with "
                                  "what it has, or drop it (sentence-transformers' mine_hard_negatives drops it; with "
                                  "a margin that keeps only the rows whose positive stands out of its window).")
    cache_path: str | None = option(None, path=True, help="Embedding cache (default "
                                    "$KIT_CACHE_DIR/embeddings.sqlite).")
    reranker: str | None = option(None, check=spec_problem, help="Cross-encoder that re-scores the sampled "
                                  "candidates (kit/mine/rerank.py): local:PATH_OR_ID, dashscope:gte-rerank-v2 or "
                                  "openai:MODEL (a /v1/rerank server; base_url in reranker_settings). It drops false "
                                  "negatives and writes pos_scores/neg_scores for distillation; null = none.")
    reranker_settings: dict = option(default_factory=dict, check=settings_problem, help="The reranker's settings: "
                                     "base_url, api_key_env, batch_size, concurrency, timeout, max_retries, "
                                     "max_length, precision.")
    reranker_margin: float = option(RERANKER_MARGIN, help="A candidate whose reranker logit is above the "
                                    "positive's minus this is a false negative (dropped); measured on labelled "
                                    "questions, see benchmarks/RESULTS.md (re-measure for another reranker).")
    progress: bool = option(True, yaml=False, help="Show progress bars.")
    print_stats: bool = option(True, yaml=False, help="Print the statistics when done.")


@dataclass
class MineFiles:
    """The files `kit mine` reads and writes (`kit run` takes them from the workdir)."""

    train: str = option(argument=True, yaml=False, help="Training rows (split's train.jsonl).")
    corpus: str = option(yaml=False, required=True, help="prep's corpus.jsonl (the candidates).")
    output: str = option(yaml=False, required=True, short="o",
                         help="Rows with hard negatives; statistics go beside it as <stem>.stats.json.")
