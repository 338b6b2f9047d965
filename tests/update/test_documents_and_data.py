"""An update's documents and training data, without training: prep runs only on new or changed files (the rest
comes from the deployed version's corpus, or from an earlier update's prep), the diff is by document, and the rows
mix the new documents' pairs with a replay sample that holds no gone document, eval question or held-out passage."""
import json

import pytest

from kit.formats import norm_text
from kit.io import KitError, read_json
from kit.versions.register import norm_key, register_deployed
from kit.versions.store import Store
from versions.workdirs import fake_run, laws, write_laws

from .conftest import jsonl


@pytest.fixture
def deployed(tiny_bert, tmp_path):
    """(pipeline, v0001, docs folder) of a prepped workdir whose deployed model is registered (file hashes exact)."""
    from kit.update.config import load_pipeline

    config, docs = fake_run(tmp_path, tiny_bert, n_laws=4, per_law=6)
    p = load_pipeline(config)
    return p, register_deployed(p, Store(p.wd.root)), docs


def change_documents(docs):
    """One law added, one article of another changed, a third law removed: (new file, changed file, removed file)."""
    files = sorted(docs.iterdir())
    new = write_laws(docs, laws(1, 6, skip=4), prefix="new")[0]
    rows = [json.loads(x) for x in files[0].read_text(encoding="utf-8").splitlines()]
    rows[2]["text"] += "违反本条规定的，由有关部门责令改正。"
    files[0].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    files[1].unlink()
    return new, files[0], files[1], rows[2]["title"]


def update_corpus(p, v, out, monkeypatch, prepped: list):
    import kit.prep
    from kit.update.documents import update_corpus as run

    real = kit.prep.prep

    def recording(inputs, *a, **k):
        prepped.extend(str(x) for x in inputs)
        return real(inputs, *a, **k)

    monkeypatch.setattr(kit.prep, "prep", recording)
    o = p.options["prep"]
    return run(o, v.material("corpus.jsonl"), v.material("files.json"), out, p.wd.root / "updates" / "prepped",
               lambda m: None)


def test_only_new_and_changed_files_are_prepped_and_the_diff_is_by_document(deployed, tmp_path, monkeypatch):
    p, v, docs = deployed
    assert v.manifest["files_ledger"] is True
    new, changed, removed, changed_title = change_documents(docs)
    prepped = []
    s = update_corpus(p, v, tmp_path / "u1", monkeypatch, prepped)
    assert sorted(prepped) == sorted([str(new), str(changed)])
    assert s["files"] == {"files": 4, "reused": 2, "from_cache": 0, "prepped": 2}
    c = s["counts"]
    assert (c["new"], c["changed"], c["gone"], c["moved"]) == (6, 1, 6, 0)
    d = read_json(tmp_path / "u1" / "documents.json")
    assert [x["doc"] for x in d["changed_documents"]] == [changed_title]
    removed_docs = {json.loads(x)["title"] for x in open(v.material("corpus.jsonl"), encoding="utf-8")
                    if json.loads(x)["doc"] in {r["doc"] for r in d["gone_documents"]}}
    assert set(d["stale_documents"]) == {changed_title} | removed_docs
    corpus, fresh = jsonl(tmp_path / "u1" / "corpus.jsonl"), jsonl(tmp_path / "u1" / "new_corpus.jsonl")
    assert not {x["doc"] for x in corpus} & {x["doc"] for x in d["gone_documents"]}
    assert {x["doc"] for x in fresh} == {x["doc"] for x in d["new_documents"]} | {changed_title}
    assert len(fresh) == c["new_chunks"] and all(x in corpus for x in fresh)
    ledger = read_json(tmp_path / "u1" / "files.json")
    assert sorted(ledger) == sorted(str(f) for f in docs.iterdir())
    assert [i for f in sorted(ledger) for i in ledger[f]["ids"]] == [x["id"] for x in corpus]
    prepped.clear()                                       # the same files again: nothing to prep
    s = update_corpus(p, v, tmp_path / "u2", monkeypatch, prepped)
    assert prepped == [] and s["files"] == {"files": 4, "reused": 2, "from_cache": 2, "prepped": 0}
    assert jsonl(tmp_path / "u2" / "corpus.jsonl") == corpus


def test_a_document_folder_that_lost_every_file_is_one_line(deployed, tmp_path, monkeypatch):
    p, v, docs = deployed
    for f in docs.iterdir():
        f.unlink()
    with pytest.raises(KitError, match="holds no document any more .* every file is gone"):
        update_corpus(p, v, tmp_path / "u", monkeypatch, [])
    assert not (tmp_path / "u" / "corpus.jsonl").exists()


def test_training_rows_mix_new_pairs_with_a_replay_sample_that_holds_no_stale_or_eval_material(deployed, tmp_path,
                                                                                               monkeypatch):
    from kit.queries import QueryOptions, gen_queries
    from kit.update.data import build, leakage
    from kit.update.options import UpdateOptions

    p, v, docs = deployed
    change_documents(docs)
    u = tmp_path / "u"
    update_corpus(p, v, u, monkeypatch, [])
    gen_queries(u / "new_corpus.jsonl", u / "pairs.jsonl", QueryOptions(generator=["ict"], per_chunk=2, seed=1,
                                                                        progress=False))
    frozen = [v.material("eval")]
    s = build(u, v, frozen, p.options["split"], UpdateOptions(replay_share=0.4, eval_ratio=0.3, seed=3), print)
    stale = set(read_json(u / "documents.json")["stale_documents"])
    old = jsonl(v.material("pool.jsonl"))
    assert s["pool_dropped"]["stale_document"] == sum(r["doc"] in stale for r in old) > 0
    assert s["pool_rows"] == len(old) - sum(s["pool_dropped"].values())
    assert s["replayed_rows"] == min(s["pool_rows"], round(s["new_rows"] * 0.4 / 0.6)) > 0
    rows = jsonl(u / "data" / "train.jsonl")
    assert len(rows) == s["new_rows"] + s["replayed_rows"]
    assert not any(r["doc"] in stale for r in rows[s["new_rows"]:]) and not any("neg" in r and r["neg"]
                                                                                 for r in rows[s["new_rows"]:])
    new_eval = jsonl(u / "data" / "new" / "eval" / "test_queries.jsonl")
    assert s["new_eval_questions"] == len(new_eval) > 0
    asked = {norm_text(q["text"]) for q in new_eval + jsonl(v.material("eval") / "test_queries.jsonl")}
    assert not any(norm_text(r["query"]) in asked for r in rows)
    held = set(read_json(v.material("eval") / "heldout.json")["heldout"]) | set(
        read_json(u / "data" / "heldout.json")["heldout"])
    train_corpus = jsonl(u / "data" / "train_corpus.jsonl")
    assert held and not any(norm_key(c["text"]) in held for c in train_corpus)
    assert train_corpus == [c for c in jsonl(u / "corpus.jsonl") if norm_key(c["text"]) not in held]
    assert len(jsonl(u / "data" / "pool.jsonl")) == s["pool_rows"] + s["new_rows"]
    assert leakage(u / "data" / "train.jsonl", u, frozen) == {"rows": len(rows), "eval_questions": 0,
                                                               "heldout_negatives": 0, "heldout_positives": 0}
    s0 = build(u, v, frozen, p.options["split"], UpdateOptions(replay_share=0.0, eval_ratio=0.3, seed=3), print)
    assert s0["replayed_rows"] == 0 and len(jsonl(u / "data" / "train.jsonl")) == s0["new_rows"]
