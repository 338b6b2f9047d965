"""kit rerank-train: the torchrun command (FlagEmbedding's reranker trainer parses every flag), the configs, refused
arguments and data; a real CPU run on a tiny model that distils from teacher scores, loads in FlagReranker and
sentence-transformers' CrossEncoder (same scores as the kit's local reranker) and resumes from its checkpoint."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import REPO
from kit.io import KitError
from kit.rerank_train import RERANK_MODULE, RerankTrainOptions, build_rerank_command, rerank_train

TEXTS = ["劳动合同应当以书面形式订立", "用人单位应当按时足额支付工资", "试用期不得超过六个月", "经济补偿按工作年限计算",
         "社会保险由单位和个人共同缴纳", "解除合同应当提前三十日通知", "违反本法规定应当承担赔偿责任", "工资不得低于最低工资标准"]


def main():
    from kit.cli import main as m
    return m


def write_rows(path: Path, n: int = 16, negs: int = 5, scores: bool = True) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            pos = TEXTS[i % len(TEXTS)]
            neg = [t for t in TEXTS if t != pos][:negs]
            row = {"query": f"问题{i}：{pos[:6]}？", "pos": [pos], "neg": neg}
            if scores:
                row.update(pos_scores=[3.0], neg_scores=[-0.5 * j for j in range(len(neg))])
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def parsed_by_flagembedding(cmd: list[str]):
    from transformers import HfArgumentParser
    from FlagEmbedding.abc.finetune.reranker import (AbsRerankerDataArguments, AbsRerankerModelArguments,
                                                     AbsRerankerTrainingArguments)

    flags = cmd[cmd.index(RERANK_MODULE) + 1:]
    parser = HfArgumentParser((AbsRerankerModelArguments, AbsRerankerDataArguments, AbsRerankerTrainingArguments))
    return parser.parse_known_args(flags)


@pytest.mark.parametrize("name", ["base", "large", "v2-m3"])
def test_configs_build_commands_flagembedding_parses(name, tmp_path, tiny_bert, monkeypatch):
    from kit.config import load_config
    from kit.options import from_section

    monkeypatch.setenv("KIT_RERANK_MODEL", str(tiny_bert))
    path = REPO / "configs" / f"bge-reranker-{name}.yaml"
    cfg = load_config(path)
    o = from_section(RerankTrainOptions, cfg["rerank_train"], "rerank_train",
                     resolve_path=lambda p: (path.parent / p).resolve())
    assert cfg["rerank_train"]["model"] == str(tiny_bert)
    monkeypatch.delenv("KIT_RERANK_MODEL")
    assert load_config(path)["rerank_train"]["model"] == f"BAAI/bge-reranker-{name}"
    data = write_rows(tmp_path / "t.jsonl", negs=7)
    notes: list[str] = []
    for cuda in (True, False):
        cmd = build_rerank_command(o.model, o, data_path=str(data), cuda=cuda, data_rows=160, notes=notes)
        assert cmd[cmd.index("-m") + 1] == RERANK_MODULE
        parsed, unknown = parsed_by_flagembedding(cmd)
        assert unknown == []                                     # every flag exists in FlagEmbedding 1.4.2
        assert parsed.train_group_size == 8 and parsed.model_name_or_path == str(tiny_bert)
        # warmup_ratio 0.1 of 2 epochs x 20 optimizer steps (160 rows = batch x accumulation 8 x 20 in every config)
        assert parsed.warmup_steps == 4
        assert ("--deepspeed" in cmd) == cuda and ("--fp16" in cmd) == cuda and ("--use_cpu" in cmd) != cuda
        assert Path(cmd[cmd.index("--deepspeed") + 1]).exists() if cuda else True
        for embedder_only in ("--sentence_pooling_method", "--temperature", "--query_instruction_for_retrieval"):
            assert embedder_only not in cmd


def test_dry_run_refuses_unknown_arguments_and_distillation_without_scores(tmp_path, tiny_bert):
    data = write_rows(tmp_path / "t.jsonl", scores=False)
    base = ["rerank-train", "--model", str(tiny_bert), "--data", str(data), "-o", str(tmp_path / "out"), "--dry-run"]
    r = CliRunner().invoke(main(), base)
    assert r.exit_code == 0, r.output
    cmd = shlex.split(r.output.strip().splitlines()[-1])
    assert RERANK_MODULE in cmd and cmd[cmd.index("--max_steps") + 1] == "120"     # the embedded CPU recipe
    assert not (tmp_path / "out").exists()                                          # a dry run writes nothing
    r = CliRunner().invoke(main(), base + ["--args", "temprature=0.02"])
    assert r.exit_code == 2 and "rerank_train.args.temprature: not an argument of FlagEmbedding's reranker" in r.output
    r = CliRunner().invoke(main(), base + ["--args", "knowledge_distillation=True"])
    assert r.exit_code == 2 and "pos_scores/neg_scores" in r.output and "kit mine --reranker" in r.output
    with pytest.raises(KitError, match="no base model"):
        rerank_train(RerankTrainOptions(data=str(data), output_dir=str(tmp_path / "o")), dry_run=True)


def test_dry_run_prints_the_command_for_a_hub_model_not_on_this_machine(tmp_path, monkeypatch):
    """A dry run is a command for a GPU cluster: a hub id missing from this machine's cache (offline) is a warning on
    stderr; a real run still fails with the one-line error."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty_hf_cache"))
    data = write_rows(tmp_path / "t.jsonl")
    base = ["rerank-train", "--model", "BAAI/bge-reranker-base", "--data", str(data), "-o", str(tmp_path / "out")]
    r = CliRunner().invoke(main(), base + ["--dry-run"])
    assert r.exit_code == 0, r.output
    cmd = shlex.split(r.stdout.strip().splitlines()[-1])
    assert RERANK_MODULE in cmd and cmd[cmd.index("--model_name_or_path") + 1] == "BAAI/bge-reranker-base"
    warning = [ln for ln in r.stderr.splitlines() if "not on this machine" in ln]
    assert len(warning) == 1 and "warning" in warning[0] and "BAAI/bge-reranker-base" in warning[0]
    assert not (tmp_path / "out").exists()
    r = CliRunner().invoke(main(), base)
    assert r.exit_code == 2 and not (tmp_path / "out").exists()
    assert "reranker base model BAAI/bge-reranker-base: not a local folder, and not in the Hugging Face cache " \
           "while offline" in r.stderr


