"""The promotion gate (kit/versions/gate.py): a pure function of per-question figures. Promote only when the candidate
is significantly better on the new documents' questions and not significantly worse on the frozen ones."""
import numpy as np
import pytest

from kit.versions.gate import KEEP, PROMOTE, GateRule, decide


def rr(rng, n, p_hit, ranks=(1, 2, 3, 5, 10)):
    """Reciprocal ranks as a retrieval model gives them: a hit at one of a few ranks with probability p_hit, else 0."""
    hits = rng.random(n) < p_hit
    return [1.0 / rng.choice(ranks) if h else 0.0 for h in hits]


def paired(rng, base, flip_up=0.0, flip_down=0.0):
    """A second model on the same questions: each question improved to rank 1 (flip_up) or lost (flip_down)."""
    out = []
    for x in base:
        u = rng.random()
        out.append(1.0 if u < flip_up else 0.0 if u < flip_up + flip_down else x)
    return out


def test_better_on_new_and_equal_on_frozen_promotes():
    rng = np.random.default_rng(1)
    new_dep, frozen_dep = rr(rng, 120, 0.4), rr(rng, 200, 0.6)
    v = decide(new_dep, paired(rng, new_dep, flip_up=0.35), frozen_dep, list(frozen_dep))
    assert v["decision"] == PROMOTE, v["reasons"]
    assert v["figures"]["new"]["diff_lo"] > 0 and v["figures"]["frozen"]["diff"] == 0
    assert v["reasons"][0].startswith("significantly better on the new documents' questions (120 questions)")
    assert v["reasons"][1].startswith("not significantly worse on the frozen questions (200 questions)")


def test_better_on_new_but_significantly_worse_on_frozen_keeps():
    rng = np.random.default_rng(2)
    new_dep, frozen_dep = rr(rng, 120, 0.4), rr(rng, 200, 0.7)
    v = decide(new_dep, paired(rng, new_dep, flip_up=0.35), frozen_dep, paired(rng, frozen_dep, flip_down=0.3))
    assert v["decision"] == KEEP
    assert v["figures"]["frozen"]["diff_hi"] < 0 and v["figures"]["new"]["diff_lo"] > 0
    assert len(v["reasons"]) == 2 and v["reasons"][0].startswith("significantly worse on the frozen questions")
    assert "95% CI" in v["reasons"][0]


def test_no_significant_gain_on_new_keeps():
    rng = np.random.default_rng(3)
    new_dep, frozen_dep = rr(rng, 40, 0.5), rr(rng, 100, 0.5)
    noisy = paired(rng, new_dep, flip_up=0.05, flip_down=0.05)       # noise, no real gain
    v = decide(new_dep, noisy, frozen_dep, list(frozen_dep))
    assert v["decision"] == KEEP
    f = v["figures"]["new"]
    assert f["diff_lo"] <= 0 <= f["diff_hi"]
    assert v["reasons"][0].startswith("not significantly better on the new documents' questions (40 questions)")


def test_a_small_frozen_loss_inside_the_interval_still_promotes_and_max_loss_and_min_gain_apply():
    rng = np.random.default_rng(4)
    new_dep, frozen_dep = rr(rng, 150, 0.3), rr(rng, 150, 0.6)
    new_cand = paired(rng, new_dep, flip_up=0.3)
    frozen_cand = paired(rng, frozen_dep, flip_down=0.02)          # a loss too small to be told from noise
    v = decide(new_dep, new_cand, frozen_dep, frozen_cand)
    assert v["decision"] == PROMOTE and v["figures"]["frozen"]["diff"] < 0 <= v["figures"]["frozen"]["diff_hi"]
    gain_lo = v["figures"]["new"]["diff_lo"]
    assert decide(new_dep, new_cand, frozen_dep, frozen_cand, GateRule(min_gain=gain_lo + 0.01))["decision"] == KEEP
    worse = paired(rng, frozen_dep, flip_down=0.25)
    assert decide(new_dep, new_cand, frozen_dep, worse)["decision"] == KEEP
    hi = decide(new_dep, new_cand, frozen_dep, worse)["figures"]["frozen"]["diff_hi"]
    assert decide(new_dep, new_cand, frozen_dep, worse, GateRule(max_loss=-hi + 0.01))["decision"] == PROMOTE


def test_no_new_questions_keeps_and_mismatched_lists_are_refused():
    v = decide([], [], [0.5, 1.0], [0.5, 1.0])
    assert v["decision"] == KEEP and v["figures"]["new"] is None and "no eval question about the new" in v["reasons"][0]
    v = decide([0.0] * 30, [1.0] * 30, [], [])     # a certain gain, but nothing guards the old questions
    assert v["decision"] == KEEP and v["reasons"][0].startswith("no frozen eval question")
    assert v["reasons"][1].startswith("significantly better")
    with pytest.raises(ValueError, match="same questions"):
        decide([0.0, 1.0], [1.0], [1.0], [1.0])


def test_the_verdict_is_deterministic_and_json_ready():
    import json

    rng = np.random.default_rng(5)
    a, b = rr(rng, 60, 0.5), rr(rng, 60, 0.5)
    v1, v2 = decide(a, b, a, b), decide(a, b, a, b)
    assert v1 == v2 and json.loads(json.dumps(v1)) == v1
    assert v1["rule"] == {"level": 0.95, "resamples": 2000, "seed": 0, "min_gain": 0.0, "max_loss": 0.0}
