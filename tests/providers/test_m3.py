"""bge-m3 folders (issue 21, points 1c and 4): ``m3_rankings`` ranks with FlagEmbedding's own dense, sparse and ColBERT
scores, and bge-m3's sparse/ColBERT heads survive everything the kit does to such a folder (merge, the stored dtype,
export, the model card, training): reloaded with ``BGEM3FlagModel``, the sparse output is non-empty and its lexical
weights match the unmerged model's within LEXICAL_ATOL where the merge weight is 0 or 1.

Everything runs on a tiny random bge-m3 (2 layers, 32 wide, a 350-token vocabulary) in fp32; a test takes seconds.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kit.io import KitError
from kit.merge import MergeOptions, merge
from kit.modelcard import write_card
from kit.modelfolder import HEAD_FILES, MANIFEST_FILE, cast_weights, finish_output
from kit.providers import m3 as m3mod
from kit.providers.m3 import is_m3_folder, m3_rankings
from kit.registry import resolve
from helpers.training import build_m3, fake_finetune

# fp32 end to end, and a merge at weight 0 or 1 is exact (1·a + 0·b = a): what is left is summation order.
LEXICAL_ATOL = 1e-4
PASSAGES = ["劳动合同应当以书面形式订立", "用人单位应当按时足额支付工资", "试用期不得超过六个月", "经济补偿按工作年限计算",
            "社会保险由单位和个人共同缴纳", "解除合同应当提前三十日通知", "违反本法规定应当承担赔偿责任", "工资不得低于最低工资标准"]
QUERIES = ["劳动合同怎么订立？", "工资什么时候支付", "试用期多长"]
WEIGHTS = (0.4, 0.2, 0.4)


@pytest.fixture(scope="module")
def m3_base(tmp_path_factory) -> Path:
    return build_m3(tmp_path_factory.mktemp("m3") / "bge-m3-tiny")


def flag_model(folder: Path):
    from FlagEmbedding import BGEM3FlagModel

    return BGEM3FlagModel(str(folder), use_fp16=False, devices="cpu")


def lexical(folder: Path) -> list[dict]:
    """The folder's sparse output for PASSAGES + QUERIES, as BGEM3FlagModel gives it: {token id: weight}."""
    return flag_model(folder).encode(PASSAGES + QUERIES, return_dense=False, return_sparse=True)["lexical_weights"]


def lexical_gap(a: list[dict], b: list[dict]) -> float:
    """The largest weight difference over all texts and tokens (a token missing on one side weighs 0 there)."""
    return max(abs(float(x.get(t, 0.0)) - float(y.get(t, 0.0))) for x, y in zip(a, b) for t in {*x, *y})


def assert_non_empty(lw: list[dict]) -> None:
    assert all(any(float(v) > 0 for v in d.values()) for d in lw), "a text has no lexical weight"


def finished(src: Path, dst: Path) -> Path:
    """``src`` copied and finished as kit train finishes its output (kit/ST files, heads carried, fp32)."""
    shutil.copytree(src, dst)
    finish_output(dst, replace(resolve(str(src)), name_or_path=str(src)))
    cast_weights(dst, "fp32")
    return dst


# ------------------------------------------------------------------------------------------------ m3_rankings


def test_is_m3_folder_needs_both_heads(m3_base, tmp_path):
    """BGEM3FlagModel loads the heads only when both files exist (else both are random, silently)."""
    assert is_m3_folder(m3_base) and resolve(str(m3_base)).family == "bge-m3"
    one = tmp_path / "one-head"
    shutil.copytree(m3_base, one)
    (one / "sparse_linear.pt").unlink()
    assert not is_m3_folder(one) and not is_m3_folder(tmp_path / "nothing")
    with pytest.raises(KitError, match="missing sparse_linear.pt"):
        m3_rankings(str(one), QUERIES, PASSAGES, 3)


def matrix(ranked: tuple[np.ndarray, np.ndarray], n: int) -> np.ndarray:
    """(scores, indices) best first back to a queries x passages matrix (NaN where a passage was not ranked)."""
    out = np.full((len(ranked[0]), n), np.nan)
    np.put_along_axis(out, ranked[1], ranked[0], axis=1)
    return out


