"""The ``drift:`` section (:class:`DriftOptions`) and what `kit drift` reads (:class:`DriftFiles`).

The defaults of the thresholds were chosen from measurements, not guessed: ``benchmarks/drift_trials.py`` (20
seeded trials per scenario on stard_dev with zh-e5-small; benchmarks/RESULTS.md, "Drift watch (issue 22)") measured
the false alarms of splits drawn from the same laws, and the detection of laws the model never saw and of another
domain (the E.SUN insurance / FAQ corpus). Each default below says which number it comes from.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option

VOTES = ("auto", "always", "never")


def _fraction(v) -> str | None:
    return None if 0 < v < 1 else "must lie in (0, 1)"


def _positive(v) -> str | None:
    return None if v >= 1 else "must be >= 1"


def _auc(v) -> str | None:
    return None if 0.5 <= v < 1 else "must lie in [0.5, 1)"


# Per-test significance level. Two or three tests may vote (coverage, distribution, question log), so a 5% level
# each could raise a false alarm in up to ~14% of runs; at 1% each the same-laws trials raised none in 20 (RESULTS.md).
ALPHA = 0.01
# Effect floors, so that a difference too small to matter is never a reason to retrain even when a large new set
# makes it significant. Measured over 20 seeded trials each (benchmarks/drift_trials.py, RESULTS.md):
#   same laws, no drift:  uncovered share <= 0.058 (4,813 new chunks; <= 0.10 with 50), classifier AUC <= 0.55 (0.58)
#   unseen laws:          uncovered share >= 0.54 (>= 0.52 with 50 new chunks), AUC >= 0.77 (0.58 with 50)
#   another domain:       uncovered share 1.00, AUC 1.00
# The floors sit between, nearer the no-drift side, so that smaller real shifts still count: twice the calibration
# quantile for coverage (0.05 of same-distribution chunks are uncovered by construction), and AUC 0.60.
COVERAGE_MIN_SHARE = 0.10
MIN_AUC = 0.60


@dataclass
class DriftOptions:
    """The ``drift:`` section; field names equal its keys."""

    alpha: float = option(ALPHA, check=_fraction, help="Significance level of each test (coverage, distribution, "
                          "question log); see kit/drift/options.py for where the default comes from.")
    coverage_quantile: float = option(0.05, check=_fraction, help="A new chunk is uncovered when its nearest "
                                      "training chunk is less similar than this quantile of the training chunks' "
                                      "own nearest-neighbour similarities (other documents only).")
    coverage_min_share: float = option(COVERAGE_MIN_SHARE, check=_fraction, help="Share of uncovered new chunks "
                                       "needed (besides significance) for coverage to vote for re-training.")
    calibration_sample: int = option(3000, check=_positive, help="Training chunks whose nearest neighbours "
                                     "calibrate coverage (seeded sample; all when fewer).")
    sample_size: int = option(500, check=_positive, help="Chunks per side (new, training) in the distribution "
                              "test (seeded sample).")
    permutations: int = option(1000, check=_positive, help="Permutations of the MMD test (its smallest p-value is "
                               "1/(permutations+1)).")
    min_auc: float = option(MIN_AUC, check=_auc, help="Cross-validated AUC of a classifier telling new chunks from "
                            "training chunks needed (besides the MMD test's significance) for the distribution "
                            "test to vote for re-training.")
    folds: int = option(5, check=lambda v: None if v >= 2 else "must be >= 2",
                        help="Cross-validation folds of the domain classifier.")
    min_new_chunks: int = option(20, check=_positive, help="Fewer new chunks than this: the distribution test is "
                                 "not run (too few to tell distributions apart); coverage still is.")
    question_quantile: float = option(0.10, check=_fraction, help="A logged question is served poorly when its "
                                      "top-1 score is below this quantile of the eval questions' top-1 scores.")
    # Measured (benchmarks/drift_questions.py, 20 seeded trials on stard_dev's real questions): the effect is 0.44-0.56
    # when users ask what the documents answer and 0.60-0.81 when they ask about laws the documents lack.
    question_min_effect: float = option(0.58, check=_fraction, help="The question log votes when its top-1 scores are "
                                        "significantly lower than the eval questions' (one-sided Mann-Whitney U, "
                                        "p < alpha) and the chance that a logged question scores below an eval "
                                        "question is at least this (0.5 = no difference).")
    question_vote: str = option("auto", choices=VOTES, help="Whether the question log may vote: auto = only when "
                                "the eval questions were real ones (generated questions share their passage's "
                                "words and score higher than any real question would), always, never.")
    questions_decide: bool = option(True, help="When the documents changed but a question log that may vote shows "
                                    "the questions about the new documents (best passage a new chunk) served as "
                                    "well as the eval questions (upper bound of their effect below "
                                    "question_min_effect), the verdict is no_retrain: index the new documents, the "
                                    "model serves them. Off: any document change votes for re-training.")
    served_alpha: float = option(0.05, check=_fraction, help="One-sided level of the upper bound (bootstrap) on the "
                                 "effect of the questions about the new documents (questions_decide).")
    min_new_questions: int = option(20, check=_positive, help="Logged questions about the new documents needed "
                                    "before they can decide (questions_decide).")
    # Measured (benchmarks/drift_questions.py): half of stard_dev's laws arriving leaves 48-74% of their chunks
    # uncovered; another domain (E.SUN bank FAQ, insurance clauses) 100%, and its questions can look as well served.
    decide_max_uncovered: float = option(0.9, check=lambda v: None if 0 < v <= 1 else "must lie in (0, 1]",
                                         help="The questions decide (questions_decide) only while fewer than this "
                                         "share of the new chunks are uncovered: beyond it the new documents are "
                                         "another kind of text, and the documents decide.")
    worst_questions: int = option(10, check=_positive, help="Worst-served logged questions shown in the report.")
    examples: int = option(5, check=_positive, help="Least covered new chunks shown in the report.")
    seed: int = option(0, help="Seed of every sample and permutation (same seed, same report).")
    batch_size: int = option(32, check=_positive, help="Texts per encoding batch.")
    precision: str = option("auto", choices=("auto", "fp32", "bf16", "fp16"),
                            help="Encoding precision; auto = fp16 on CUDA, bf16 on CPUs that have it, else fp32 "
                                 "(keep it as bench had it, so the cached embeddings are reused).")
    cache_path: str | None = option(None, path=True, help="Embedding cache (default "
                                    "$KIT_CACHE_DIR/embeddings.sqlite).")
    progress: bool = option(True, yaml=False, help="Show progress bars.")


@dataclass
class DriftFiles:
    """What `kit drift` reads: the pipeline config (its workdir holds the deployed model) and a question log."""

    config: str = option(argument=True, yaml=False, help="Pipeline YAML whose workdir holds the deployed model and "
                         "whose prep.inputs name the documents as they are now.")
    log: str | None = option(None, yaml=False, help="Question log: one question per line (JSONL {text|query|"
                             "question} or a JSON string; a .txt file: plain lines). No labels needed.")
