"""The question log: reading it (bad lines named file:line) and how its questions are served against the eval
questions, with real questions (stard_dev's layperson questions; the E.SUN bank FAQ questions as another domain)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kit.drift.options import DriftOptions
from kit.drift.questions import compare, read_log, top_scores, worst
from kit.drift.verdict import question_vote
from kit.formats import titled
from kit.io import KitError

from .conftest import sample


def test_a_log_is_jsonl_objects_or_strings_or_plain_lines(tmp_path):
    log = tmp_path / "q.jsonl"
    log.write_text('{"text": "公司不签劳动合同怎么办？"}\n\n{"query": "试用期多久"}\n"加班费怎么算"\n{"question": " 工伤 "}\n',
                   encoding="utf-8")
    assert read_log(log) == ["公司不签劳动合同怎么办？", "试用期多久", "加班费怎么算", "工伤"]
    txt = tmp_path / "q.txt"
    txt.write_bytes("\ufeff公司不签劳动合同怎么办？\n\n试用期多久\n".encode("utf-8"))
    assert read_log(txt) == ["公司不签劳动合同怎么办？", "试用期多久"]


@pytest.mark.parametrize("content, expect", [
    (b"", "holds no question"),
    (b"\n  \n", "holds no question"),
    ('{"text": "试用期多久"}\n{"text": "加班\n'.encode(), "q.jsonl:2: not valid JSON"),
    ('{"text": "试用期多久"}\n{"label": 1}\n'.encode(), "q.jsonl:2: expected a question"),
    ('{"text": "试用期多久"}\n\n'.encode() + "{\"text\": \"工伤\"}".encode("gb18030") + b"\n", "q.jsonl:3: not UTF-8"),
])
def test_an_unreadable_log_is_one_line_naming_file_and_line(tmp_path, content, expect):
    log = tmp_path / "q.jsonl"
    log.write_bytes(content)
    with pytest.raises(KitError) as e:
        read_log(log)
    assert expect in str(e.value) and "\n" not in str(e.value)


def test_a_missing_log_or_a_folder_is_an_error(tmp_path):
    with pytest.raises(KitError, match="not found"):
        read_log(tmp_path / "none.jsonl")
    with pytest.raises(KitError, match="not a file"):
        read_log(tmp_path)


def char_vectors(texts: list[str]) -> np.ndarray:
    """Unit vectors of hashed character 1-2-grams: a lexical embedding that, unlike a random model, ranks passages
    by what they say (the comparison itself does not care which encoder scored the questions)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer="char", ngram_range=(1, 2), n_features=2 ** 13,
                             alternate_sign=False).transform(texts).toarray().astype(np.float32)


@pytest.fixture(scope="module")
def served(stard_rows, stard_queries, faq_queries):
    rows = sample(stard_rows, 400, 2)
    corpus = char_vectors([titled(r["title"], r["text"]) for r in rows])
    qs = sample([{"q": q} for q in stard_queries], 300, 3)
    q = char_vectors([x["q"] for x in qs])
    return rows, corpus, q[:150], q[150:], [x["q"] for x in qs[150:]], char_vectors(faq_queries)


def test_questions_like_the_eval_ones_are_served_as_well(served):
    _, corpus, eval_q, same_q, _, _ = served
    e, _ = top_scores(eval_q, corpus)
    s, _ = top_scores(same_q, corpus)
    cmp = compare(e, s, 0.10)
    assert cmp["eval"] == cmp["logged"] == 150 and abs(cmp["expected_share"] - 0.10) < 0.02
    assert cmp["p_value"] > 0.05 and cmp["share"] < 0.2
    assert cmp["top1"]["mann_whitney_p"] > 0.05 and 0.4 < cmp["top1"]["effect"] < 0.58
    vote, line = question_vote(cmp, 0.01, DriftOptions().question_min_effect, True, "")
    assert vote is False and "served as well" in line


def test_questions_of_another_domain_are_served_worse_and_the_worst_are_named(served):
    rows, corpus, eval_q, _, _, faq_q = served
    e, _ = top_scores(eval_q, corpus)
    f, idx = top_scores(faq_q, corpus)
    cmp = compare(e, f, 0.10)
    assert cmp["share"] > 0.3 and cmp["p_value"] < 0.01
    assert cmp["top1"]["logged"]["median"] < cmp["top1"]["eval"]["median"]
    assert cmp["top1"]["effect"] > 0.9 and cmp["top1"]["mann_whitney_p"] < 0.01
    vote, line = question_vote(cmp, 0.01, DriftOptions().question_min_effect, True, "")
    assert vote is True and "served worse than eval" in line
    assert question_vote(cmp, 0.01, 0.58, False, "generated eval questions")[0] is None   # may not vote: reported
    names = [f"faq question {i}" for i in range(len(f))]
    passages = [{"id": r["_id"], "doc": r["title"], "text": r["text"]} for r in rows]
    w = worst(names, f, idx, passages, 5)
    assert [x["top1"] for x in w] == sorted(x["top1"] for x in w) and len(w) == 5
    assert w[0]["top1"] == pytest.approx(float(f[:, 0].min()), abs=1e-4)
    assert w[0]["question"] == names[int(np.argmin(f[:, 0]))] and w[0]["passage_id"] in {r["_id"] for r in rows}
    assert json.dumps(w, ensure_ascii=False)          # report-ready


def test_the_effect_is_the_mann_whitney_one_and_its_bound_shows_only_what_the_log_can(served):
    """Questions about the new documents decide only when their effect's upper bound is below the floor: identical
    scores show it with 150 questions, not with 15 (the bound is as wide as the log is small), and another domain's
    questions never do."""
    from kit.drift.questions import effect, new_documents
    from kit.drift.verdict import served_as_well

    _, corpus, eval_q, same_q, _, faq_q = served
    e, _ = top_scores(eval_q, corpus)
    s, _ = top_scores(same_q, corpus)
    assert effect(s[:, 0], e[:, 0]) == pytest.approx(compare(e, s, 0.1)["top1"]["effect"], abs=1e-4)
    floor = DriftOptions().question_min_effect
    everyone = np.ones(len(e), dtype=bool)
    alike = new_documents(e, e, everyone, 0.05, 0, 20)
    assert alike["logged"] == 150 and alike["effect"] == 0.5 and 0.5 < alike["effect_upper"] < floor
    ok, line = served_as_well(alike, floor, True)
    assert ok is True and "serves them as well" in line and "150 logged questions" in line
    assert served_as_well(alike, floor, True, 0.6, 0.9)[0] is True             # new laws: 48-74% uncovered
    other_kind, why = served_as_well(alike, floor, True, 1.0, 0.9)             # another domain: all uncovered
    assert other_kind is False and "another kind of document" in why
    few = new_documents(e, e, np.arange(len(e)) < 15, 0.05, 0, 5)
    assert few["logged"] == 15 and few["effect_upper"] > floor
    assert served_as_well(few, floor, True)[0] is False
    assert served_as_well(new_documents(e, e, np.arange(len(e)) < 15, 0.05, 0, 20), floor, True)[0] is None
    f, _ = top_scores(faq_q, corpus)
    other = new_documents(e, f, np.ones(len(f), dtype=bool), 0.05, 0, 20)
    assert other["effect"] > 0.9 and served_as_well(other, floor, True)[0] is False
    assert served_as_well(alike, floor, False) == (None, "")         # a log that may not vote decides nothing
    assert new_documents(e, e, everyone, 0.05, 0, 20) == alike        # seeded: the same report twice
