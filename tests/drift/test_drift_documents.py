"""New, changed, moved and gone documents by content hash, on chunks prep makes of real statute articles."""
from __future__ import annotations

from kit.drift.documents import chunk_key, diff, group
from kit.prep import PrepOptions, prep
from kit.io import read_jsonl

from .conftest import sample, write_jsonl


def prepped(tmp_path, name, rows) -> list[dict]:
    write_jsonl(tmp_path / name / "in" / "a.jsonl", rows)
    out = tmp_path / name / "corpus.jsonl"
    prep([str(tmp_path / name / "in")], out, PrepOptions(max_tokens=200, workers=1, progress=False),
         echo=lambda m: None)
    return read_jsonl(out)


def test_new_changed_gone_and_unchanged_documents(tmp_path, stard_rows):
    rows = sample(stard_rows, 40, 3)
    old = prepped(tmp_path, "old", rows)
    edited = dict(rows[5], text=rows[5]["text"] + "\n本条另有补充规定，以其为准。")   # one article amended
    added = sample([r for r in stard_rows if r not in rows], 4, 4)
    now = prepped(tmp_path, "now", rows[:5] + [edited] + rows[6:30] + added)    # rows 30..39 removed
    d = diff(old, now)
    assert sorted(x["doc"] for x in d.new) == sorted(r["title"] for r in added)
    assert [x["doc"] for x in d.changed] == [rows[5]["title"]]
    assert sorted(x["doc"] for x in d.gone) == sorted(r["title"] for r in rows[30:])
    assert d.unchanged == 29 and d.moved == []
    # new chunks: every chunk of the added articles, and of the amended one only what changed
    old_keys = {chunk_key(c) for c in old}
    assert d.new_chunks and all(chunk_key(now[i]) not in old_keys for i in d.new_chunks)
    assert {now[i]["doc"] for i in d.new_chunks} == {r["title"] for r in added} | {rows[5]["title"]}
    assert sum(x["new_chunks"] for x in d.new + d.changed) == len(d.new_chunks)
    assert d.counts()["gone"] == 10 and "4 new, 1 changed, 10 gone" in d.line()


def test_the_same_content_under_another_name_is_moved_not_new(tmp_path, stard_rows):
    rows = sample(stard_rows, 6, 5)
    old = prepped(tmp_path, "old", rows)
    now = [dict(c, doc="改名后的文件") if c["doc"] == rows[0]["title"] else c for c in old]
    d = diff(old, now)
    assert d.new == [] and d.gone == [] and d.new_chunks == []
    assert d.moved == [{"doc": "改名后的文件", "was": rows[0]["title"], "chunks": group(old)[rows[0]["title"]]["chunks"]}]


def test_content_hash_ignores_where_a_document_lies_but_not_its_text(stard_rows):
    a = [{"id": "x-1", "doc": "D", "title": "t", "text": "甲"}, {"id": "x-2", "doc": "D", "title": "t", "text": "乙"}]
    b = [dict(c, id="y" + c["id"][1:]) for c in a]                      # other ids, same content
    c = [a[1], a[0]]                                                     # same chunks, other order
    assert group(a)["D"]["hash"] == group(b)["D"]["hash"] != group(c)["D"]["hash"]
