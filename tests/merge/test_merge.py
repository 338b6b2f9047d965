"""kit merge: LM_Cocktail merge is exact (w·ft + (1−w)·base, m3 heads included) and keeps the right pooling."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kit.io import KitError
from kit.merge import MergeOptions, merge, parse_weights
from kit.registry import resolve
from helpers.training import add_m3_heads, check_loads_everywhere, fake_finetune, run_kit, write_train_data


def assert_exact_merge(base: Path, ft: Path, out: Path, w: float) -> None:
    b, f, m = (load_file(p / "model.safetensors") for p in (base, ft, out))
    assert set(m) <= set(f)
    for k, v in m.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, w * f[k] + (1 - w) * b[k], atol=1e-6, rtol=0)
    for head in ("colbert_linear.pt", "sparse_linear.pt"):
        if (base / head).exists():
            hb, hf, hm = (torch.load(p / head) for p in (base, ft, out))
            for k in hb:
                torch.testing.assert_close(hm[k], w * hf[k] + (1 - w) * hb[k], atol=1e-6, rtol=0)


def test_merge_m3_weights_and_heads(tmp_path, tiny_xlmr):
    base = tmp_path / "bge-m3-tiny"
    shutil.copytree(tiny_xlmr, base)
    add_m3_heads(base)
    ft = fake_finetune(base, tmp_path / "bge-m3-tiny-ft")
    out = tmp_path / "merged"
    res = run_kit(["merge", "--base", str(base), "--finetuned", str(ft), "-o", str(out), "--weights", "0.3,0.7"])
    assert res.exit_code == 0, res.output
    for w in (0.3, 0.7):
        folder = out / f"w{w:g}"
        assert_exact_merge(base, ft, folder, w)
        manifest = json.loads((folder / "kit_manifest.json").read_text())
        assert manifest["weight_finetuned"] == w and manifest["heads_merged"] == ["colbert_linear.pt",
                                                                                   "sparse_linear.pt"]
    check_loads_everywhere(out / "w0.3", "cls", "")


def test_merge_e5_keeps_mean_pooling_and_prompts(tmp_path, tiny_bert):
    base = tmp_path / "e5-tiny"
    shutil.copytree(tiny_bert, base)
    ft = fake_finetune(base, tmp_path / "e5-tiny-ft")
    out = tmp_path / "e5-merged"
    merge(str(base), str(ft), out, MergeOptions(weights=[0.5]))
    assert_exact_merge(base, ft, out, 0.5)
    # LM_Cocktail wrote CLS pooling; the kit must have put mean pooling and the e5 prompts back.
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] is True and pooling["pooling_mode_cls_token"] is False
    prompts = json.loads((out / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts["query"] == "query: " and prompts["passage"] == "passage: "
    check_loads_everywhere(out, "mean", "query: ")


def test_merge_auto_with_example_data(tmp_path, tiny_bert):
    base = tmp_path / "bge-tiny-zh"
    shutil.copytree(tiny_bert, base)
    ft = fake_finetune(base, tmp_path / "bge-tiny-zh-ft")
    data = write_train_data(tmp_path / "examples.jsonl", n=6, negs=3)
    out = tmp_path / "auto"
    res = run_kit(["merge", "--base", str(base), "--finetuned", str(ft), "-o", str(out), "--auto",
                   "--example-data", str(data)])
    assert res.exit_code == 0, res.output
    w = json.loads((out / "kit_manifest.json").read_text())["weight_finetuned"]
    assert 0.0 < w < 1.0
    assert_exact_merge(base, ft, out, w)
    assert resolve(str(out)).pooling == "cls"


def test_merge_rejects_bad_options(tmp_path):
    assert parse_weights(["0.3,0.5", 0.7]) == [0.3, 0.5, 0.7]
    with pytest.raises(KitError, match="between 0 and 1"):
        parse_weights("1.5")
    res = run_kit(["merge", "--base", "a", "--finetuned", "b", "-o", str(tmp_path / "o"), "--auto"])
    assert res.exit_code == 2 and "--example-data" in res.output


def test_merge_saves_in_the_fine_tuned_dtype_after_an_fp32_average(tmp_path, tiny_bert):
    """A bf16 fine-tuned model (kit train's output after bf16 training) merged with an fp32 base: LM_Cocktail is
    made to average in fp32, so every merged weight is the exact fp32 average rounded once to bf16."""
    from kit.modelfolder import cast_weights, stored_dtype

    base = tmp_path / "e5-tiny"
    shutil.copytree(tiny_bert, base)
    ft = fake_finetune(base, tmp_path / "e5-tiny-ft")
    cast_weights(ft, "bf16")
    out = tmp_path / "merged"
    res = run_kit(["merge", "--base", str(base), "--finetuned", str(ft), "-o", str(out), "--weights", "0.3"])
    assert res.exit_code == 0, res.output
    assert stored_dtype(out) == "bf16" and json.loads((out / "kit_manifest.json").read_text())["weights"]["dtype"] == "bf16"
    b, f, m = (load_file(p / "model.safetensors") for p in (base, ft, out))
    for k, v in m.items():
        if v.is_floating_point():
            assert torch.equal(v, (0.3 * f[k].float() + 0.7 * b[k].float()).to(torch.bfloat16)), k
    assert "| weights | bf16" in (out / "README.md").read_text() and "Merged with LM_Cocktail" in (out / "README.md").read_text()
    res = run_kit(["merge", "--base", str(base), "--finetuned", str(ft), "-o", str(tmp_path / "m32"), "--weights", "0.3",
                   "--save-dtype", "fp32"])
    assert res.exit_code == 0 and stored_dtype(tmp_path / "m32") == "fp32"
