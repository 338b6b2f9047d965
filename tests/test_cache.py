"""kit/cache.py, the one base of the embedding, LLM-answer and reranker caches: rows committed at once survive a
process that dies without closing, lookups past SQLite's variable limit, threads sharing one cache."""
import subprocess
import sys
import threading

from kit.cache import IN_BATCH, SQLiteCache

SCHEMA = ["CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)"]


def test_a_write_survives_a_killed_writer_and_lookups_span_batches(tmp_path):
    path = tmp_path / "c.sqlite"
    n = 2 * IN_BATCH + 7
    code = ("import os; from kit.cache import SQLiteCache; "
            f"c = SQLiteCache({str(path)!r}, {SCHEMA!r}); "
            f"c.write('INSERT INTO kv VALUES (?,?)', [(str(i), i) for i in range({n})]); os._exit(9)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9   # no close, no cleanup
    c = SQLiteCache(path, SCHEMA)
    rows = dict(c.select_in("SELECT k, v FROM kv WHERE v >= ? AND k IN ({})", [0], [str(i) for i in range(n)]))
    assert len(rows) == n and rows[str(n - 1)] == n - 1
    assert c.one("SELECT COUNT(*) FROM kv")[0] == n


def test_threads_share_one_cache(tmp_path):
    c = SQLiteCache(tmp_path / "c.sqlite", SCHEMA)

    def put(t):
        for i in range(50):
            c.write("INSERT INTO kv VALUES (?,?)", [(f"{t}-{i}", i)])

    threads = [threading.Thread(target=put, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.one("SELECT COUNT(*) FROM kv")[0] == 200
