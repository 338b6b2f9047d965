"""Which candidates answer a logged question: the offline judge's scores, clicks as weak positives, and the rule
that turns scores into labels (the LLM judge, :mod:`kit.questionlog.llm_judge`, gives scores the same rule reads).

Offline, a candidate is scored by how far two different retrievers agree on it (:data:`OFFLINE_METHODS` in
options.py says what each method is and why ``agreement`` is the default): a dense model and BM25 make different
mistakes, so a passage both put first is right far more often than either's top-1 alone (measured on stard_dev,
benchmarks/RESULTS.md: 0.33 for either retriever's top-1 alone, 0.65-0.73 when both agree).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .candidates import Candidates


@dataclass
class Verdict:
    """A judge's decision on one question."""

    scores: dict[int, float]                        # corpus row -> score (every candidate shown)
    accepted: list[int] = field(default_factory=list)   # rows judged to answer, best first
    reason: str = ""
    failed: str | None = None                       # no verdict (LLM failures): why
    by: str = "judge"                               # judge | click (a click decided it)

    @property
    def score(self) -> float:
        return max(self.scores.values(), default=0.0)


def offline_scores(cands: Candidates, i: int, method: str) -> dict[int, float]:
    """Per candidate row: ``agreement`` = sqrt(1 / (dense rank x BM25 rank)), 0 when either leaves it out;
    ``dense_margin`` = the dense top-1's cosine lead over the top-2 (other candidates 0)."""
    dr, br = cands.dense_ranks(i), cands.bm25_ranks(i)
    if method == "agreement":
        return {j: math.sqrt(1.0 / (dr[j] * br[j])) if j in dr and j in br else 0.0 for j in {**dr, **br}}
    scores = {j: 0.0 for j in {**dr, **br}}
    if dr:
        scores[int(cands.dense_ids[i, 0])] = cands.top1(i)[1]
    return scores


def _offline_reason(cands: Candidates, i: int, best: int | None, score: float, bar: float) -> str:
    if best is None:
        return "no candidate"
    dr, br = cands.dense_ranks(i), cands.bm25_ranks(i)
    ranks = f"model rank {dr.get(best, '-')}, BM25 rank {br.get(best, '-')}"
    verdict = ">=" if score >= bar else "<"
    return f"best candidate: {ranks} (score {score:.3f} {verdict} {bar:g})"


def decide(scores: dict[int, float], bar: float, max_labels: int, clicked: set[int], click_trust: float
           ) -> tuple[list[int], str]:
    """(accepted rows, by): every candidate whose score reaches the bar -- lowered to (1 - click_trust) x bar for a
    clicked passage -- clicked ones first, then by score, at most ``max_labels``."""
    def reaches(j: int) -> bool:
        return scores.get(j, 0.0) >= (bar * (1.0 - click_trust) if j in clicked else bar)

    passed = [j for j in set(scores) | clicked if reaches(j)]
    passed.sort(key=lambda j: (j not in clicked, -scores.get(j, 0.0), j))
    accepted = passed[:max_labels]
    by_click = any(j in clicked and scores.get(j, 0.0) < bar for j in accepted)
    return accepted, "click" if by_click else "judge"


def offline_verdicts(cands: Candidates, clicked: list[set[int]], opts) -> list[Verdict]:
    out = []
    for i, clicks in enumerate(clicked):
        scores = offline_scores(cands, i, opts.offline_method)
        for j in clicks:
            scores.setdefault(j, 0.0)
        accepted, by = decide(scores, opts.bar(), opts.max_labels, clicks, opts.click_trust)
        best = max(scores, key=lambda j: (scores[j], -j), default=None)
        out.append(Verdict(scores, accepted, _offline_reason(cands, i, best, scores.get(best, 0.0), opts.bar()),
                           by=by))
    return out


def with_clicks(v: Verdict, clicks: set[int], opts) -> Verdict:
    """An LLM verdict (scores = its confidence for the passages it named, 0 for the others) with the clicks."""
    if v.failed:
        return v
    scores = dict(v.scores)
    for j in clicks:
        scores.setdefault(j, 0.0)
    accepted, by = decide(scores, opts.bar(), opts.max_labels, clicks, opts.click_trust)
    return Verdict(scores, accepted, v.reason, by=by)
