"""An honest recommendation: differences carry a paired-bootstrap interval, "paid off" only when it excludes
zero, the kind of eval questions is said, a threshold is offered only when useful."""
from __future__ import annotations

import numpy as np
import pytest

from kit.bench.metrics import mean_interval, paired_bootstrap
from kit.bench.recommend import recommend


def _entry(spec, rr, tpr=0.9, general=None):
    rr = [float(x) for x in rr]
    m = float(np.mean(rr))
    e = {"spec": spec, "kind": "dense", "price_per_1m_tokens_usd": 0.0,
         "domain": {"metrics": {"mrr@10": m, "recall@10": m}, "per_query": {"mrr@10": rr},
                    "similarity": {"threshold": {"threshold": 0.8, "tpr": tpr, "fpr": 0.3}}}}
    if general is not None:
        e["general"] = {"metrics": {"mrr@10": general}}
    return e


def _results(ft_rr, base_rr, info=None, tpr=0.9):
    return {"options": {"k": [1, 10]}, "baseline": "base", "sets": {"domain": {"queries": len(base_rr)}},
            "eval_info": info or {"questions": "real", "holdout": "gold", "lexical_overlap": 0.31},
            "models": {"base": _entry("local:bge", base_rr, tpr), "fine-tuned": _entry("local:work/ft", ft_rr, tpr)}}


def test_paired_bootstrap_intervals():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, 400)
    same = paired_bootstrap(a, a)
    assert same["diff"] == 0 and same["diff_lo"] == 0 == same["diff_hi"] and not same["significant"]
    shifted = paired_bootstrap(a, a + 0.1)   # every question better by 0.1: no noise in the difference
    assert shifted["diff_lo"] == pytest.approx(0.1) and shifted["diff_hi"] == pytest.approx(0.1)
    assert shifted["significant"] and shifted["ratio_lo"] > 1
    noisy = paired_bootstrap(a, np.clip(a + rng.normal(0.0, 0.3, 400), 0, 1), seed=1)
    assert noisy["diff_lo"] < noisy["diff"] < noisy["diff_hi"]
    lo, hi = mean_interval(a)
    assert lo < a.mean() < hi


def test_a_gain_inside_the_noise_is_not_called_a_pay_off():
    rng = np.random.default_rng(1)
    base = rng.choice([0, 1, 0.5, 0.33], size=300)
    ft = base.copy()
    perm = rng.permutation(300)
    ft[perm[:25]], ft[perm[25:48]] = 1.0, 0.0   # some questions won, about as many lost: noise, not a gain
    base, ft = base.tolist(), ft.tolist()
    rec = recommend(_results(ft, base))
    text = "\n".join(rec["text"])
    assert "Fine-tuning paid off" not in text and "no tuned model is significantly better than base" in text
    assert rec["recommended"] == "base" and rec["fine_tuning"]["fine-tuned"]["ci"]["significant"] is False
    assert "95% CI" in text and "over 300 real questions" in text


def test_a_significant_gain_is_recommended_with_its_interval():
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, 500)
    ft = np.clip(base + rng.normal(0.08, 0.05, 500), 0, 1)
    rec = recommend(_results(ft.tolist(), base.tolist()))
    text = "\n".join(rec["text"])
    assert rec["recommended"] == "fine-tuned" and "Fine-tuning paid off: fine-tuned is +" in text
    assert "(95% CI +" in text and "Measured on 500 real user questions (held out: gold); 31%" in text


def test_generated_questions_are_said_to_flatter_and_useless_thresholds_are_not_offered():
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 1, 200)
    info = {"questions": "generated", "generators": {"ict": 150, "keywords": 50}, "lexical_overlap": 0.93}
    rec = recommend(_results(base.tolist(), base.tolist(), info=info, tpr=0.55))
    text = "\n".join(rec["text"])
    assert text.startswith("Measured on 200 questions generated from the passages themselves (ict, keywords); 93%")
    assert "BM25 wins them easily" in text
    assert "No similarity threshold is suggested" in text and "keep only 55% of correct passages" in text
    useful = "\n".join(recommend(_results(base.tolist(), base.tolist(), tpr=0.9))["text"])
    assert "a similarity cut-off at 0.800 keeps 90% of correct passages" in useful and "10% of correct answers" in useful
