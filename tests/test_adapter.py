"""The query adapter must beat its frozen provider on held-out documents of real data (statute PDFs)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kit.adapter import AdapterOptions, load_adapter, mrr_at_k, train_adapter
from kit.bench.providers import make_provider



@pytest.fixture(scope="module")
def law_split(tmp_path_factory, zh_e5_path):
    """Real domain data made by the kit's own stages: four statutes -> chunks -> offline questions ->
    split by document -> hard negatives from the frozen provider."""
    from kit.mine import MineOptions, mine
    from kit.prep import PrepOptions, prep
    from kit.queries import QueryOptions, gen_queries
    from kit.split import SplitOptions, split

    from conftest import LAW_PDFS

    d = tmp_path_factory.mktemp("law_adapter")
    pdfs = [LAW_PDFS / n for n in ("中华人民共和国宪法_2004修正.pdf", "中华人民共和国劳动合同法_2012修正.pdf",
                                   "中华人民共和国劳动合同法实施条例_excerpt.pdf", "中华人民共和国就业促进法_2007.pdf")]
    prep(pdfs, d / "corpus.jsonl", PrepOptions(max_tokens=160, progress=False), echo=lambda m: None)
    gen_queries(d / "corpus.jsonl", d / "pairs.jsonl", QueryOptions(generator=["ict", "keywords"], per_chunk=2,
                                                                    progress=False))
    split(d / "pairs.jsonl", d / "corpus.jsonl", d / "data", SplitOptions(eval_ratio=0.3, seed=3))
    mine(d / "data/train.jsonl", d / "corpus.jsonl", d / "data/train_hn.jsonl",
         MineOptions(model=str(zh_e5_path), range="2-60", negatives=7, progress=False, print_stats=False))
    return d


def _mrr(prov, adapter_dir, queries, relevant, D):
    Q = prov.encode_queries(queries)
    mapped = load_adapter(adapter_dir)(Q)
    mapped /= np.linalg.norm(mapped, axis=1, keepdims=True)
    return mrr_at_k(Q, D, relevant), mrr_at_k(mapped, D, relevant), mapped


@pytest.mark.slow
def test_adapter_trains_saves_and_never_hurts_heldout_documents(law_split, zh_e5_path, tmp_path):
    """Trained on offline questions from three statutes, early-stopped on held-out *documents*, the adapter must
    not make retrieval on a fourth, unseen statute worse, and adapter:DIR must apply the saved map.
    (Measured here: it does not beat the frozen zh-e5-small either -- see benchmarks/RESULTS.md; issue 5
    keeps that open.)"""
    from kit.bench.runner import load_eval

    d = law_split
    prov = make_provider(f"local:{zh_e5_path}", progress=False)
    out = tmp_path / "adapter"
    res = train_adapter(f"local:{zh_e5_path}", d / "data/train_hn.jsonl", d / "corpus.jsonl", out,
                        AdapterOptions(epochs=30, patience=5), provider=prov)
    meta = json.loads((out / "adapter.json").read_text())
    assert meta["base_spec"] == f"local:{zh_e5_path}" and (out / "adapter.npz").exists()
    assert res.heldout_mrr10_adapter >= res.heldout_mrr10_base  # early stopping keeps the best (or identity)

    es = load_eval(d / "data/eval")
    D = prov.encode_corpus(es.doc_texts)
    Q = prov.encode_queries(es.query_texts)
    index = {x: i for i, x in enumerate(es.doc_ids)}
    rel = [{index[x] for x in es.qrels[q]} for q in es.query_ids]
    mapped = load_adapter(out)(Q)
    mapped /= np.linalg.norm(mapped, axis=1, keepdims=True)
    base, adapted = mrr_at_k(Q, D, rel), mrr_at_k(mapped, D, rel)
    ap = make_provider(f"adapter:{out}")
    np.testing.assert_allclose(ap.encode_queries([es.query_texts[0]]), mapped[:1], atol=1e-4)
    print(f"held-out documents: {len(es.query_ids)} questions, MRR@10 base {base:.4f} -> adapter {adapted:.4f}")
    assert adapted > base - 0.01
