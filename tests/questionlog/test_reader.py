"""Reading a question log: JSONL, CSV/TSV, plain text, GB18030; bad rows are one file:line line each and the rest
is read; personal data is masked as each question is read."""
from __future__ import annotations

import json

import pytest

from kit.io import KitError, ReadReport
from kit.questionlog import LogOptions
from kit.questionlog.merge import merge_questions, near_eval
from kit.questionlog.privacy import mask
from kit.questionlog.reader import read_log


def _read(*paths, **opts):
    report = ReadReport()
    rows, info = read_log([str(p) for p in paths], LogOptions(**opts), report)
    return rows, info, [str(e) for e in report.errors]


def test_jsonl_with_clicks_timestamps_counts_and_bare_strings(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join([
        json.dumps({"query": "试用期最长多久？", "clicked_id": "ldht-01", "ts": "2024-05-01", "count": 3},
                   ensure_ascii=False),
        json.dumps("没签劳动合同怎么办", ensure_ascii=False),
        json.dumps({"question": "拖欠工资能辞职吗", "answer": "劳动者可以解除劳动合同"}, ensure_ascii=False),
    ]) + "\n", encoding="utf-8")
    rows, info, problems = _read(log)
    assert problems == []
    assert [r.query for r in rows] == ["试用期最长多久？", "没签劳动合同怎么办", "拖欠工资能辞职吗"]
    assert (rows[0].passage_id, rows[0].timestamp, rows[0].count) == ("ldht-01", "2024-05-01", 3)
    assert rows[2].passage_text == "劳动者可以解除劳动合同" and rows[1].count == 1
    assert rows[1].where == f"{log}:2"