def test_pipeline_registers_the_stage_and_benches_its_reranker(tmp_path):
    from kit.config import load_config
    from kit.pipeline import Pipeline
    from kit.bench.step import bench_rerankers
    from kit.stages import REGISTRY

    cfg = {"workdir": str(tmp_path / "run"), "model": "m", "rerank_train": {"args": {"max_steps": 5}},
           "bench": {"rerankers": {"ali": "dashscope:gte-rerank-v2"}}}
    p_yaml = tmp_path / "kit.yaml"
    p_yaml.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    p = Pipeline(load_config(p_yaml), p_yaml, REGISTRY)
    names = [s.name for s in REGISTRY]
    assert names.index("mine") < names.index("rerank_train") < names.index("bench")
    assert p.options["rerank_train"].args == {"max_steps": 5}
    assert bench_rerankers(p, p.options["bench"]) == {"reranker": f"local:{tmp_path / 'run' / 'models' / 'reranker'}",
                                                      "ali": "dashscope:gte-rerank-v2"}
    cfg["bench"]["rerankers"] = {"x": "bge-reranker-base"}
    p_yaml.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    with pytest.raises(KitError, match="unknown reranker spec"):
        Pipeline(load_config(p_yaml), p_yaml, REGISTRY)


@pytest.mark.slow
def test_rerank_train_distils_loads_everywhere_and_resumes(tmp_path, tiny_bert):
    from FlagEmbedding import FlagReranker
    from sentence_transformers import CrossEncoder

    from kit.providers.rerankers import make_reranker

    data = write_rows(tmp_path / "t.jsonl")
    out = tmp_path / "rr"
    args = ["--args", "max_steps=2", "--args", "per_device_train_batch_size=2", "--args", "train_group_size=4",
            "--args", "query_max_len=16", "--args", "passage_max_len=32", "--args", "save_steps=2",
            "--args", "logging_steps=1", "--args", "learning_rate=1e-4", "--args", "knowledge_distillation=True"]
    base = ["rerank-train", "--model", str(tiny_bert), "--data", str(data), "-o", str(out)]
    r = CliRunner().invoke(main(), base + args)
    assert r.exit_code == 0, r.output[-3000:]
    assert (out / "checkpoint-2").is_dir() and "cross-encoder written to" in r.output
    manifest = json.loads((out / "kit_manifest.json").read_text())
    assert manifest["stage"] == "rerank_train" and "--knowledge_distillation" in manifest["command"]
    assert json.loads((out / "kit_reranker.json").read_text())["max_length"] == 48

    pairs = [("试用期多久？", t) for t in TEXTS]
    ours = make_reranker(f"local:{out}", {"precision": "fp32"}, cache=False).score("试用期多久？", TEXTS)
    flag = np.asarray(FlagReranker(str(out), use_fp16=False, devices="cpu", max_length=48).compute_score(pairs))
    ce = CrossEncoder(str(out), device="cpu", max_length=48).predict(pairs)
    np.testing.assert_allclose(ours, flag, atol=1e-4)
    np.testing.assert_allclose(1 / (1 + np.exp(-ours)), ce, atol=1e-4)

    # More steps: resumes from checkpoint-2 (the step and the weights), trains one step.
    r = CliRunner().invoke(main(), base + [a.replace("max_steps=2", "max_steps=3").replace("save_steps=2", "save_steps=1")
                                           for a in args])
    assert r.exit_code == 0, r.output[-3000:]
    assert f"resuming from {out / 'checkpoint-2'}" in r.output and "There were missing keys" not in r.output
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and not (out / ".kit_resume").exists()
    assert json.loads((out / "kit_manifest.json").read_text())["resumed_from"] == str(out / "checkpoint-2")
