"""Model folders and training runs the tests share: ``run_kit`` (the click group with train/merge), the training rows
and config ``kit train`` reads, bge-m3 heads, ``check_loads_everywhere`` (sentence-transformers and FlagEmbedding
load a folder and pool as computed by hand), ``fake_finetune`` (a base plus noise, finished like kit train) and
``build_m3`` (a tiny random bge-m3 as BAAI/bge-m3's repo stores it)."""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from conftest import _TINY_CHARS
from kit.registry import resolve
from kit.train import finish_output

TEXTS = ["劳动合同应当以书面形式订立", "用人单位应当按时足额支付工资", "试用期不得超过六个月", "经济补偿按工作年限计算",
         "社会保险由单位和个人共同缴纳", "解除合同应当提前三十日通知", "违反本法规定应当承担赔偿责任", "工资不得低于最低工资标准"]


def kit_main():
    """The click group with the train/merge commands registered."""
    try:
        from kit.cli import main
        return main
    except ImportError:
        # Until every stage's CLI module exists, kit/cli/__init__.py cannot import; load ours directly.
        import importlib
        import types
        pkg = types.ModuleType("kit.cli")
        pkg.__path__ = [str(Path(__file__).resolve().parents[2] / "kit" / "cli")]
        sys.modules["kit.cli"] = pkg
        common = importlib.import_module("kit.cli._common")
        importlib.import_module("kit.cli.train")
        importlib.import_module("kit.cli.merge")
        return common.main


def run_kit(args: list[str]):
    result = CliRunner().invoke(kit_main(), args, catch_exceptions=False)
    return result


def write_train_data(path: Path, n: int = 16, negs: int = 5) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            pos = TEXTS[i % len(TEXTS)]
            row = {"query": f"问题{i}：{pos[:6]}？", "pos": [pos], "neg": [t for t in TEXTS if t != pos][:negs],
                   "pos_ids": [f"c{i % 8}"], "doc": "劳动合同法", "generator": "llm"}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def add_m3_heads(folder: Path, seed: int = 1) -> None:
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    g = torch.Generator().manual_seed(seed)
    torch.save({"weight": torch.randn(hidden, hidden, generator=g), "bias": torch.randn(hidden, generator=g)},
               folder / "colbert_linear.pt")
    torch.save({"weight": torch.randn(1, hidden, generator=g), "bias": torch.randn(1, generator=g)},
               folder / "sparse_linear.pt")


def write_config(path: Path, model: Path, data: Path, output: Path, **args) -> Path:
    import yaml
    train_args = dict(max_steps=2, per_device_train_batch_size=2, train_group_size=4, query_max_len=16,
                      passage_max_len=32, save_steps=2, logging_steps=1, learning_rate=1e-4,
                      dataloader_num_workers=0)
    train_args.update(args)
    cfg = {"model": str(model), "train": {"data": str(data), "output_dir": str(output), "nproc": 1,
                                          "fp16": True, "deepspeed": "configs/ds_stage1.json",
                                          "args": train_args}}
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def manual_embeddings(folder: Path, texts: list[str], pooling: str) -> np.ndarray:
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    with torch.no_grad():
        enc = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        if pooling == "cls":
            v = hidden[:, 0]
        else:
            m = enc["attention_mask"].unsqueeze(-1).float()
            v = (hidden * m).sum(1) / m.sum(1)
        return torch.nn.functional.normalize(v, dim=-1).numpy()


