"""The ``split:`` section."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option

HOLDOUTS = ("auto", "documents", "gold")


def _ratio(v) -> str | None:
    return None if 0 <= v < 1 else "must lie in [0, 1)"


@dataclass
class SplitOptions:
    """The ``split:`` section; field names equal its keys."""

    eval_ratio: float = option(0.1, check=_ratio, help="Share of pairs held out for evaluation (whole documents) "
                               "when no eval_queries are given.")
    eval_queries: str | None = option(None, path=True, help="Real user questions as the eval set: JSONL "
                                      "{query|question, chunk_ids|source_ids: [...]} or {query, answer: text}, or a "
                                      "BEIR folder (queries.jsonl + qrels keyed by the ids of a JSONL corpus given to "
                                      "prep).")
    train_queries: str | None = option(None, path=True, help="Labelled real questions that join training (same "
                                       "formats as eval_queries); a question equal to an eval question is dropped.")
    real_repeat: int = option(4, check=lambda v: None if v >= 1 else "must be >= 1",
                              help="Each labelled real training question appears this many times among the training "
                                   "rows: real questions carry more signal than generated ones (measured on stard_dev, "
                                   "benchmarks/RESULTS.md).")
    generated_keep: float | None = option(None, check=lambda v: None if v is None or 0 < v <= 1 else
                                          "must lie in (0, 1] or be null",
                                          help="Share of the generated pairs kept (seeded) when train_queries are "
                                               "given; 1 keeps all; null = as many as generated_per_real allows.")
    # Measured on stard_dev (benchmarks/RESULTS.md): what counts is the share of real rows, not of generated pairs
    # kept -- a 10% share of a 2,000-article corpus's pairs was 0.3 generated rows per real row and gave x1.27,
    # the same 10% of the whole 9,626-article corpus was 2.5 per real row and gave x1.18.
    generated_per_real: float = option(0.3, check=lambda v: None if v >= 0 else "must be >= 0",
                                       help="With train_queries and generated_keep null: generated pairs kept "
                                            "(seeded) per real training row (after real_repeat), so the real "
                                            "questions are not drowned out whatever the corpus size.")
    holdout: str = option("auto", choices=HOLDOUTS,
                          help="What the eval side holds out of training: `documents` (every document an eval "
                               "question touches: measures transfer to unseen documents), `gold` (only the gold "
                               "passages of the eval questions and every pair made from them: one corpus, real "
                               "questions about it); auto = gold with eval_queries, documents otherwise.")
    seed: int = option(42, help="Seed of the document shuffle.")
    answer_overlap: float = option(0.6, help="An eval `answer` no chunk contains verbatim is matched to the chunk "
                                   "holding the largest share of its character bigrams, if the share reaches this.")

    def holdout_mode(self) -> str:
        if self.holdout != "auto":
            return self.holdout
        return "gold" if self.eval_queries else "documents"


@dataclass
class SplitFiles:
    """The files `kit split` reads and writes (`kit run` takes them from the workdir)."""

    pairs: str = option(argument=True, yaml=False, help="gen-queries' pairs.jsonl.")
    corpus: str = option(yaml=False, required=True, help="prep's corpus.jsonl.")
    output: str = option(yaml=False, required=True, short="o",
                         help="DATA_DIR: train.jsonl, train_corpus.jsonl, eval/ and split_stats.json are written "
                              "here.")
    log_labels: str | None = option(None, yaml=False,
                                    help="`kit logs`' log_labels.jsonl: its labelled questions train as real ones "
                                         "(real_repeat, generated_per_real); eval questions never.")