def reference_scores(folder: Path) -> dict[str, np.ndarray]:
    """Every query x passage score computed by BGEM3FlagModel's own functions, pair by pair."""
    model = flag_model(folder)
    kw = dict(return_dense=True, return_sparse=True, return_colbert_vecs=True)
    q, p = model.encode_queries(QUERIES, **kw), model.encode_corpus(PASSAGES, **kw)
    dense = q["dense_vecs"] @ p["dense_vecs"].T
    sparse = np.asarray(model.compute_lexical_matching_score(q["lexical_weights"], p["lexical_weights"]))
    colbert = np.array([[float(model.colbert_score(qc, pc)) for pc in p["colbert_vecs"]] for qc in q["colbert_vecs"]])
    # compute_score, one pair per batch (a padded batch lets ColBERT match padding at score 0)
    pairs = [(qt, pt) for qt in QUERIES for pt in PASSAGES]
    cs = model.compute_score(pairs, batch_size=1, weights_for_different_modes=list(WEIGHTS))
    shape = (len(QUERIES), len(PASSAGES))
    return {"dense": dense, "sparse": sparse, "colbert": colbert, "lexical_q": q["lexical_weights"],
            "lexical_p": p["lexical_weights"], **{k: np.reshape(v, shape) for k, v in cs.items()}}


def test_rankings_are_flagembeddings_scores_best_first(m3_base):
    ranked = m3_rankings(str(m3_base), QUERIES, PASSAGES, depth=3)
    assert set(ranked) == {"dense", "sparse", "dense+sparse", "dense+sparse+colbert"}
    for scores, ids in ranked.values():
        assert scores.shape == ids.shape == (len(QUERIES), 3)
        assert scores.dtype == np.float32 and ids.dtype == np.int64
        assert (np.diff(scores, axis=1) <= 0).all()
        assert all(len(set(row)) == 3 for row in ids.tolist()) and ids.min() >= 0 and ids.max() < len(PASSAGES)

    ref = reference_scores(m3_base)
    full = {k: matrix(v, len(PASSAGES)) for k, v in m3_rankings(str(m3_base), QUERIES, PASSAGES, 99).items()}
    np.testing.assert_allclose(full["dense"], ref["dense"], atol=1e-5)
    np.testing.assert_allclose(full["sparse"], ref["sparse"], atol=1e-5)
    # the combinations: compute_score's weighted sums over the sum of the weights used (0.4 + 0.2 + 0.4 = 1)
    np.testing.assert_allclose(full["dense+sparse"], ref["sparse+dense"], atol=1e-5)
    np.testing.assert_allclose(full["dense+sparse"], (0.4 * ref["dense"] + 0.2 * ref["sparse"]) / 0.6, atol=1e-5)
    np.testing.assert_allclose(full["dense+sparse+colbert"], ref["colbert+sparse+dense"], atol=1e-5)
    np.testing.assert_allclose(full["dense+sparse+colbert"],
                               0.4 * ref["dense"] + 0.2 * ref["sparse"] + 0.4 * ref["colbert"], atol=1e-5)
    # sparse: a score where the query and the passage share a weighted token, none where they share none
    shared = np.array([[bool(set(q) & set(p)) for p in ref["lexical_p"]] for q in ref["lexical_q"]])
    assert ((full["sparse"] > 0) == shared).all()
    assert full["sparse"][0, 0] > 0   # 劳动合同…订立 in both