def check_loads_everywhere(folder: Path, pooling: str, query_prompt: str) -> None:
    """sentence-transformers and FlagEmbedding (FlagModel / BGEM3FlagModel, and FlagAutoModel with the arguments the
    folder carries) load ``folder`` and pool like the manual computation; the folder has its model card."""
    from FlagEmbedding import FlagAutoModel
    from sentence_transformers import SentenceTransformer
    texts = TEXTS[:3]
    want = manual_embeddings(folder, texts, pooling)
    st = SentenceTransformer(str(folder), device="cpu", model_kwargs={"dtype": torch.float32})
    assert st.get_embedding_dimension() == want.shape[1]
    np.testing.assert_allclose(st.encode(texts, normalize_embeddings=False), want, atol=1e-5)
    assert (st.prompts.get("query") or "") == query_prompt
    spec = resolve(str(folder))
    assert spec.pooling == pooling and spec.query_instruction == query_prompt
    kw = json.loads((folder / "kit_model.json").read_text())["flagembedding"]
    auto = FlagAutoModel.from_finetuned(str(folder), **kw, use_fp16=False, devices="cpu")
    if spec.family == "bge-m3":
        from FlagEmbedding import BGEM3FlagModel
        fm = BGEM3FlagModel(str(folder), use_fp16=False, devices="cpu")
        out = fm.encode(texts, return_dense=True, return_sparse=True, return_colbert_vecs=True)
        np.testing.assert_allclose(out["dense_vecs"], want, atol=1e-5)
        assert len(out["lexical_weights"]) == 3 and len(out["colbert_vecs"]) == 3
        np.testing.assert_allclose(auto.encode_corpus(texts)["dense_vecs"], want, atol=1e-5)
    else:
        from FlagEmbedding import FlagModel
        fm = FlagModel(str(folder), pooling_method=spec.pooling, use_fp16=False, devices="cpu",
                       query_instruction_for_retrieval=spec.query_instruction or None)
        np.testing.assert_allclose(fm.encode_corpus(texts), want, atol=1e-5)
        # FlagAutoModel with the folder's arguments adds the passage instruction (e5: "passage: ") as the kit does
        want_p = manual_embeddings(folder, [spec.passage_text(t) for t in texts], pooling)
        np.testing.assert_allclose(auto.encode_corpus(texts), want_p, atol=1e-5)
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Use it" in card and "FlagAutoModel.from_finetuned" in card and f"| pooling | {pooling} |" in card


def fake_finetune(base: Path, dst: Path, seed: int = 7) -> Path:
    """A 'fine-tuned' model: the base plus noise on every float tensor (heads too), finished like kit train."""
    shutil.copytree(base, dst)
    g = torch.Generator().manual_seed(seed)
    sd = load_file(dst / "model.safetensors")
    save_file({k: (v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v).contiguous()
               for k, v in sd.items()}, dst / "model.safetensors", metadata={"format": "pt"})
    for head in ("colbert_linear.pt", "sparse_linear.pt"):
        if (dst / head).exists():
            hs = torch.load(dst / head)
            torch.save({k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in hs.items()}, dst / head)
    finish_output(dst, replace(resolve(str(base)), name_or_path=str(base)))
    return dst


def build_m3(d: Path, hidden: int = 32) -> Path:
    """A random bge-m3 saved as BAAI/bge-m3's repo stores it: the XLM-R folder plus ``sparse_linear.pt`` (the state
    dict of Linear(hidden, 1)) and ``colbert_linear.pt`` (Linear(hidden, hidden)), which BGEM3FlagModel loads with
    torch.load. The tokenizer is XLM-R's (Unigram, ▁ prefix, <s> </s> <pad> <unk>) over the conftest characters and
    a few words, so that texts share multi-character tokens: 350 entries instead of 250,002."""
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    d.mkdir(parents=True)
    words = ["劳动", "合同", "工资", "用人单位", "解除", "试用期", "经济补偿", "社会保险"]
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(w, -3.0) for w in words] + [(c, -5.0) for c in sorted(set(_TINY_CHARS))] + [("<mask>", 0.0)]
    tok = XLMRobertaTokenizer(vocab=vocab)
    tok.model_max_length = 128
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    XLMRobertaModel(cfg).save_pretrained(d)
    sparse = torch.nn.Linear(hidden, 1)
    with torch.no_grad():
        # A random head can give every token of a text a negative logit (relu: no lexical weight at all); a
        # trained one weighs most content tokens. Lifted, "non-empty" tests the folder, not the seed.
        sparse.bias.fill_(1.0)
    torch.save(sparse.state_dict(), d / "sparse_linear.pt")
    torch.save(torch.nn.Linear(hidden, hidden).state_dict(), d / "colbert_linear.pt")
    return d
