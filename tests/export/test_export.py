"""kit export: each file is fed to the library that reads it — sentence-transformers' trainer, BEIR's loader (and
the kit's own), sentence-transformers' InformationRetrievalEvaluator — and what they compute agrees with the kit."""
from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from kit.cli import main
from kit.export import negative_columns
from kit.formats import load_eval
from helpers.export_data import PASSAGES, QUERIES, write_eval, write_train


@pytest.fixture(scope="module")
def exported(tmp_path_factory, zh_e5_path):
    d = tmp_path_factory.mktemp("export")
    r = CliRunner().invoke(main, ["export", "--train", str(write_train(d / "train.jsonl")),
                                  "--eval", str(write_eval(d / "eval")), "-o", str(d / "out"),
                                  "--model", str(zh_e5_path), "--negatives", "3"])
    assert r.exit_code == 0, r.output
    assert "training: 5 rows (anchor, positive, negative_1..negative_3) from 6 query rows; 1 dropped" in r.stdout
    assert "eval: 5 queries, 6 passages, 5 qrels" in r.stdout
    return d


def test_negative_columns_keep_most_rows():
    assert negative_columns([3, 3, 3, 3, 3, 3, 3, 3, 3, 0], None) == 3   # 90% have 3
    assert negative_columns([5, 5, 1, 1], None) == 1
    assert negative_columns([5, 5, 1, 1], 4) == 4


def test_sentence_transformers_trainer_takes_the_rows(exported, tiny_bert, tmp_path):
    from datasets import load_dataset, load_from_disk
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, \
        SentenceTransformerTrainingArguments, losses

    out = exported / "out" / "sentence-transformers"
    ds = load_from_disk(str(out / "train"))
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"] and len(ds) == 5
    from_json = load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    assert from_json.column_names == ds.column_names and from_json[0] == ds[0]
    prompts = json.loads((out / "prompts.json").read_text())
    assert prompts == {"anchor": "query: ", "positive": "passage: ", "negative_1": "passage: ",
                       "negative_2": "passage: ", "negative_3": "passage: "}
    model = SentenceTransformer(str(tiny_bert), device="cpu")
    before = [p.detach().clone() for p in model.parameters()]
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "st"), max_steps=2, per_device_train_batch_size=2,
                                                learning_rate=1e-3, prompts=prompts, report_to="none", use_cpu=True,
                                                save_strategy="no", logging_steps=1)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds,
                                         loss=losses.MultipleNegativesRankingLoss(model))
    result = trainer.train()
    assert result.global_step == 2 and math.isfinite(result.training_loss)
    assert any(not b.equal(a) for a, b in zip(model.parameters(), before))


def test_beir_folder_reads_the_same_in_beir_and_the_kit(exported):
    from beir.datasets.data_loader import GenericDataLoader

    beir_dir = exported / "out" / "beir"
    corpus, queries, qrels = GenericDataLoader(data_folder=str(beir_dir)).load(split="test")
    assert corpus == {k: {"title": t, "text": x} for k, (t, x) in PASSAGES.items()}
    assert queries == {q: t for q, (t, _) in QUERIES.items()}
    assert qrels == {q: {a: 1} for q, (_, a) in QUERIES.items()}
    mine, theirs = load_eval(exported / "eval"), load_eval(beir_dir)
    assert (mine.doc_ids, mine.doc_texts, mine.query_ids, mine.query_texts, mine.qrels) == \
        (theirs.doc_ids, theirs.doc_texts, theirs.query_ids, theirs.query_texts, theirs.qrels)


@pytest.mark.slow   # about 20 s: zh-e5-small embeds the set twice (ST's evaluator, kit bench)
def test_information_retrieval_evaluator_agrees_with_kit_bench(exported, zh_e5_path, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    from kit.bench.stage import BenchOptions, bench

    d = json.loads((exported / "out" / "ir-evaluator" / "ir_evaluator.json").read_text(encoding="utf-8"))
    prompts = json.loads((exported / "out" / "sentence-transformers" / "prompts.json").read_text())
    ev = InformationRetrievalEvaluator(d["queries"], d["corpus"], {q: set(v) for q, v in d["relevant_docs"].items()},
                                       query_prompt=prompts["anchor"], corpus_prompt=prompts["positive"],
                                       mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10], precision_recall_at_k=[10],
                                       map_at_k=[10], name="kit")
    st = ev(SentenceTransformer(str(zh_e5_path), device="cpu"))
    ours = bench(exported / "eval", {"e5": f"local:{zh_e5_path}"}, tmp_path / "r",
                 BenchOptions(precision="fp32", latency_samples=0, progress=False))["models"]["e5"]["domain"]["metrics"]
    mrr = next(v for k, v in st.items() if k.endswith("cosine_mrr@10"))
    ndcg = next(v for k, v in st.items() if k.endswith("cosine_ndcg@10"))
    assert mrr == pytest.approx(ours["mrr@10"], abs=1e-6) and ndcg == pytest.approx(ours["ndcg@10"], abs=1e-6)
    assert 0 < mrr <= 1


def test_export_needs_something_to_export(tmp_path):
    r = CliRunner().invoke(main, ["export", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "nothing to export" in r.stderr and "Traceback" not in r.output