def test_csv_in_gb18030_is_read_and_said_so(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("问题,次数,时间\n试用期最长多久,2,2024-05-01\n加班费怎么算,1,2024-05-02\n", encoding="gb18030")
    rows, info, problems = _read(log)
    assert problems == [] and info["encodings"][str(log)] == "gb18030"
    assert [(r.query, r.count) for r in rows] == [("试用期最长多久", 2), ("加班费怎么算", 1)]


def test_bad_rows_are_named_by_file_and_line_and_the_rest_is_read(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text("\n".join([json.dumps({"query": "试用期最长多久"}, ensure_ascii=False),
                               json.dumps({"query": "   "}),
                               json.dumps({"query": "长" * 10_000}),
                               "{broken",
                               json.dumps({"query": "加班费怎么算", "count": "lots"}, ensure_ascii=False),
                               json.dumps({"user": "x"})]) + "\n", encoding="utf-8")
    wrong = tmp_path / "b.csv"
    wrong.write_text("user,clicked\nalice,ldht-01\n", encoding="utf-8")
    rows, _, problems = _read(good, wrong)
    assert [r.query for r in rows] == ["试用期最长多久", "加班费怎么算"]
    assert rows[1].count == 1
    assert f"{good}:2: empty question" in problems
    assert f"{good}:3: question of 10,000 characters (more than max_chars 500): skipped" in problems
    assert any(p.startswith(f"{good}:4: not valid JSON") for p in problems)
    assert any(p.startswith(f"{good}:5: count 'lots'") for p in problems)
    assert any(p.startswith(f"{good}:6: no question field") for p in problems)
    wrong_lines = [p for p in problems if p.startswith(str(wrong))]
    assert len(wrong_lines) == 1 and "no question column (columns: user, clicked" in wrong_lines[0]
    assert len(problems) == 6
    assert "长长长" not in "\n".join(problems)   # problem lines never quote a question


def test_a_folder_of_logs_and_a_tsv_and_a_text_file(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.tsv").write_text("query\tpassage_id\n试用期最长多久\tldht-01\n", encoding="utf-8")
    (tmp_path / "logs" / "b.txt").write_text("加班费怎么算\n\n经济补偿怎么算\n", encoding="utf-8")
    (tmp_path / "logs" / "notes.pdf").write_bytes(b"%PDF")
    rows, info, problems = _read(tmp_path / "logs")
    assert problems == [] and len(info["files"]) == 2
    assert [r.query for r in rows] == ["试用期最长多久", "加班费怎么算", "经济补偿怎么算"]
    assert rows[0].passage_id == "ldht-01"


def test_a_file_that_is_no_text_is_one_line_and_a_log_without_questions_is_an_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"query": "ok"}\n\x81\x30\xff\xff\n')
    _, _, problems = _read(bad)
    assert len(problems) == 1 and "neither UTF-8 nor GB18030" in problems[0] and problems[0].startswith(f"{bad}:2:")
    with pytest.raises(KitError, match="not found"):
        _read(tmp_path / "missing.jsonl")


def test_personal_data_is_masked_as_it_is_read(tmp_path):
    log = tmp_path / "log.jsonl"
    raw = "我叫张三，电话13812345678，身份证110101199003071234，邮箱zhang.san@example.com，被拖欠工资怎么办"
    log.write_text(json.dumps({"query": raw}, ensure_ascii=False) + "\n", encoding="utf-8")
    rows, info, _ = _read(log)
    assert rows[0].query == "我叫张三，电话[电话]，身份证[身份证号]，邮箱[邮箱]，被拖欠工资怎么办"
    assert info["masked"] == {"phone": 1, "id_number": 1, "email": 1}
    rows, info, _ = _read(log, mask=[])
    assert rows[0].query == raw and info["masked"] == {}


@pytest.mark.parametrize("text,expect", [
    ("手机 138-1234-5678 打不通", "手机 [电话] 打不通"),
    ("+86 138 1234 5678", "[电话]"),
    ("座机010-62345678", "座机[电话]"),
    ("身份证号11010119900307123X", "身份证号[身份证号]"),
    ("合同金额12345678901234元", "合同金额12345678901234元"),   # not a phone, not an ID (no birth date)
    ("第1382条", "第1382条"),
])
def test_mask_patterns(text, expect):
    assert mask(text, ["phone", "id_number", "email"])[0] == expect


def test_duplicates_and_near_duplicates_merge_with_their_counts(tmp_path):
    log = tmp_path / "log.jsonl"
    rows = [{"query": "试用期最长多久？", "count": 2}, {"query": "试用期最长多久"}, {"query": "试用期 最长 多久?"},
            {"query": "试用期最长能有多久？"}, {"query": "加班费怎么算"}, {"query": "加班费怎么算？", "ts": "2024-01-02"},
            {"query": "加班费怎么计算？", "ts": "2024-03-01"}, {"query": "经济补偿怎么算"}]
    log.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    read, _, _ = _read(log)
    merged = merge_questions(read, threshold=0.85)
    got = {q.query: q.count for q in merged}
    assert got == {"试用期最长多久？": 5, "加班费怎么算": 3, "经济补偿怎么算": 1}, got
    trial = merged[0]
    assert set(trial.variants) == {"试用期最长多久", "试用期 最长 多久?", "试用期最长能有多久？"}
    overtime = next(q for q in merged if q.query == "加班费怎么算")
    assert (overtime.first_seen, overtime.last_seen) == ("2024-01-02", "2024-03-01")
    exact = merge_questions(read, threshold=1.0)   # exact duplicates only (after normalising)
    assert {q.query: q.count for q in exact}["试用期最长多久？"] == 4 and len(exact) == 5


def test_near_duplicates_join_their_leader_not_a_chain():
    from kit.questionlog.reader import LogRow

    # b is near a and near c, but a and c are far apart: a star around the most asked (b) takes both, a chain
    # would too; with a and c both asked more than b, each leads its own group and b joins the first.
    a, b, c = "甲乙丙丁戊己庚辛壬癸", "甲乙丙丁戊己庚辛壬子", "甲乙丙丁戊己庚辛丑子"
    rows = [LogRow(a, "x:1", 5), LogRow(c, "x:2", 4), LogRow(b, "x:3", 1)]
    merged = merge_questions(rows, threshold=0.9)
    assert {q.query: q.count for q in merged} == {a: 6, c: 4}


def test_log_questions_near_an_eval_question_are_found():
    hits = near_eval(["试用期最长多久？", "试用期最长能多久", "加班费怎么算"], ["试用期最长多久", "工伤怎么认定"], 0.85)
    assert hits == [True, True, False]
    assert near_eval(["试用期最长能多久"], ["试用期最长多久"], 1.0) == [False]


def test_a_csv_field_past_the_csv_modules_limit_is_one_line(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("question\n试用期最长多久\n\"" + "长" * 200_000 + "\"\n", encoding="utf-8")
    rows, _, problems = _read(log)
    assert [r.query for r in rows] == ["试用期最长多久"]
    assert len(problems) == 1 and problems[0].startswith(f"{log}:") and "unreadable CSV" in problems[0]


def test_an_llm_judge_without_an_endpoint_is_refused_before_anything_runs(tmp_path, corpus_file):
    from kit.questionlog import LogFiles, run

    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"query": "试用期最长多久"}, ensure_ascii=False) + "\n", encoding="utf-8")
    files = LogFiles(corpus=str(corpus_file), model="unused", labels=str(tmp_path / "l.jsonl"),
                     report=str(tmp_path / "r.json"))
    with pytest.raises(KitError, match="logs.judge llm needs logs.preset"):
        run(files, LogOptions(path=str(log), judge="llm", base_url="http://127.0.0.1:9/v1"), progress=False)
