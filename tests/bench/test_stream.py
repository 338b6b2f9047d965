"""The benchmark reads its eval corpus as a stream (issue 25): after load_eval, what stays in memory is the ids and
an offset per passage, not the text; the passages are read back from the spool by number, and the cache key over
the texts is the one the joined texts gave."""
from __future__ import annotations

import json
import tracemalloc

from helpers.big_corpus import write_big_corpus
from kit.formats import load_eval, titled
from kit.io import text_hash


def test_eval_corpus_text_is_not_held(tmp_path):
    _, ev, held = write_big_corpus(tmp_path, 20_000)
    tracemalloc.start()
    es = load_eval(ev)
    kept, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(es.doc_ids) == 20_000
    assert kept < held / 8, f"load_eval keeps {kept / 1e6:.1f} MB for {held / 1e6:.1f} MB of text"
    rows = [json.loads(x) for x in open(ev / "corpus.jsonl", encoding="utf-8")]
    texts = [titled(r["title"], r["text"]) for r in rows]
    assert list(es.doc_texts) == texts and es.doc_text("c12345") == texts[12345]
    assert es.docs_digest() == text_hash("\x1e".join(texts), 32)
