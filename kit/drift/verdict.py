"""The verdict from the signals: re-train when any signal that may vote is both significant (p < alpha) and large
enough to matter (its effect floor); every signal says, in one reason line, which way it went and why."""
from __future__ import annotations

from .signals import Coverage, Distribution

RETRAIN, NO_RETRAIN = "retrain", "no_retrain"


def coverage_vote(c: Coverage | None, alpha: float, min_share: float) -> tuple[bool | None, str]:
    if c is None or c.new_chunks == 0:
        return None, "coverage: no new chunk to measure"
    vote = c.p_value < alpha and c.share >= min_share
    return vote, (f"coverage: {c.uncovered} of {c.new_chunks} new chunks ({c.share:.0%}) are further from the "
                  f"training corpus than {c.quantile:.0%} of its own chunks are from each other (similarity < "
                  f"{c.threshold:.3f}); Fisher p = {c.p_value:.2g}"
                  + (f" < {alpha:g} and >= {min_share:.0%}: new material" if vote
                     else f"; needs p < {alpha:g} and >= {min_share:.0%}: covered"))


def distribution_vote(d: Distribution | None, alpha: float, min_auc: float, why_not: str = "") -> tuple[bool | None, str]:
    if d is None:
        return None, f"distribution: not tested ({why_not or 'no new chunk'})"
    auc_ok = d.auc is not None and d.auc >= min_auc
    vote = d.p_value < alpha and auc_ok
    auc = "n/a" if d.auc is None else f"{d.auc:.2f}"
    return vote, (f"distribution: new vs training chunks ({d.new_sample} vs {d.training_sample}) MMD permutation "
                  f"p = {d.p_value:.2g}, domain-classifier AUC {auc}"
                  + (f": p < {alpha:g} and AUC >= {min_auc:.2f}, the new chunks differ" if vote
                     else f"; needs p < {alpha:g} and AUC >= {min_auc:.2f}: same distribution"))


def question_vote(q: dict | None, alpha: float, min_effect: float, may_vote: bool, why_not: str) -> tuple[bool | None, str]:
    """The log votes when its questions' top-1 scores are significantly lower than the eval questions' (Mann-Whitney
    U, one-sided) by at least ``min_effect`` (the chance a logged question scores below an eval question). The share
    below the eval's low quantile is reported, not voted on: it missed a third of the unseen-topic trials that the
    rank test caught (benchmarks/drift_questions.py)."""
    if q is None:
        return None, "questions: no question log given"
    t = q["top1"]
    line = (f"questions: {q['poorly_served']} of {q['logged']} logged questions ({q['share']:.0%}) score below "
            f"the eval questions' {q['quantile']:.0%} quantile of top-1 similarity ({q['threshold']:.3f}); a logged "
            f"question scores below an eval question with chance {t['effect']:.2f} (Mann-Whitney p = "
            f"{t['mann_whitney_p']:.2g})")
    significant = t["mann_whitney_p"] < alpha and t["effect"] >= min_effect
    if not may_vote:
        return None, line + f"; does not vote ({why_not})"
    return significant, line + (f" < {alpha:g}, chance >= {min_effect:.2f}: served worse than eval" if significant
                                else f"; needs p < {alpha:g} and chance >= {min_effect:.2f}: served as well")


def served_as_well(n: dict | None, min_effect: float, may_vote: bool, uncovered: float | None = None,
                   max_uncovered: float = 1.0) -> tuple[bool | None, str]:
    """Whether the logged questions about the new documents (best passage a new chunk) are shown to be served as
    well as the eval questions: the upper bound of their effect below the question log's floor, while the new
    documents are not another kind of text altogether (``uncovered``, the share of new chunks coverage found
    uncovered, below ``max_uncovered``). Measured on stard_dev (benchmarks/update_sequence.py): once new laws
    arrived, the model trained without them served their real questions as well as a full re-run and an update did,
    while the documents' signals said the documents changed (they had). On another domain a confident top-1 says
    little: E.SUN's bank-FAQ questions over its FAQ entries look as well served as law questions
    (benchmarks/drift_questions.py), and there every new chunk is uncovered."""
    if n is None or not may_vote:
        return None, ""
    head = f"questions about the new documents: {n['logged']} logged questions find their best passage in a new chunk"
    if n["effect"] is None:
        return None, head + f", fewer than {n['min_questions']}: too few to show how they are served"
    ok = n["effect_upper"] < min_effect
    line = head + (f"; chance they score below an eval question {n['effect']:.2f}, at most {n['effect_upper']:.2f} "
                   f"({1 - n['alpha']:.0%} bound)"
                   + (f" < {min_effect:.2f}: the deployed model serves them as well as the questions it was chosen on"
                      if ok else f", not below {min_effect:.2f}: not shown to be served as well"))
    if ok and uncovered is not None and uncovered >= max_uncovered:
        return False, line + (f"; but {uncovered:.0%} of the new chunks are uncovered (>= {max_uncovered:.0%}): "
                              f"another kind of document, where a confident top-1 says little")
    return ok, line


def decide(votes: list[tuple[bool | None, str]], documents_line: str | None = None,
           served: tuple[bool | None, str] | None = None) -> tuple[str, list[str]]:
    """(verdict, reasons): the reasons that voted for re-training first, then the others. ``votes`` ends with the
    question log's vote when there is one. When only the documents voted and ``served`` shows the questions about
    the new documents served as well, the questions decide: the new documents need indexing, not a new model."""
    reasons = ([documents_line] if documents_line else [])
    yes = [r for v, r in votes if v]
    rest = [r for v, r in votes if not v]
    if yes and served and served[0] and votes[-1][0] is False:
        return NO_RETRAIN, reasons + [served[1] + "; index the new documents (kit index), re-training is not worth "
                                      "it for them", *[f"documents changed: {r}" for r in yes], *rest]
    return (RETRAIN if yes else NO_RETRAIN), reasons + yes + rest + ([served[1]] if served and served[1] else [])
