"""Zero downtime against a real Milvus server (`milvus-lite server`, Milvus's gRPC API): a reader in another process
searches the alias in a loop while a new model version is filled, verified and switched to, and while the switch
is rolled back; it never gets an error or an empty result, sees the new version's results after the switch, and
after the rollback gets exactly the top-k it got before."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from kit.embed import LocalEncoder
from kit.index import IndexFiles, IndexOptions, run

READER = textwrap.dedent("""
    import json, os, sys, time
    from pymilvus import MilvusClient
    uri, vector_file, stop, out = sys.argv[1:5]
    vector = json.load(open(vector_file))
    client = MilvusClient(uri=uri)
    seen, errors, empty, calls = [], [], 0, 0
    while not os.path.exists(stop):
        calls += 1
        try:
            hits = client.search("laws", data=[vector], anns_field="dense", limit=10, output_fields=["id"])[0]
            ids = [h["id"] for h in hits]
            empty += not ids
            if not seen or seen[-1][1] != ids:
                seen.append((len(seen), ids))
            if len(seen) == 1 and not os.path.exists(out + ".ready"):
                open(out + ".ready", "w").close()
        except Exception as e:
            errors.append(repr(e)[:300])
    json.dump({"changes": [ids for _, ids in seen], "errors": errors, "empty": empty, "calls": calls},
              open(out, "w"))
""")


@pytest.mark.slow
def test_reader_sees_no_error_or_empty_result_through_switch_and_rollback(tmp_path, milvus_server, cmrc80, e5_v1,
                                                                          e5_v2, monkeypatch):
    monkeypatch.setenv("MILVUS_TOKEN", "root:Milvus-T0ken-4711")   # read from the environment, never written
    corpus, ev = cmrc80
    options = IndexOptions(store=milvus_server, name="laws", golden_queries=40)
    first = run(IndexFiles(model=str(e5_v1), corpus=str(corpus), eval=str(ev)), options, progress=False)
    vector = LocalEncoder(str(e5_v1), progress=False).encode_queries(["锣鼓经是什么？"])[0].tolist()
    (tmp_path / "vector.json").write_text(json.dumps(vector))
    out, stop = tmp_path / "reader.json", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, milvus_server.replace("milvus://", "http://"),
                               str(tmp_path / "vector.json"), str(stop), str(out)])
    try:
        deadline = time.time() + 60
        while not (tmp_path / "reader.json.ready").exists():
            assert time.time() < deadline and reader.poll() is None, "the reader never got a result"
            time.sleep(0.1)
        second = run(IndexFiles(model=str(e5_v2), corpus=str(corpus), eval=str(ev)), options, progress=False)
        time.sleep(1.0)
        back = run(IndexFiles(rollback=True), options)
        time.sleep(1.0)
    finally:
        stop.touch()
        reader.wait(60)
    seen = json.loads(out.read_text())
    assert seen["errors"] == [] and seen["empty"] == 0 and seen["calls"] > 20
    assert second.switched and (back.previous, back.collection) == (second.collection, first.collection)
    assert len(seen["changes"]) == 3                     # v1's top-10, v2's, v1's again: nothing in between
    assert seen["changes"][2] == seen["changes"][0] != seen["changes"][1]
    for r in (first, second, back):
        assert "Milvus-T0ken-4711" not in json.dumps(r.record()) + r.summary()
