"""Coverage and the distribution test on real text (stard_dev articles; the E.SUN bank FAQ as another domain),
embedded with the tiny random XLM-R; and the votes they give."""
from __future__ import annotations

import numpy as np
import pytest

from kit.drift.signals import Coverage, Distribution, calibrate, coverage, distribution
from kit.drift.verdict import NO_RETRAIN, RETRAIN, coverage_vote, decide, distribution_vote
from kit.formats import titled

from .conftest import sample


@pytest.fixture(scope="module")
def vectors(encoder, stard_rows, faq_rows):
    """(training vectors and their ids, same-distribution new vectors, FAQ vectors)."""
    rows = sample(stard_rows, 450, 1)
    v = encoder.encode([titled(r["title"], r["text"]) for r in rows])
    faq = encoder.encode([titled(r["title"], r["text"]) for r in faq_rows[:150]])
    return v[:300], [r["_id"] for r in rows[:300]], v[300:], faq


def test_coverage_is_calibrated_on_the_training_corpus(vectors):
    ref, ids, same, faq = vectors
    ok = coverage(ref, ids, ids, same, 0.05, 3000, 0)
    # the threshold is the 5% quantile of the training chunks' own nearest-neighbour similarities ...
    assert ok.calibration_chunks == 300 and ok.calibration_share <= 0.05
    # ... so new chunks of the same distribution fall below it about as often: no signal
    assert ok.share < 0.12 and ok.p_value > 0.05
    off = coverage(ref, ids, ids, faq, 0.05, 3000, 0)
    assert off.threshold == ok.threshold
    assert off.share > 2 * ok.share and off.p_value < 0.01
    assert len(off.nearest) == 150 and max(off.nearest_index) < 300


def test_calibration_leaves_out_the_chunks_own_document_and_identical_texts(encoder, stard_rows):
    """A new document has no sibling chunk in the training corpus, so a training chunk's siblings must not
    calibrate coverage: counted, they would make every new document look uncovered."""
    long = [r for r in stard_rows if r["text"].count("\n\n") >= 2][:60]
    paras = [(r["_id"], p) for r in long for p in r["text"].split("\n\n")[:2]]
    v = encoder.encode([titled(r["title"], p) for r in long for p in r["text"].split("\n\n")[:2]])
    each_alone = calibrate(v, [f"{i}" for i in range(len(v))], list(range(len(v))), 1000, np.random.default_rng(0))
    by_document = calibrate(v, [d for d, _ in paras], list(range(len(v))), 1000, np.random.default_rng(0))
    assert np.median(by_document) < np.median(each_alone)
    dup = np.concatenate([v, v[:1]])                  # an identical text in another document
    sims = calibrate(dup, [f"{i}" for i in range(len(dup))], list(range(len(v))) + [0], 1000,
                     np.random.default_rng(0))
    assert sims.max() < 0.99999


def test_distribution_test_flags_another_domain_and_not_a_same_distribution_split(vectors):
    ref, _, same, faq = vectors
    ok = distribution(ref, same, 150, 200, 5, 0)
    assert ok.p_value > 0.05 and ok.auc < 0.6 and ok.new_sample == ok.training_sample == 150
    off = distribution(ref, faq, 150, 200, 5, 0)
    assert off.p_value < 0.01 and off.auc > 0.9 and off.mmd2 > ok.mmd2
    assert off.p_value >= 1 / 201                     # a permutation p-value is never below 1/(n+1)
    assert distribution(ref, faq, 150, 200, 5, 0) == off  # seeded: same input, same result


def test_votes_need_significance_and_size():
    cov = Coverage(threshold=0.8, quantile=0.05, calibration_chunks=1000, calibration_share=0.05, new_chunks=400,
                   uncovered=40, share=0.10, p_value=0.001)
    assert coverage_vote(cov, 0.01, 0.10)[0] is True
    assert coverage_vote(cov, 0.01, 0.20)[0] is False             # significant but too small
    assert coverage_vote(Coverage(**{**cov.__dict__, "p_value": 0.02}), 0.01, 0.10)[0] is False
    dist = Distribution(new_sample=500, training_sample=500, mmd2=0.01, p_value=0.001, permutations=1000, auc=0.58,
                        bandwidth=0.5)
    assert distribution_vote(dist, 0.01, 0.60)[0] is False        # AUC below the floor
    assert distribution_vote(Distribution(**{**dist.__dict__, "auc": 0.7}), 0.01, 0.60)[0] is True
    assert distribution_vote(None, 0.01, 0.6, "3 new chunks")[0] is None
    verdict, reasons = decide([(False, "a"), (True, "b"), (None, "c")], "documents: ...")
    assert verdict == RETRAIN and reasons == ["documents: ...", "b", "a", "c"]
    assert decide([(False, "a"), (None, "c")])[0] == NO_RETRAIN
