"""The verdict: any signal that votes re-trains, unless only the documents voted and the questions about the new
documents are shown to be served as well (then index them; the model need not change)."""
from __future__ import annotations

from kit.drift.verdict import NO_RETRAIN, RETRAIN, decide

DOCS = "documents: 40 new, 0 changed, 0 gone"
COVERAGE = (True, "coverage: 30% uncovered: new material")
DIST = (True, "distribution: the new chunks differ")
Q_OK = (False, "questions: served as well")
Q_WORSE = (True, "questions: served worse than eval")
SERVED = (True, "questions about the new documents: 60 logged questions ...: the deployed model serves them as well")
NOT_SHOWN = (False, "questions about the new documents: 60 ..., not below 0.58: not shown to be served as well")


def test_documents_alone_retrain_and_say_why():
    verdict, reasons = decide([COVERAGE, DIST, Q_OK], DOCS)
    assert verdict == RETRAIN and reasons[:3] == [DOCS, COVERAGE[1], DIST[1]]


def test_questions_about_the_new_documents_served_as_well_decide_no_retrain():
    verdict, reasons = decide([COVERAGE, DIST, Q_OK], DOCS, SERVED)
    assert verdict == NO_RETRAIN
    assert reasons[0] == DOCS and reasons[1].startswith(SERVED[1]) and "index the new documents" in reasons[1]
    assert reasons[2:4] == [f"documents changed: {COVERAGE[1]}", f"documents changed: {DIST[1]}"]


def test_the_questions_cannot_overrule_themselves_or_decide_without_being_shown():
    assert decide([COVERAGE, Q_WORSE], DOCS, SERVED)[0] == RETRAIN        # the log itself says served worse
    verdict, reasons = decide([COVERAGE, DIST, Q_OK], DOCS, NOT_SHOWN)
    assert verdict == RETRAIN and reasons[-1] == NOT_SHOWN[1]
    assert decide([COVERAGE, (None, "questions: does not vote")], DOCS, (None, ""))[0] == RETRAIN
    assert decide([(False, "coverage: covered"), (False, "distribution: same"), Q_OK], DOCS, SERVED)[0] == NO_RETRAIN
