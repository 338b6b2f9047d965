"""The ``bench:`` section, and what `kit bench` reads and writes."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option
from ..providers.rerankers.settings import reranker_map_problem

INCLUDE = ("base", "finetuned", "merged", "adapters", "bm25")


@dataclass
class BenchOptions:
    """The ``bench:`` section; field names equal its keys."""

    models: dict[str, str | dict] = option(default_factory=dict, short="m", flag="model",
                                           help="Candidates {name: spec}; spec is openai:MODEL, dashscope:MODEL, "
                                                "local:PATH_OR_ID, bm25 or adapter:DIR (`kit run` adds its own "
                                                "models); or {name: {spec, batch_size, concurrency, timeout, "
                                                "dimensions, max_input_tokens, input_type, base_url...}}.")
    model_settings: dict[str, dict] = option(default_factory=dict, cli=False,
                                             help="Per-model settings {name: {batch_size, concurrency, timeout, "
                                                  "...}}; filled from the mapping form of `models`.")
    include: list[str] = option(default_factory=lambda: list(INCLUDE), choices=INCLUDE, cli=False,
                                help="Which of the pipeline's own models `kit run` benchmarks.")
    k: list[int] = option(default_factory=lambda: [1, 3, 5, 10], help="Cut-offs of the metrics.")
    general: str | None = option(None, path=True, help="A second eval folder for the general-ability check "
                                 "(e.g. cmrc2018 in BEIR form).")
    general_max_queries: int | None = option(500, help="Seeded sample of the general set's queries (null = all).")
    max_queries: int | None = option(None, help="Seeded sample of the domain eval queries (null = all).")
    baseline: str | None = option(None, help="The model fine-tuning is measured against (default: the first; "
                                  "`kit run`: base).")
    base_url: str | None = option(None, help="OpenAI-compatible server for openai:/dashscope: models.")
    dimensions: int | None = option(None, help="Output dimensions for API models that support it.")
    precision: str = option("auto", choices=("auto", "fp32", "bf16", "fp16"), help="Local models' precision.")
    batch_size: int | None = option(None, help="Texts per request / batch (default: the provider's).")
    concurrency: int = option(4, help="API requests in flight.")
    latency_samples: int = option(8, help="Single-query calls timed per dense model.")
    hard_negatives: int = option(10, help="Top-ranked wrong passages per query in the similarity plots.")
    seed: int = option(0, help="Seed of the query samples.")
    title: str = option("Embedding model selection report", help="Report title.")
    rerankers: dict[str, str | dict] = option(default_factory=dict, flag="reranker", check=reranker_map_problem,
                                              help="Rerankers {name: spec} that reorder each model's top rerank_top "
                                                   "(rows 'model + name' in the report): local:PATH_OR_ID, "
                                                   "dashscope:gte-rerank-v2 or openai:MODEL (an OpenAI-compatible "
                                                   "/v1/rerank server: {spec, base_url, ...}); see kit/bench/rerank.py.")
    hybrid: list[str] = option(default_factory=lambda: ["*"],
                               help="Dense models fused with the lexical model (bm25) into hybrid rows "
                                    "'<model> + bm25 (rrf|weighted)'; * = every dense model, [] = none. Needs a bm25 "
                                    "model among the candidates (see kit/bench/hybrid.py).")
    bm25_tokens: str = option("words", choices=("words", "words+bigrams"),
                              help="What the pipeline's own bm25 row indexes: jieba's words (cut_for_search), or "
                                   "those plus every pair of adjacent characters (Lucene's CJK bigrams; spec "
                                   "bm25:words+bigrams). See benchmarks/RESULTS.md for the measurement.")
    fusion: list[str] = option(default_factory=lambda: ["rrf", "weighted"], choices=("rrf", "weighted", "even"),
                               help="Fusions of the hybrid rows: reciprocal-rank fusion, a weighted sum of min-max "
                                    "normalised scores whose weight is cross-fitted on the eval questions, and the "
                                    "same sum at a fixed 0.5 (even).")
    fusion_depth: int = option(100, check=lambda v: None if v >= 10 else "must be >= 10",
                               help="How many of each model's top passages a fusion merges.")
    fusion_folds: int = option(2, check=lambda v: None if v >= 2 else "must be >= 2",
                               help="Seeded folds of the questions for the weighted fusion: each fold is scored "
                                    "with the weight chosen on the others, so no question is scored with a weight "
                                    "tuned on it.")
    rrf_k: int = option(60, check=lambda v: None if v >= 1 else "must be >= 1",
                        help="k of reciprocal-rank fusion, 1 / (k + rank) (60 as in Cormack et al. 2009).")
    rerank_top: int = option(20, check=lambda v: None if v >= 1 else "must be >= 1",
                             help="How many of each model's top passages a reranker reorders.")
    labels: dict[str, str] = option(default_factory=dict, yaml=False, cli=False,
                                    help="What each row measures, said under the results table (kit/deploy/).")
    progress: bool = option(True, yaml=False, help="Show progress bars.")

    def __post_init__(self):
        """A model written as a mapping becomes its spec (in ``models``) and its settings (``model_settings``),
        both validated: an unknown key is named with a suggestion (bench.models.ali.batchsize: unknown key;
        did you mean batch_size?)."""
        from ..providers.settings import check_settings, parse_model_entry

        models, settings = {}, {}
        for name, value in (self.models or {}).items():
            models[name], own = parse_model_entry(name, value, "bench.models")
            if own:
                settings[name] = own
        for name, value in (self.model_settings or {}).items():
            settings[name] = {**check_settings(name, value, "bench.model_settings"), **settings.get(name, {})}
        self.models, self.model_settings = models, settings


@dataclass
class BenchFiles:
    """What `kit bench` reads and writes (`kit run` takes them from the workdir)."""

    eval: str = option(yaml=False, required=True, help="Eval folder (FlagEmbedding custom-eval or BEIR layout).")
    output: str = option(yaml=False, required=True, short="o", help="Report folder.")
