"""The promotion gate: does a candidate replace the deployed model?

A pure function of per-question figures (the report's paired bootstrap, :func:`kit.bench.metrics.paired_bootstrap`,
over the same questions for both models, so question difficulty cancels out):

- the **new documents' questions** (eval questions about the documents an update added or changed): the candidate
  must be significantly better -- the lower end of the interval of (candidate - deployed) above ``min_gain``;
- the **frozen questions** (the eval sets the deployed model was chosen on, kept unchanged): the candidate must not
  be significantly worse -- the upper end of the interval not below ``-max_loss``.

Both hold: ``promote``. Otherwise ``keep``, with every reason that failed, in words and figures.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..bench.metrics import paired_bootstrap

PROMOTE, KEEP = "promote", "keep"


@dataclass
class GateRule:
    level: float = 0.95          # interval level of the paired bootstrap
    resamples: int = 2000
    seed: int = 0
    min_gain: float = 0.0        # on the new documents' questions: the interval's lower end must exceed this
    max_loss: float = 0.0        # on the frozen questions: the interval's upper end must not fall below -max_loss


def _line(what: str, f: dict, metric: str, level: float) -> str:
    return (f"{what} ({f['n_questions']} questions): {metric} {f['base']:.4f} deployed -> {f['other']:.4f} "
            f"candidate, difference {f['diff']:+.4f} ({level:.0%} CI {f['diff_lo']:+.4f} to {f['diff_hi']:+.4f})")


def _compare(deployed: list[float], candidate: list[float], rule: GateRule, what: str) -> dict | None:
    if len(deployed) != len(candidate):
        raise ValueError(f"{what}: {len(deployed)} figures for the deployed model but {len(candidate)} for the "
                         f"candidate; the gate compares the same questions")
    if not deployed:
        return None
    return paired_bootstrap(deployed, candidate, n=rule.resamples, seed=rule.seed, level=rule.level)


def decide(new_deployed: list[float], new_candidate: list[float], frozen_deployed: list[float],
           frozen_candidate: list[float], rule: GateRule | None = None, metric: str = "mrr@10") -> dict:
    """{decision: promote|keep, reasons: [...], figures: {new, frozen}: paired bootstrap of candidate vs deployed
    (None where there were no questions), rule}."""
    rule = rule or GateRule()
    new = _compare(new_deployed, new_candidate, rule, "new documents' questions")
    frozen = _compare(frozen_deployed, frozen_candidate, rule, "frozen questions")
    problems, passed = [], []
    if new is None:
        problems.append("no eval question about the new documents: a gain cannot be shown")
    elif new["diff_lo"] > rule.min_gain:
        passed.append("significantly better on " + _line("the new documents' questions", new, metric, rule.level))
    else:
        floor = f"above {rule.min_gain:+.4f}" if rule.min_gain else "above 0"
        problems.append("not significantly better on " + _line("the new documents' questions", new, metric,
                                                                    rule.level) + f": the lower end is not {floor}")
    if frozen is None:
        problems.append("no frozen eval question: a loss on what the deployed model served cannot be ruled out")
    elif frozen["diff_hi"] < -rule.max_loss:
        problems.append("significantly worse on " + _line("the frozen questions", frozen, metric, rule.level)
                        + (f", beyond the allowed loss {rule.max_loss:.4f}" if rule.max_loss else ""))
    else:
        passed.append("not significantly worse on " + _line("the frozen questions", frozen, metric, rule.level))
    decision = KEEP if problems else PROMOTE
    return {"decision": decision, "reasons": problems + passed if problems else passed,
            "figures": {"new": new, "frozen": frozen}, "metric": metric, "rule": asdict(rule)}
