"""kit/spool.py: texts kept in a temp file and read back by number. Checked on every real corpus in ../shared (not
on texts written here): every text back exactly, in order, by number, by slice and from several threads at once,
and the digest equal to the hash of the joined texts that the caches were keyed by before the spool."""
from __future__ import annotations

import json
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import DATA
from kit.io import text_hash
from kit.spool import RecordSpool, Spool

CORPORA = sorted(DATA.glob("retrieval/**/corpus.jsonl"))


@pytest.mark.parametrize("path", CORPORA, ids=[str(p.relative_to(DATA)) for p in CORPORA])
def test_every_real_corpus_comes_back_whole(path):
    texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8") if line.strip()]
    spool = Spool(texts)
    assert len(spool) == len(texts) and list(spool) == texts
    assert [spool[i] for i in range(len(texts))] == texts
    assert spool[-1] == texts[-1] and spool[3:40:7] == texts[3:40:7]
    assert spool == texts and texts == spool and spool == Spool(texts) and spool != texts[:-1] + ["x"]
    assert spool.digest() == text_hash("\x1e".join(texts), 32)
    assert spool.disk_bytes() == sum(len(t.encode("utf-8")) for t in texts)
    order = list(range(len(texts)))[::-1] * 2
    with ThreadPoolExecutor(8) as pool:        # os.pread: no shared file position to race on
        assert list(pool.map(spool.__getitem__, order)) == [texts[i] for i in order]
    with pytest.raises(IndexError):
        spool[len(texts)]
    spool.close()


def test_empty_texts_and_empty_spool():
    s = Spool(["", "a", "", "汉字"])
    assert list(s) == ["", "a", "", "汉字"] and s.digest() == text_hash("\x1e".join(["", "a", "", "汉字"]), 32)
    assert len(Spool()) == 0 and not Spool() and Spool().digest() == text_hash("", 32)


def test_spool_is_not_sent_to_another_process():
    with pytest.raises(TypeError, match="temp file of this process"):
        pickle.dumps(Spool(["x"]))


def test_record_spool_round_trip():
    rows = [{"id": f"c{i}", "text": "第" + str(i) + "条", "n": i} for i in range(50)]
    spool = RecordSpool(dict, dict)
    for r in rows:
        spool.append(r)
    assert list(spool) == rows and spool[7] == rows[7] and spool[10:13] == rows[10:13] and len(spool) == 50
