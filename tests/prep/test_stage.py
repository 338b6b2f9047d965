"""The prep stage over the six real statutes plus bad files: what reaches corpus.jsonl, its statistics and what
is reported; a run that produces nothing leaves no output behind."""
import json
import re

import pytest

from kit.io import read_json
from kit.prep import PrepOptions, prep
from kit.prep.report import FileReport, PrepResult

from conftest import LAW_PDFS
from helpers.bad_pdfs import write_bad_files

# A chunk line that is only a page number: "—3—", "- 3 -", "3", "第3页", "3/20".
PAGE_NUMBER_LINE = re.compile(r"^\s*(?:[-–—]*\s*\d{1,4}\s*[-–—]*|第\s*\d+\s*页|\d+\s*/\s*\d+)\s*$", re.M)


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(x) for x in f]


@pytest.fixture(scope="module")
def law_run(tmp_path_factory):
    """One prep run (2 worker processes) over all six statutes and a folder of bad files."""
    if not LAW_PDFS.is_dir():
        pytest.skip("../shared/data/pdfs/laws is missing")
    tmp = tmp_path_factory.mktemp("prep_stage")
    bad = tmp / "bad"
    bad.mkdir()
    expected_problems = write_bad_files(bad)
    lines = []
    result = prep([LAW_PDFS, bad], tmp / "corpus.jsonl",
                  PrepOptions(max_tokens=300, progress=False, workers=2, ocr="off"), echo=lines.append)
    return result, _rows(tmp / "corpus.jsonl"), lines, expected_problems, tmp


def test_bad_files_are_reported_by_name_and_good_files_still_processed(law_run):
    result, rows, lines, expected, _ = law_run
    assert result.files == 6 + len(expected)
    assert result.files_failed == len(expected)
    for name, words in expected.items():
        assert len([ln for ln in lines if f"/{name}:" in ln]) == 1
        assert any(name in ln and words in ln for ln in lines), (name, lines)
    assert lines == result.problems
    assert {r["doc"] for r in rows} == {p.stem for p in LAW_PDFS.glob("*.pdf")}
    assert result.chunks == len(rows) and result.pages >= 178
    # the clean statutes have no garbage pages; the only page-level line is 公司法's image-only cover
    page_lines = [ln for ln in lines if ": page " in ln]
    assert len(page_lines) == 1 and "no text layer" in page_lines[0], page_lines
    assert result.pages_skipped == 1
    assert result.summary().splitlines()[0] == (f"{result.files} files, {result.pages} pages, {result.chunks} chunks; "
                                                f"{len(expected)} files failed, 1 pages skipped")


def test_fidelity_is_in_the_stats_and_the_summary(law_run):
    result, rows, _, _, tmp = law_run
    stats = read_json(tmp / "corpus.stats.json")
    assert result.stats_path == str(tmp / "corpus.stats.json")
    by_file = {f["path"]: f for f in stats["files"]}
    for pdf in LAW_PDFS.glob("*.pdf"):
        f = by_file[str(pdf)]
        assert f["fidelity"] >= 0.995 and f["chars"] > 1000 and f["chunks"] > 0, f
        assert result.fidelity[str(pdf)] == f["fidelity"]
    assert by_file[str(LAW_PDFS / "中华人民共和国刑法_1997.pdf")]["dropped"] > 2000   # print headers, counted
    assert sum(f["chunks"] for f in stats["files"]) == len(rows) == stats["totals"]["chunks"]
    assert re.search(r"^fidelity \(text layer found in the chunks, in order\): lowest 100\.00% .*; "
                     r"0 of 6 files below 99%", result.summary(), re.M), result.summary()


def test_a_file_below_99_percent_is_warned_about_loudly():
    result = PrepResult()
    good, poor = FileReport("good.pdf", chars=1000, found=999), FileReport("poor.pdf", chars=1000, found=900,
                                                                           low_pages=[(3, 0.5), (7, 0.9)])
    for r in (good, poor):
        result.collect(r, lambda m: None)
    lines = []
    result.warn(lines.append, 0.99)
    assert lines == ["WARNING: poor.pdf: only 90.00% of its text reached the chunks (100 of 1000 characters "
                     "missing); worst pages: 3 (50%), 7 (90%)"]
    assert "lowest 90.00% (poor.pdf); 1 of 2 files below 99%" in result.summary()


