"""Real material for the index tests: a slice of cmrc2018 (Wikipedia paragraphs and their real questions) as prep's
corpus.jsonl and an eval set in FlagEmbedding's layout, tiny random models of the same width (two versions of
"the model"), and a Milvus Lite gRPC server in a subprocess (`milvus-lite server`, the package's own CLI)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CMRC

PY = sys.executable
KIT = str(Path(PY).parent / "kit")
MILVUS_LITE = str(Path(PY).parent / "milvus-lite")


def cmrc_slice(out: Path, n: int, first: int = 0) -> tuple[Path, Path]:
    """(corpus.jsonl, eval folder): paragraphs first..first+n of cmrc2018 as chunks (doc, pages, title), and the
    questions whose relevant paragraph is among them."""
    if not (CMRC / "corpus.jsonl").exists():
        pytest.skip("cmrc2018 not available")
    rows = [json.loads(x) for x in open(CMRC / "corpus.jsonl", encoding="utf-8")][first:first + n]
    ids = {r["_id"] for r in rows}
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"id": r["_id"], "doc": r["title"], "page_start": i // 10 + 1, "page_end": i // 10 + 1,
                                "title": r["title"], "text": r["text"]}, ensure_ascii=False) + "\n")
    qrels = [line.rstrip("\n").split("\t") for line in open(CMRC / "qrels.tsv", encoding="utf-8")][1:]
    qrels = [q for q in qrels if q[1] in ids]
    texts = {json.loads(x)["_id"]: json.loads(x)["text"] for x in open(CMRC / "queries.jsonl", encoding="utf-8")}
    ev = out / "eval"
    ev.mkdir(exist_ok=True)
    with open(ev / "corpus.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["_id"], "title": r["title"], "text": r["text"]}, ensure_ascii=False) + "\n")
    with open(ev / "test_queries.jsonl", "w", encoding="utf-8") as f:
        for q in dict.fromkeys(q for q, _, _ in qrels):
            f.write(json.dumps({"id": q, "text": texts[q]}, ensure_ascii=False) + "\n")
    with open(ev / "test_qrels.jsonl", "w", encoding="utf-8") as f:
        for q, d, rel in qrels:
            f.write(json.dumps({"qid": q, "docid": d, "relevance": int(rel)}) + "\n")
    return out / "corpus.jsonl", ev


@pytest.fixture(scope="session")
def cmrc80(tmp_path_factory) -> tuple[Path, Path]:
    return cmrc_slice(tmp_path_factory.mktemp("cmrc80"), 80)


@pytest.fixture(scope="session")
def e5_v1(zh_e5_path) -> Path:
    """The real starter encoder (the tiny random models embed every text almost alike: cosine 0.9999 between any
    two, so their rankings are ties and cannot tell a right search from a wrong one)."""
    return zh_e5_path


@pytest.fixture(scope="session")
def e5_v2(tmp_path_factory, zh_e5_path) -> Path:
    """"The next model version": the same weights read another way (CLS pooling, kit_model.json), so other vectors
    of the same width, as a retrained model would give."""
    d = tmp_path_factory.mktemp("models") / "zh-e5-small-cls"
    shutil.copytree(zh_e5_path, d)
    for f in d.rglob("*"):
        f.chmod(0o644 if f.is_file() else 0o755)
    d.chmod(0o755)
    (d / "kit_model.json").write_text(json.dumps({"family": "e5", "pooling": "cls", "query_instruction": "query: ",
                                                   "passage_instruction": "passage: ", "max_length": 512}))
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} after {seconds}s")


@pytest.fixture
def milvus_server(tmp_path):
    """`milvus-lite server --data-dir D --port P` in a subprocess: a Milvus gRPC server several processes share."""
    if not Path(MILVUS_LITE).exists():
        pytest.skip("the milvus-lite command is not installed")
    port = free_port()
    log = open(tmp_path / "milvus-server.log", "wb")
    proc = subprocess.Popen([MILVUS_LITE, "server", "--data-dir", str(tmp_path / "milvus-data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def kit_env(cache: Path) -> dict:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", KIT_CACHE_DIR=str(cache), TOKENIZERS_PARALLELISM="false")
    return env


def run_kit(args: list[str], cache: Path, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([KIT, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**kit_env(cache), **(env or {})})
