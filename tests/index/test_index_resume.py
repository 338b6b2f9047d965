"""Batched and resumable: a run killed (SIGKILL) after its third batch leaves the alias alone, and the next run
embeds only what the first did not (no chunk embedded twice, none missing). Incremental: the same model with
changed documents updates its collection in place (upserts and deletes by chunk id), embedding only those."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from kit.index import IndexFiles, IndexOptions, run
from kit.index.stores import open_store

from .conftest import CMRC, kit_env

KILLER = textwrap.dedent("""
    import os, signal, sys
    from kit.index.stores.milvus import MilvusStore
    real, calls = MilvusStore.upsert, [0]
    def upsert(self, name, rows):
        real(self, name, rows)
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    MilvusStore.upsert = upsert
    from kit.cli import main
    main(sys.argv[1:], prog_name="kit")
""")


def cached(cache_file) -> int:
    with sqlite3.connect(str(cache_file)) as conn:
        return conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0]


@pytest.mark.slow
def test_a_killed_run_resumes_without_embedding_any_chunk_twice(tmp_path, cmrc80, e5_v1):
    corpus, ev = cmrc80
    uri, cache = f"milvus-lite://{tmp_path}/i.db", tmp_path / "cache"
    args = ["index", "--model", str(e5_v1), "--corpus", str(corpus), "--store", uri, "--name", "laws",
            "--batch-size", "8", "--no-progress"]
    r = subprocess.run([sys.executable, "-c", KILLER, *args], capture_output=True, text=True, timeout=600,
                       env=kit_env(cache))
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert cached(cache / "embeddings.sqlite") == 24          # three batches of 8 embedded, and written
    with open_store(uri) as s:
        assert s.aliases() == {} and s.count(s.collections()[0]) == 24   # nothing switched; 24 rows kept
    result = run(IndexFiles(model=str(e5_v1), corpus=str(corpus), eval=str(ev)),
                 IndexOptions(store=uri, name="laws", batch_size=8, golden_queries=40,
                              cache_path=str(cache / "embeddings.sqlite")), progress=False)
    assert result.fill["unchanged"] == 24 and result.fill["added"] == 56
    assert result.fill["encoded"]["dense"] == 56               # 24 + 56 = 80: each chunk embedded once
    assert result.parity["ok"] and result.parity["stored"] == 80 and result.switched


def edited(corpus, out, new_rows: list[dict]) -> list[dict]:
    """corpus with chunks 0-4 changed, 5-9 gone, and ``new_rows`` added."""
    rows = [json.loads(x) for x in open(corpus, encoding="utf-8")]
    for r in rows[:5]:
        r["text"] = r["text"] + "（2024年修订）"
    rows = rows[:5] + rows[10:] + new_rows
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return rows


def test_incremental_update_under_the_same_model(tmp_path, cmrc80, e5_v1):
    corpus, ev = cmrc80
    uri = f"milvus-lite://{tmp_path}/i.db"
    options = IndexOptions(store=uri, name="laws", golden_queries=40)
    first = run(IndexFiles(model=str(e5_v1), corpus=str(corpus), eval=str(ev)), options, progress=False)
    extra = [json.loads(x) for x in open(CMRC / "corpus.jsonl", encoding="utf-8")][80:85]
    new = [{"id": r["_id"], "doc": r["title"], "title": r["title"], "text": r["text"]} for r in extra]
    rows = edited(corpus, tmp_path / "corpus.jsonl", new)
    second = run(IndexFiles(model=str(e5_v1), corpus=str(tmp_path / "corpus.jsonl"), eval=str(ev)), options,
                 progress=False)
    assert second.collection == first.collection and not second.switched
    f = second.fill
    assert (f["added"], f["changed"], f["deleted"], f["unchanged"]) == (5, 5, 5, 70)
    assert f["encoded"]["dense"] == 10                         # only the new and the changed chunks
    with open_store(uri) as s:
        assert sorted(s.hashes(first.collection)) == sorted(r["id"] for r in rows)
        assert s.count("laws") == 80 and s.aliases() == {"laws": first.collection}
