"""Model folders users can ship: stored in the training dtype, with a model card whose loading snippets (run here
as written) give the kit's own vectors in sentence-transformers, FlagEmbedding, transformers, LangChain and
LlamaIndex, and whose results section `kit bench` fills in."""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kit.embed import LocalEncoder
from kit.io import write_json
from kit.modelcard import RESULTS_FILE, write_card
from kit.modelfolder import MANIFEST_FILE, cast_weights, finish_output, stored_dtype
from kit.registry import resolve

QUERIES = ["劳动合同应当采用什么形式？", "试用期最长多久"]
PASSAGES = ["建立劳动关系，应当订立书面劳动合同。", "劳动合同期限三个月以上不满一年的，试用期不得超过一个月。"]


def kit_folder(src: Path, dst: Path, dtype: str) -> Path:
    """``src`` finished as kit train finishes its output: kit/ST files, weights in ``dtype``, manifest, card."""
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)   # ../shared is read-only
    (dst / "README.md").unlink(missing_ok=True)
    finish_output(dst, replace(resolve(str(src)), name_or_path=str(src)))
    weights = cast_weights(dst, dtype)
    write_json(dst / MANIFEST_FILE, {"stage": "train", "base_model": str(src), "family": "e5", "data": "train.jsonl",
                                     "data_rows": 10, "data_dropped": 0, "weights": weights,
                                     "training_dtype": dtype, "trainer_args": {"learning_rate": "5e-05"},
                                     "finished": "2026-01-01T00:00:00+00:00"})
    write_card(dst)
    return dst


@pytest.fixture(scope="module")
def e5_bf16(zh_e5_path, tmp_path_factory) -> Path:
    return kit_folder(zh_e5_path, tmp_path_factory.mktemp("m") / "zh-e5-ft", "bf16")


def kit_vectors(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    enc = LocalEncoder(str(folder), precision="fp32", cache=False, progress=False)
    return enc.encode_queries(QUERIES), enc.encode_passages(PASSAGES)


def test_weights_saved_in_the_training_dtype(zh_e5_path, tmp_path, e5_bf16):
    sizes = {}
    for dtype in ("fp32", "fp16"):
        sizes[dtype] = cast_weights(kit_folder(zh_e5_path, tmp_path / dtype, dtype), dtype)["weights_bytes"]
    sizes["bf16"] = (e5_bf16 / "model.safetensors").stat().st_size
    assert stored_dtype(e5_bf16) == "bf16" and stored_dtype(tmp_path / "fp16") == "fp16"
    assert json.loads((e5_bf16 / "config.json").read_text())["dtype"] == "bfloat16"
    # zh-e5-small: 186.4 MB in fp32, 93.2 MB in fp16 or bf16 (the header differs by a few bytes)
    assert 0.45 < sizes["bf16"] / sizes["fp32"] < 0.55 and abs(sizes["fp16"] - sizes["bf16"]) < 1000
    # the saved precision costs nothing measurable: the same vectors to 3 decimals
    q32, p32 = kit_vectors(tmp_path / "fp32")
    q16, p16 = kit_vectors(e5_bf16)
    assert float((q32 * q16).sum(1).min()) > 0.995 and float((p32 * p16).sum(1).min()) > 0.995
    assert "bf16, " in (e5_bf16 / "README.md").read_text() and "fp32 would be" in (e5_bf16 / "README.md").read_text()


def snippets(folder: Path) -> dict[str, str]:
    """The card's python blocks, keyed by the library they use, with PATH and the example texts filled in."""
    card = (folder / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", card, re.S)
    out = {}
    for b in blocks:
        lib = next(k for k in ("sentence_transformers", "FlagEmbedding", "langchain_huggingface", "llama_index",
                               "transformers") if f"from {k}" in b)
        code = b.replace('"PATH"', repr(str(folder)))
        code = re.sub(r'(queries = .*?)\["\.\.\."\]', lambda m: m.group(1) + repr(QUERIES), code)
        code = re.sub(r'(passages = .*?)\["\.\.\."\]', lambda m: m.group(1) + repr(PASSAGES), code)
        out[lib] = code
    return out


@pytest.mark.parametrize("lib", ["sentence_transformers", "FlagEmbedding", "transformers", "langchain_huggingface",
                                 "llama_index"])
def test_card_snippets_give_the_kits_vectors(e5_bf16, lib):
    code = snippets(e5_bf16)[lib]
    ns: dict = {}
    exec(compile(code, f"<model card: {lib}>", "exec"), ns)   # noqa: S102 - the card's own example, as written
    want_q, want_p = kit_vectors(e5_bf16)
    np.testing.assert_allclose(np.asarray(ns["queries"], dtype=np.float32), want_q, atol=2e-4)
    np.testing.assert_allclose(np.asarray(ns["passages"], dtype=np.float32), want_p, atol=2e-4)


def test_flagembedding_without_the_folders_arguments_is_wrong(e5_bf16):
    """Why the card gives FlagEmbedding arguments: its defaults (CLS pooling, no instruction) change the vectors."""
    from FlagEmbedding import FlagAutoModel, FlagModel

    want_q, _ = kit_vectors(e5_bf16)
    plain = FlagModel(str(e5_bf16), use_fp16=False, devices="cpu").encode_queries(QUERIES)
    assert np.abs(plain - want_q).max() > 0.05
    kw = json.loads((e5_bf16 / "kit_model.json").read_text())["flagembedding"]
    assert kw["pooling_method"] == "mean" and kw["query_instruction_for_retrieval"] == "query: "
    fm = FlagAutoModel.from_finetuned(str(e5_bf16), **kw, use_fp16=False, devices="cpu")
    np.testing.assert_allclose(fm.encode_queries(QUERIES), want_q, atol=2e-4)
    with pytest.raises(ValueError, match="not found in the model mapping"):
        FlagAutoModel.from_finetuned(str(e5_bf16))   # a fine-tuned folder's name is not in FlagEmbedding's table


def test_bench_writes_its_results_into_the_card(e5_bf16, tmp_path):
    from kit.bench.stage import BenchOptions, bench

    card = (e5_bf16 / "README.md").read_text(encoding="utf-8")
    assert "Not measured yet" in card
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "corpus.jsonl").write_text("".join(json.dumps({"id": f"d{i}", "title": "", "text": t}, ensure_ascii=False)
                                             + "\n" for i, t in enumerate(PASSAGES)), encoding="utf-8")
    (ev / "test_queries.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "text": t}, ensure_ascii=False) + "\n"
                                                   for i, t in enumerate(QUERIES)), encoding="utf-8")
    (ev / "test_qrels.jsonl").write_text("".join(json.dumps({"qid": f"q{i}", "docid": f"d{i}", "relevance": 1}) + "\n"
                                                 for i in range(2)), encoding="utf-8")
    res = bench(ev, {"ft": f"local:{e5_bf16}", "bm25": "bm25"}, tmp_path / "report",
                BenchOptions(latency_samples=2, progress=False))
    recorded = json.loads((e5_bf16 / RESULTS_FILE).read_text())[str(ev.resolve())]
    assert recorded["metrics"]["mrr"] == res["models"]["ft"]["domain"]["metrics"]["mrr@10"]
    card = (e5_bf16 / "README.md").read_text(encoding="utf-8")
    assert "Not measured yet" not in card and str(ev.resolve()) in card
    assert f"| this model | {res['models']['ft']['domain']['metrics']['mrr@10']:.4f} |" in card
    assert "| bm25 (`bm25`) |" in card and "not asked by real users" in card   # honest about the questions
    # the results bench wrote into the folder are records, not weights: the next bench encodes nothing again
    again = bench(ev, {"ft": f"local:{e5_bf16}"}, tmp_path / "report2", BenchOptions(latency_samples=2, progress=False))
    assert again["models"]["ft"]["domain"]["encoded"] == 0