def test_colbert_reranks_only_the_dense_and_sparse_candidates(m3_base, monkeypatch):
    """ColBERT scores the union of each query's dense and sparse top max(depth, COLBERT_CANDIDATES), nothing else;
    chunking the corpus, and re-encoding the candidates when their vectors were not kept, change no score."""
    full = m3_rankings(str(m3_base), QUERIES, PASSAGES, 99)
    combined = matrix(full["dense+sparse+colbert"], len(PASSAGES))
    scored = []
    real_maxsim = m3mod.maxsim
    monkeypatch.setattr(m3mod, "maxsim", lambda q, ps: scored.append(len(ps)) or real_maxsim(q, ps))
    monkeypatch.setattr(m3mod, "COLBERT_CANDIDATES", 2)
    monkeypatch.setattr(m3mod, "CORPUS_CHUNK", 3)
    for keep in (1 << 30, 0):   # ColBERT vectors kept from the first pass / encoded again for the candidates
        monkeypatch.setattr(m3mod, "COLBERT_KEEP_BYTES", keep)
        scored.clear()
        small = m3_rankings(str(m3_base), QUERIES, PASSAGES, 1)
        cands = [set(full["dense"][1][i, :2]) | set(full["sparse"][1][i, :2]) for i in range(len(QUERIES))]
        assert sum(scored) == sum(len(c) for c in cands)
        for key in ("dense", "sparse", "dense+sparse"):
            np.testing.assert_array_equal(small[key][1], full[key][1][:, :1])
            np.testing.assert_allclose(small[key][0], full[key][0][:, :1], atol=1e-6)
        for i, c in enumerate(cands):
            best = max(c, key=lambda j: combined[i, j])
            assert small["dense+sparse+colbert"][1][i, 0] == best
            assert small["dense+sparse+colbert"][0][i, 0] == pytest.approx(combined[i, best], abs=1e-6)


# ------------------------------------------------------------------------------------ heads survive the kit


def test_merge_keeps_the_sparse_head(m3_base, tmp_path):
    """At weight 1 the merged folder's lexical weights are the fine-tuned model's, at 0 the base's (LEXICAL_ATOL),
    at 0.5 the heads are the average; every merged folder reloads with a non-empty sparse output."""
    base = shutil.copytree(m3_base, tmp_path / "bge-m3-tiny")
    ft = fake_finetune(base, tmp_path / "bge-m3-tiny-ft")
    outs = merge(str(base), str(ft), tmp_path / "merged", MergeOptions(weights=[0.0, 0.5, 1.0]))
    assert [o.name for o in outs] == ["w0", "w0.5", "w1"]
    want = {"w0": lexical(base), "w1": lexical(ft)}
    assert lexical_gap(want["w0"], want["w1"]) > 100 * LEXICAL_ATOL   # the check below can tell them apart
    for out in outs:
        assert is_m3_folder(out) and resolve(str(out)).family == "bge-m3"
        got = lexical(out)
        assert_non_empty(got)
        if out.name in want:
            assert lexical_gap(got, want[out.name]) <= LEXICAL_ATOL, out.name
        assert json.loads((out / MANIFEST_FILE).read_text())["heads_merged"] == list(HEAD_FILES)
        assert "| sparse / ColBERT heads | `colbert_linear.pt`, `sparse_linear.pt`, merged with the same weights |" \
            in (out / "README.md").read_text(encoding="utf-8")
    for head in HEAD_FILES:
        b, f, m = (torch.load(p / head) for p in (base, ft, tmp_path / "merged" / "w0.5"))
        for k in b:
            torch.testing.assert_close(m[k], 0.5 * f[k] + 0.5 * b[k], atol=1e-6, rtol=0)