def test_headers_and_page_numbers_never_reach_a_chunk(law_run):
    _, rows, _, _, _ = law_run
    for r in rows:
        for field in ("text", "title"):
            assert "file://" not in r[field], r
            assert not PAGE_NUMBER_LINE.search(r[field]), (field, r)
    # 刑法 carries a `file://` print header and a page counter on every page: its chunks must start with text
    xingfa = [r for r in rows if r["doc"] == "中华人民共和国刑法_1997"]
    assert len(xingfa) > 50
    assert not any(re.search(r"\d+/\d+\s*$", r["text"].split("\n")[0]) for r in xingfa)


def test_records_follow_the_corpus_contract(law_run):
    _, rows, _, _, _ = law_run
    assert all(set(r) == {"id", "doc", "page_start", "page_end", "title", "text"} for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(isinstance(r["page_start"], int) and 1 <= r["page_start"] <= r["page_end"] for r in rows)
    assert all(len(r["text"]) <= 300 for r in rows)


def test_rerun_gives_identical_ids(law_run):
    """A second run, in one process and over only two of the files, gives the same records for them."""
    _, rows, _, _, tmp = law_run
    names = ["中华人民共和国就业促进法_2007.pdf", "中华人民共和国劳动合同法实施条例_excerpt.pdf"]
    prep([LAW_PDFS / n for n in names], tmp / "again.jsonl",
         PrepOptions(max_tokens=300, progress=False, workers=1, ocr="off"), echo=lambda m: None)
    again = _rows(tmp / "again.jsonl")
    first = [r for r in rows if r["doc"] + ".pdf" in names]
    assert again and sorted(again, key=lambda r: r["id"]) == sorted(first, key=lambda r: r["id"])


def test_a_run_that_produces_nothing_removes_the_old_output(shared_dir, tmp_path):
    out = tmp_path / "corpus.jsonl"
    prep([LAW_PDFS / "中华人民共和国就业促进法_2007.pdf"], out, PrepOptions(progress=False, workers=1),
         echo=lambda m: None)
    assert out.exists() and (tmp_path / "corpus.stats.json").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    write_bad_files(bad)
    lines = []
    result = prep([bad / "cut_eof.pdf", bad / "notes.pdf"], out, PrepOptions(progress=False, workers=2),
                  echo=lines.append)
    assert result.chunks == 0 and result.files_failed == 2 and len(lines) == 2
    assert not out.exists() and not (tmp_path / "corpus.stats.json").exists()
    # an empty folder: an error, and no stale output either
    prep([LAW_PDFS / "中华人民共和国就业促进法_2007.pdf"], out, PrepOptions(progress=False, workers=1),
         echo=lambda m: None)
    (tmp_path / "empty").mkdir()
    from kit.io import KitError
    with pytest.raises(KitError, match="no document"):
        prep([tmp_path / "empty"], out, PrepOptions(progress=False))
    assert not out.exists()


def test_one_process_counts_with_the_tokenizer_each_run_asks_for(tmp_path, zh_e5_path):
    """A process that prepped by characters and then preps with a tokenizer (as a test session, or `kit run`
    after another run, does) must count tokens the second time: the counter is per tokenizer, not global."""
    pdf = [LAW_PDFS / "中华人民共和国就业促进法_2007.pdf"]

    def run(name, tokenizer):
        prep(pdf, tmp_path / name, PrepOptions(max_tokens=60, tokenizer=tokenizer, progress=False, workers=1),
             echo=lambda m: None)
        return _rows(tmp_path / name)

    by_chars = run("chars.jsonl", None)
    by_tokens = run("tokens.jsonl", str(zh_e5_path))
    assert by_tokens != by_chars
    # the same as counting with the tokenizer from the start, in a fresh counter table
    from kit.prep import stage
    stage._counters.clear()
    assert run("fresh.jsonl", str(zh_e5_path)) == by_tokens
    assert run("chars-again.jsonl", None) == by_chars