def fp16_tiny_folder(tiny_bert: Path, dst: Path) -> Path:
    """The tiny random BERT finished as ``kit train`` finishes a model trained with --fp16: weights stored in fp16."""
    shutil.copytree(tiny_bert, dst)
    finish_output(dst, resolve(str(dst)))
    weights = cast_weights(dst, "fp16")
    write_json(dst / MANIFEST_FILE, {"stage": "train", "base_model": str(tiny_bert), "family": "st", "data": "t.jsonl",
                                     "data_rows": 1, "data_dropped": 0, "weights": weights, "training_dtype": "fp16",
                                     "finished": "2026-01-01T00:00:00+00:00"})
    write_card(dst)
    return dst


def test_fp16_folder_says_how_to_load_it_for_cpu_inference(tiny_bert, tmp_path):
    """Issue 20: an fp16 folder loads in fp16 on a CPU as stored (slow; sentence-transformers warns). kit_model.json
    and the card say how to load it in float32, and what they say works."""
    import torch
    from sentence_transformers import SentenceTransformer

    folder = fp16_tiny_folder(tiny_bert, tmp_path / "ft16")
    assert stored_dtype(folder) == "fp16" and json.loads((folder / "config.json").read_text())["dtype"] == "float16"
    assert next(SentenceTransformer(str(folder), device="cpu").parameters()).dtype == torch.float16   # the problem
    kit_model = json.loads((folder / "kit_model.json").read_text())
    assert kit_model["weights_dtype"] == "float16" and kit_model["cpu_inference"]["dtype"] == "float32"
    assert resolve(str(folder)).family == "st"   # the new keys do not disturb the kit's own reading of the file
    ns = {"SentenceTransformer": SentenceTransformer, "AutoModel": __import__("transformers").AutoModel,
          "torch": torch, "PATH": str(folder)}
    st = eval(kit_model["cpu_inference"]["sentence_transformers"], ns)        # noqa: S307 - the file's own advice
    hf = eval(kit_model["cpu_inference"]["transformers"], ns)                 # noqa: S307
    assert next(st.parameters()).dtype == torch.float32 and hf.dtype == torch.float32
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "**CPU inference**: the weights are stored in float16" in card
    assert 'SentenceTransformer(PATH, model_kwargs={"dtype": "float32"})' in card
    assert "AutoModel.from_pretrained(PATH, dtype=torch.float32)" in card and "`torch_dtype`" in card
    # an fp32 folder's card says there is nothing to do
    cast_weights(folder, "fp32")
    (folder / MANIFEST_FILE).unlink()   # the card then reads the dtype from the weights themselves
    write_card(folder)
    assert "stored in float32 and load in float32 everywhere" in (folder / "README.md").read_text(encoding="utf-8")
    assert json.loads((folder / "kit_model.json").read_text())["weights_dtype"] == "float32"