def test_merge_keeps_the_base_heads_for_a_fine_tuned_folder_without_them(m3_base, tmp_path):
    """A bge-m3 fine-tuned outside the kit without unified fine-tuning has no heads and no kit_model.json, so it
    does not look like bge-m3; the base does, and its heads must reach the merged folder (they used not to)."""
    from safetensors.torch import load_file, save_file

    base = shutil.copytree(m3_base, tmp_path / "bge-m3-tiny")
    ft = shutil.copytree(m3_base, tmp_path / "plain-ft")
    for head in HEAD_FILES:
        (ft / head).unlink()
    sd = load_file(ft / "model.safetensors")
    save_file({k: (v + 0.05 if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
              ft / "model.safetensors", metadata={"format": "pt"})
    assert resolve(str(ft)).family != "bge-m3"
    out = merge(str(base), str(ft), tmp_path / "merged", MergeOptions(weights=[1.0]))[0]
    assert json.loads((out / MANIFEST_FILE).read_text())["heads_merged"] == list(HEAD_FILES)
    for head in HEAD_FILES:
        b, m = torch.load(base / head), torch.load(out / head)
        assert all(torch.equal(b[k], m[k]) for k in b)
    assert_non_empty(lexical(out))


@pytest.mark.parametrize("dtype,atol", [("fp16", 2e-3), ("bf16", 1.5e-2)])
def test_saved_dtype_keeps_the_sparse_head(m3_base, tmp_path, dtype, atol):
    """``--save-dtype`` (how kit train / kit merge export the weights) casts the heads with the encoder: reloaded,
    the sparse output is non-empty and within the dtype's rounding of the fp32 folder's (fp16 has 11 significant
    bits, bf16 8: ``atol`` on weights near 1)."""
    src = finished(m3_base, tmp_path / "fp32")
    folder = finished(m3_base, tmp_path / dtype)
    cast_weights(folder, dtype)
    assert all(v.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
               for h in HEAD_FILES for v in torch.load(folder / h).values())
    got, want = lexical(folder), lexical(src)
    assert_non_empty(got)
    assert lexical_gap(got, want) <= atol


def test_export_with_an_m3_model_leaves_the_heads_alone(m3_base, tmp_path):
    """`kit export --model` reads a model folder only for its instructions (kit/export.py writes data, no model
    folder): for bge-m3 there are none, and the folder, heads included, is unchanged."""
    from click.testing import CliRunner
    from helpers.export_data import write_eval, write_train

    from kit.cli import main

    folder = finished(m3_base, tmp_path / "bge-m3-ft")

    def digest():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}

    before = digest()
    r = CliRunner().invoke(main, ["export", "--train", str(write_train(tmp_path / "train.jsonl")),
                                  "--eval", str(write_eval(tmp_path / "eval")), "-o", str(tmp_path / "out"),
                                  "--model", str(folder), "--negatives", "3"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "out" / "sentence-transformers" / "prompts.json").read_text()) == {}
    assert digest() == before and set(HEAD_FILES) <= set(before)
    assert_non_empty(lexical(folder))


def card_snippet(folder: Path) -> str:
    card = (folder / "README.md").read_text(encoding="utf-8")
    code = next(b for b in re.findall(r"```python\n(.*?)```", card, re.S) if "BGEM3FlagModel" in b)
    code = code.replace('"PATH"', repr(str(folder)))
    code = re.sub(r'(queries = .*?)\["\.\.\."\]', lambda m: m.group(1) + repr(QUERIES), code)
    return re.sub(r'(passages = .*?)\["\.\.\."\]', lambda m: m.group(1) + repr(PASSAGES), code)


def test_card_says_where_the_heads_came_from_and_how_to_use_them(m3_base, tmp_path):
    folder = finished(m3_base, tmp_path / "bge-m3-ft")
    manifest = {"stage": "train", "base_model": str(m3_base), "family": "bge-m3", "trainer_args": {}}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    card = write_card(folder).read_text(encoding="utf-8")
    assert "| sparse / ColBERT heads | `colbert_linear.pt`, `sparse_linear.pt`, the base model's, unchanged" in card
    ns: dict = {}
    exec(compile(card_snippet(folder), "<model card: BGEM3FlagModel>", "exec"), ns)   # noqa: S102 - as written
    want = lexical(folder)
    assert lexical_gap(ns["passages"]["lexical_weights"] + ns["queries"]["lexical_weights"], want) <= LEXICAL_ATOL
    assert float(ns["sparse"][0][0]) > 0 and np.isfinite(float(ns["colbert"]))

    manifest["trainer_args"] = {"unified_finetuning": "True"}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert "`sparse_linear.pt`, trained with the encoder" in write_card(folder).read_text(encoding="utf-8")
    (folder / "sparse_linear.pt").unlink()
    assert "| sparse / ColBERT heads | **missing** (sparse_linear.pt)" in write_card(folder).read_text(encoding="utf-8")


@pytest.mark.slow   # about 15 s: torchrun + FlagEmbedding's m3 trainer, 2 steps on CPU
def test_train_m3_with_unified_finetuning_keeps_the_trained_heads(m3_base, tmp_path):
    """`unified_finetuning: true` under train.args: FlagEmbedding trains and saves the heads itself; the kit keeps
    them (nothing copied over them from the base), and the folder reloads with a sparse output of its own."""
    from helpers.training import run_kit, write_config, write_train_data

    out = tmp_path / "m3-ft"
    cfg = write_config(tmp_path / "c.yaml", m3_base, write_train_data(tmp_path / "train.jsonl"), out,
                       unified_finetuning=True)
    res = run_kit(["train", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "--unified_finetuning True" in res.stderr and "copied" not in res.stderr
    for head in HEAD_FILES:
        trained, base, ckpt = (torch.load(p / head) for p in (out, m3_base, out / "checkpoint-2"))
        assert any(not torch.equal(trained[k], base[k]) for k in base), f"{head} did not train"
        assert all(torch.equal(trained[k], ckpt[k]) for k in base)
    model = flag_model(out)   # loads the saved heads (both files there), not fresh random ones
    for name in ("sparse_linear", "colbert_linear"):
        loaded, saved = getattr(model.model, name).state_dict(), torch.load(out / f"{name}.pt")
        assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert_non_empty(lexical(out))
    assert "`sparse_linear.pt`, trained with the encoder" in (out / "README.md").read_text(encoding="utf-8")
    ranked = m3_rankings(str(out), QUERIES, PASSAGES, 3)
    assert ranked["sparse"][0].shape == (len(QUERIES), 3) and (ranked["sparse"][0][:, 0] > 0).all()


def test_bench_adds_the_m3_folders_own_combinations_as_hybrid_rows(m3_base, tmp_path):
    """`kit bench` on a bge-m3 folder: rows "<name> m3 (dense+sparse[+colbert])" ranked by BGEM3FlagModel's own
    scores, with the metrics of the rankings m3_rankings gives, and the heads' index in the row's size."""
    from kit.bench.stage import BenchOptions, bench

    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "corpus.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "text": t}, ensure_ascii=False) + "\n"
                                             for i, t in enumerate(PASSAGES)), encoding="utf-8")
    (ev / "test_queries.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "text": t}, ensure_ascii=False) + "\n"
                                                   for i, t in enumerate(QUERIES)), encoding="utf-8")
    (ev / "test_qrels.jsonl").write_text("".join(json.dumps({"qid": f"q{i}", "docid": f"p{i}", "relevance": 1}) + "\n"
                                                 for i in range(len(QUERIES))), encoding="utf-8")
    res = bench(ev, {"m3": f"local:{m3_base}", "bm25": "bm25"}, tmp_path / "report",
                BenchOptions(latency_samples=0, progress=False, k=[1, 5], fusion_depth=10))
    ranked = m3_rankings(str(m3_base), QUERIES, PASSAGES, depth=5)
    for key in ("dense+sparse", "dense+sparse+colbert"):
        row = res["hybrid"][f"m3 m3 ({key})"]
        rr = [next((1 / r for r, d in enumerate(ids, 1) if d == qi), 0.0) for qi, ids in enumerate(ranked[key][1])]
        assert row["domain"]["metrics"]["mrr@5"] == pytest.approx(np.mean(rr), abs=1e-6)
        assert row["kind"] == "hybrid" and row["lexical_index_bytes_per_1m_chunks"] > 0
        assert row["index_bytes_per_1m_chunks"] > res["models"]["m3"]["index_bytes_per_1m_chunks"]
    assert res["hybrid"]["m3 m3 (dense+sparse+colbert)"]["index_bytes_per_1m_chunks"] > \
        res["hybrid"]["m3 m3 (dense+sparse)"]["index_bytes_per_1m_chunks"]
    assert "m3 + bm25 (rrf)" in res["hybrid"]   # and the BM25 fusions as for any dense model
    assert "BGEM3FlagModel" in (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
