"""The offline judge: its scores, the rule with clicks, and its precision on a real slice of stard_dev."""
from __future__ import annotations

import numpy as np
import pytest

from kit.questionlog import LogOptions
from kit.questionlog.candidates import Candidates, find_candidates
from kit.questionlog.judges import decide, offline_scores, offline_verdicts


def _cands(dense: list[list[int]], bm25: list[list[int]], dense_scores=None) -> Candidates:
    d = np.array(dense)
    s = np.array(dense_scores) if dense_scores is not None else np.tile(np.linspace(0.9, 0.5, d.shape[1]), (len(d), 1))
    b = np.array(bm25)
    return Candidates(d, s.astype(np.float32), b, np.tile(np.linspace(9, 1, b.shape[1]), (len(b), 1)),
                      np.zeros((len(d), 4), dtype=np.float32))


def test_agreement_scores_both_rankings_and_zero_when_either_leaves_a_passage_out():
    c = _cands([[5, 7, 9]], [[7, 5, 2]])
    s = offline_scores(c, 0, "agreement")
    assert s[5] == pytest.approx(np.sqrt(1 / 2)) and s[7] == pytest.approx(np.sqrt(1 / 2))
    assert s[9] == 0.0 and s[2] == 0.0
    c = _cands([[5, 7, 9]], [[5, 2, 7]])
    assert offline_scores(c, 0, "agreement")[5] == 1.0


def test_bm25_passages_without_a_shared_word_rank_nothing():
    c = _cands([[5, 7, 9]], [[5, 2, 7]])
    c.bm25_scores[0] = [0.0, 0.0, 0.0]
    assert offline_scores(c, 0, "agreement")[5] == 0.0


def test_dense_margin_scores_the_dense_top1_by_its_lead():
    c = _cands([[5, 7, 9]], [[1, 2, 3]], dense_scores=[[0.93, 0.91, 0.5]])
    s = offline_scores(c, 0, "dense_margin")
    assert s[5] == pytest.approx(0.02, abs=1e-6) and s[7] == 0.0 and s[1] == 0.0


def test_the_threshold_and_max_labels_decide():
    scores = {1: 1.0, 2: 0.71, 3: 0.5}
    assert decide(scores, 0.7, 2, set(), 0.5) == ([1, 2], "judge")
    assert decide(scores, 0.7, 1, set(), 0.5) == ([1], "judge")
    assert decide(scores, 1.0, 2, set(), 0.5) == ([1], "judge")


def test_click_trust_lowers_the_bar_for_clicked_passages_only():
    scores = {1: 1.0, 3: 0.5, 4: 0.0}
    assert decide(scores, 1.0, 2, {3}, 0.5) == ([3, 1], "click")     # 0.5 >= (1 - 0.5) x 1.0
    assert decide(scores, 1.0, 2, {3}, 0.4) == ([1], "judge")        # 0.5 < 0.6
    assert decide(scores, 1.0, 2, {4}, 1.0) == ([4, 1], "click")     # full trust: a click is a label
    assert decide(scores, 1.0, 2, {4}, 0.0) == ([1], "judge")        # no trust: the judge alone
    assert decide({1: 0.2}, 1.0, 2, {9}, 1.0) == ([9], "click")      # a clicked passage outside the candidates


def test_offline_verdicts_keep_every_candidates_score_and_a_reason():
    c = _cands([[5, 7, 9], [1, 2, 3]], [[5, 2, 7], [3, 2, 1]])
    v = offline_verdicts(c, [set(), set()], LogOptions())
    assert v[0].accepted == [5] and v[0].score == 1.0 and "model rank 1, BM25 rank 1" in v[0].reason
    assert v[1].accepted == [] and set(v[1].scores) == {1, 2, 3} and "< 1" in v[1].reason


def test_offline_judge_on_real_questions_is_right_more_often_than_either_retriever(stard_slice, zh_e5_path):
    """40 real stard_dev questions over their gold articles and 200 others: the labels the judge accepts are gold
    articles far more often than the dense top-1 of all questions is (here 25 of 26 against 0.78 for the dense
    top-1; on the whole corpus, 328 questions: 0.70 against 0.34)."""
    import json

    corpus_path, questions = stard_slice
    chunks = [json.loads(x) for x in corpus_path.read_text(encoding="utf-8").splitlines()]
    opts = LogOptions(progress=False)
    cands = find_candidates([q["text"] for q in questions], chunks, str(zh_e5_path), opts)
    verdicts = offline_verdicts(cands, [set()] * len(questions), opts)
    labelled = [(v, q) for v, q in zip(verdicts, questions) if v.accepted]
    right = sum(chunks[v.accepted[0]]["id"] in q["gold"] for v, q in labelled)
    dense_top1 = np.mean([chunks[int(cands.dense_ids[i, 0])]["id"] in q["gold"] for i, q in enumerate(questions)])
    assert len(labelled) >= 8, len(labelled)
    assert right / len(labelled) >= 0.7, (right, len(labelled))
    assert right / len(labelled) > dense_top1 + 0.1, (right / len(labelled), dense_top1)


def test_the_candidates_bm25_takes_logs_bm25_tokens(tiny_bert):
    chunks = [{"id": "a", "text": "劳动者在试用期间被证明不符合录用条件的，用人单位可以解除劳动合同。"},
              {"id": "b", "text": "试用人员的名单应当公示。"}, {"id": "c", "text": "公司年度报告显示营业收入同比增长。"}]
    first = {}
    for tokens in ("words", "words+bigrams"):
        cands = find_candidates(["试用期有多长"], chunks, str(tiny_bert), LogOptions(progress=False, bm25_tokens=tokens))
        first[tokens] = int(cands.bm25_ids[0, 0])
    assert first == {"words": 1, "words+bigrams": 0}      # only the bigram 用期 finds the article that answers
