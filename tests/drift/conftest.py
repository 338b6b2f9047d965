"""Real material for the drift tests: stard_dev statute articles (a law is an article's title without its article
number), the E.SUN bank FAQ (another domain, Traditional Chinese), embedded with the tiny random BERT; and a
workdir as `kit run` leaves it (corpus prepped from a JSONL of articles, an eval set, a bench recommendation)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml


REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("KIT_SHARED", REPO.parent / "shared")).resolve() / "data"  # as tests/conftest.py
STARD = DATA / "retrieval" / "stard_dev" / "corpus.jsonl"
FAQ = DATA / "retrieval" / "esun_insurance_faq_zhtw" / "beir_faq"
ARTICLE = re.compile(r"第[零一二三四五六七八九十百千〇两]+条(之[一二三四五六七八九十]+)?$")


def law_of(title: str) -> str:
    return ARTICLE.sub("", title)


@pytest.fixture(scope="session")
def stard_rows(shared_dir) -> list[dict]:
    return [json.loads(line) for line in STARD.open(encoding="utf-8")]


@pytest.fixture(scope="session")
def faq_rows(shared_dir) -> list[dict]:
    return [json.loads(line) for line in (FAQ / "corpus.jsonl").open(encoding="utf-8")]


@pytest.fixture(scope="session")
def faq_queries(shared_dir) -> list[str]:
    return [json.loads(line)["text"] for line in (FAQ / "queries.jsonl").open(encoding="utf-8")]


@pytest.fixture(scope="session")
def stard_queries(shared_dir) -> list[str]:
    return [json.loads(line)["text"] for line in (STARD.parent / "queries.jsonl").open(encoding="utf-8")]


@pytest.fixture(scope="session")
def encoder(tiny_xlmr):
    """The tiny random XLM-R (the real XLM-R tokenizer: Traditional and Simplified characters are distinct tokens,
    unlike the tiny BERT's small vocabulary, where most FAQ characters are [UNK])."""
    from kit.embed import LocalEncoder

    return LocalEncoder(str(tiny_xlmr), precision="fp32", progress=False)


def sample(rows: list[dict], n: int, seed: int) -> list[dict]:
    """A seeded random sample in random order (the file is ordered by law: any slice of a sorted sample would be
    a shift of its own)."""
    rng = np.random.default_rng(seed)
    return [rows[i] for i in rng.choice(len(rows), size=n, replace=False)]


def write_jsonl(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def make_workdir(tmp_path, tiny_xlmr, stard_rows, stard_queries):
    """(config path, inputs folder): a workdir prepped from 150 articles of a seeded set of laws, with 40 eval
    questions and bench's recommendation (the base model: the tiny XLM-R)."""
    from kit.formats import write_eval
    from kit.io import read_jsonl, write_json
    from kit.prep import PrepOptions, prep

    def make(rows=None, drift=None) -> tuple:
        rows = rows if rows is not None else sample(stard_rows, 150, 1)
        inputs, wd = tmp_path / "docs", tmp_path / "work"
        write_jsonl(inputs / "articles.jsonl", rows)
        popts = {"max_tokens": 200, "tokenizer": None, "workers": 1}
        prep([str(inputs)], wd / "corpus.jsonl", PrepOptions(progress=False, **popts), echo=lambda m: None)
        chunks = read_jsonl(wd / "corpus.jsonl")
        qs = [{"id": f"q{i}", "text": t} for i, t in enumerate(stard_queries[:40])]
        write_eval(wd / "data" / "eval", chunks, qs, [{"qid": q["id"], "docid": chunks[0]["id"], "relevance": 1}
                                                     for q in qs], info={"questions": "real"})
        write_jsonl(wd / "data" / "train_hn.jsonl", [{"query": "q", "pos": [chunks[0]["text"]], "neg": []}])
        write_json(wd / "manifests" / "prep.json", {"model": str(tiny_xlmr), "settings": popts})
        write_json(wd / "report" / "results.json", {"models": {"base": {"spec": f"local:{tiny_xlmr}"}},
                                                    "recommendation": {"recommended": "base"}})
        cfg = {"workdir": str(wd), "model": str(tiny_xlmr), "prep": {"inputs": [str(inputs)], **popts},
               "drift": {"permutations": 200, "sample_size": 150, **(drift or {})}}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        return config, inputs
    return make
