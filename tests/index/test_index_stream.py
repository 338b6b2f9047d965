"""`kit index` reads its corpus as a stream (issue 25): the rows are spooled, so after read_rows the text of the
chunks is not in memory, and every row comes back as to_row made it."""
from __future__ import annotations

import json
import tracemalloc

from helpers.big_corpus import write_big_corpus
from kit.index.rows import read_rows, to_row


def test_index_rows_text_is_not_held(tmp_path):
    corpus, _, held = write_big_corpus(tmp_path, 20_000)
    tracemalloc.start()
    rows, notes = read_rows(corpus)
    kept, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(rows) == 20_000 and notes["bad_lines"] == 0
    assert kept < held / 8, f"read_rows keeps {kept / 1e6:.1f} MB for {held / 1e6:.1f} MB of text"
    chunks = [json.loads(x) for x in open(corpus, encoding="utf-8")]
    for i in (0, 777, 19_999):
        assert rows[i] == to_row(chunks[i], True, True)[0]
    assert [r.id for r in rows] == [c["id"] for c in chunks]
