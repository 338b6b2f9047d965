"""The prep stage over the six real statutes plus bad files: what reaches corpus.jsonl and what is reported."""
import json
import re

import pytest

from kit.prep import PrepOptions, prep

from conftest import LAW_PDFS
from test_pdf import _write_bad_files

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
    expected_problems = _write_bad_files(bad)
    lines = []
    result = prep([LAW_PDFS, bad], tmp / "corpus.jsonl", PrepOptions(max_tokens=300, progress=False, workers=2),
                  echo=lines.append)
    return result, _rows(tmp / "corpus.jsonl"), lines, expected_problems, tmp


def test_bad_files_are_reported_by_name_and_good_files_still_processed(law_run):
    result, rows, lines, expected, _ = law_run
    assert result.files == 6 + len(expected)
    assert result.files_failed == len(expected)
    for name, words in expected.items():
        assert any(name in ln and words in ln for ln in lines), (name, lines)
    assert lines == result.problems
    assert {r["doc"] for r in rows} == {p.stem for p in LAW_PDFS.glob("*.pdf")}
    assert result.chunks == len(rows) and result.pages >= 178
    # the clean statutes have no garbage pages; the only page-level line allowed is 公司法's image-only cover
    page_lines = [ln for ln in lines if ": page " in ln]
    assert all("no text layer" in ln for ln in page_lines), page_lines
    assert result.summary() == (f"{result.files} files, {result.pages} pages, {result.chunks} chunks; "
                                f"{len(expected)} files failed, {result.pages_skipped} pages skipped")


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


def test_radicals_excerpt_chunks_hold_normal_characters(law_run):
    _, rows, _, _, _ = law_run
    excerpt = [r for r in rows if r["doc"] == "中华人民共和国劳动合同法实施条例_excerpt"]
    assert excerpt
    text = "".join(r["title"] + r["text"] for r in excerpt)
    assert not re.search("[\u2f00-\u2fdf]", text)
    assert "劳动合同" in text and "第十条" in text


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
    prep([LAW_PDFS / n for n in names], tmp / "again.jsonl", PrepOptions(max_tokens=300, progress=False, workers=1),
         echo=lambda m: None)
    again = _rows(tmp / "again.jsonl")
    first = [r for r in rows if r["doc"] + ".pdf" in names]
    assert again and sorted(again, key=lambda r: r["id"]) == sorted(first, key=lambda r: r["id"])


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
