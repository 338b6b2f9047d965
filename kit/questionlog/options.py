"""The ``logs:`` section (:class:`LogOptions`) and the files the stage reads and writes (:class:`LogFiles`).

The offline judge's defaults come from a measurement, not a guess: ``benchmarks/log_labels.py --judge-only``
(stard_dev, zh-e5-small, a seeded half of the 657 real questions as the log with their labels hidden; the method
and threshold were picked on a calibration share of that half and reported on the rest: benchmarks/RESULTS.md,
"Question logs (issue 23)"). Each default below says which number it comes from.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option

JUDGES = ("offline", "llm")
# agreement: a candidate's score is sqrt(1 / (dense rank x BM25 rank)) within each retriever's top `candidates`
# (1 when both put it first, 0.71 for ranks 1 and 2, 0 when either leaves it out); dense_margin: the dense top-1
# only, scored by its cosine lead over the dense top-2. Measured on 328 stard_dev questions (20 seeded
# calibration/report halves, RESULTS.md): agreement >= 1 -- the model and BM25 put the same passage first -- had
# the most correct labels net of wrong ones on the calibration halves (precision 0.70, recall 0.19 on the report
# halves); agreement >= 0.7 (0.62 / 0.28) and dense_margin >= 0.01 (0.75 / 0.14) came within a label or two.
# Trained on, neither beat generated questions alone (1.101x and 1.113x base against 1.114x; RESULTS.md): agreement
# labels the questions the model already answers. The unlabelled rows are where a person's (or an LLM's) labels pay.
OFFLINE_METHODS = ("agreement", "dense_margin")
DEFAULT_THRESHOLD = {"agreement": 1.0, "dense_margin": 0.01}
MASKS = ("phone", "id_number", "email")


def _fraction(v) -> str | None:
    return None if 0 <= v <= 1 else "must lie in [0, 1]"


def _positive(v) -> str | None:
    return None if v >= 1 else "must be >= 1"


@dataclass
class LogOptions:
    """The ``logs:`` section; field names equal its keys."""

    path: str | list[str] | None = option(None, path=True, flag="log", help="The question log: JSONL or CSV files (or folders "
                                          "of them), one question a row, with a clicked/accepted passage id or text, "
                                          "a timestamp and a count where present. UTF-8, else GB18030.")
    judge: str = option("offline", choices=JUDGES, help="Who decides which candidate passages answer a logged "
                        "question: `offline` (agreement of the model and BM25, no API) or `llm` (any "
                        "OpenAI-compatible endpoint: preset/base_url/model below).")
    offline_method: str = option("agreement", choices=OFFLINE_METHODS,
                                 help="The offline judge's score: `agreement` (both retrievers rank the passage "
                                      "high) or `dense_margin` (the model's top-1 leads its top-2 by a margin); "
                                      "chosen by measurement (kit/questionlog/options.py).")
    threshold: float | None = option(None, help="A candidate is accepted when the judge's score reaches this; null = "
                                     "the measured default of the method (agreement 1.0, dense_margin 0.01, "
                                     "llm 0.5 on its stated confidence).")
    max_labels: int = option(2, check=_positive, help="Passages accepted per question at most (clicked ones first, "
                             "then the best scored).")
    candidates: int = option(10, check=_positive, help="Top passages taken from each retriever (the model, BM25).")
    bm25_tokens: str = option("words", choices=("words", "words+bigrams"),
                              help="What the BM25 retriever of the candidates indexes: jieba's words, or those plus "
                                   "character bigrams (as bench.bm25_tokens).")
    shown: int = option(8, check=_positive, help="Candidates (fused by reciprocal rank) kept per question in "
                        "log_labels.jsonl and shown to the LLM judge.")
    click_trust: float = option(0.5, check=_fraction, help="How far a click (a passage the user opened or "
                                "accepted) lowers the judge's bar for that passage: 1 = a click is a label, 0 = the "
                                "judge decides alone; the bar is (1 - click_trust) x threshold.")
    near_duplicate: float = option(0.9, check=_fraction, help="Questions at least this similar (rapidfuzz ratio, "
                                   "0-1, after normalising case, width and punctuation) are merged and counted; 1 = "
                                   "exact duplicates only. Also how close a log question may come to an eval "
                                   "question before it is kept out of training.")
    mask: list[str] = option(default_factory=lambda: list(MASKS), choices=MASKS,
                             help="Personal data masked as the log is read, before anything is stored, embedded or "
                                  "sent to an API: phone, id_number (PRC resident ID), email; [] masks nothing.")
    max_chars: int = option(500, check=_positive, help="Longer questions are skipped (named by file:line).")
    topics: int | None = option(None, help="Topic clusters of the weak-spot report; null = about sqrt(questions/2).")
    worst_topics: int = option(10, check=_positive, help="Worst-served topics listed in the report.")
    missing: int = option(20, check=_positive, help="Questions no passage answers listed in the report.")
    seed: int = option(0, help="Seed of the clustering.")
    batch_size: int = option(32, check=_positive, help="Texts per encoding batch.")
    precision: str = option("auto", choices=("auto", "fp32", "bf16", "fp16"),
                            help="Encoding precision (keep bench's, so cached passage embeddings are reused).")
    # the LLM judge: the same endpoint settings, cache, retries and cost accounting as question generation
    preset: str | None = option(None, choices=("openai", "dashscope", "deepseek"),
                                help="LLM judge: known endpoint (base URL, key variable, default model).")
    base_url: str | None = option(None, help="LLM judge: any OpenAI-compatible endpoint.")
    model: str | None = option(None, flag="judge-model", help="LLM judge: chat model (default: the preset's).")
    api_key_env: str | None = option(None, help="LLM judge: environment variable holding the API key (the key itself "
                                     "is never accepted).")
    concurrency: int = option(8, check=_positive, help="LLM judge: requests in flight.")
    timeout: float = option(60.0, help="LLM judge: seconds per request.")
    max_retries: int = option(5, help="LLM judge: retries per request on 429/5xx/timeouts.")
    junk_retries: int = option(2, help="LLM judge: extra calls when an answer is not the JSON asked for.")
    temperature: float = option(0.0, help="LLM judge: sampling temperature.")
    backoff: float = option(1.0, help="LLM judge: first wait (s) of the backoff when the server gives no Retry-After.")
    cache_path: str | None = option(None, path=True, help="LLM judge: SQLite cache of answers (default "
                                    "$KIT_CACHE_DIR/llm.sqlite, shared with question generation).")
    progress: bool = option(True, yaml=False, help="Show progress bars.")

    def paths(self) -> list[str]:
        if not self.path:
            return []
        return [self.path] if isinstance(self.path, str) else list(self.path)

    def bar(self) -> float:
        """The judge's acceptance threshold."""
        if self.threshold is not None:
            return float(self.threshold)
        return 0.5 if self.judge == "llm" else DEFAULT_THRESHOLD[self.offline_method]

    def judge_name(self) -> str:
        return f"llm:{self.model or self.preset or 'endpoint'}" if self.judge == "llm" else \
            f"offline:{self.offline_method}"


@dataclass
class LogFiles:
    """What the stage reads and writes (`kit run` takes them from the workdir and the config)."""

    corpus: str = option(yaml=False, required=True, help="prep's corpus.jsonl (the passages that may answer).")
    model: str = option(yaml=False, required=True, help="The current model (candidates and question embeddings).")
    labels: str = option(yaml=False, required=True, help="log_labels.jsonl to write (human corrections in an "
                                                         "existing one are kept).")
    report: str = option(yaml=False, required=True, help="log_report.json to write (log_report.md beside it).")
    eval_queries: str | None = option(None, yaml=False, help="The eval questions (split.eval_queries): a log "
                                                             "question equal or near to one never trains.")
