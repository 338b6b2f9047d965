"""scripts/*.sh, the plain torchrun recipes: they take GPUs, nodes and the master address from the environment,
every flag they pass is one FlagEmbedding 1.4.2 / transformers 5 accepts, and they train what `kit train`
builds for the matching config.

GPU training (fp16, DeepSpeed) cannot run on this CPU machine, so `torchrun` is replaced by a two-line
executable that records its arguments; the recorded FlagEmbedding arguments are then parsed by FlagEmbedding's
own argument parser (the dataclasses its `__main__` parses) and compared with the kit's command builder.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO

RECIPES = {
    "train_bge_large_zh.sh": ("configs/bge-large-zh-v1.5.yaml", "FlagEmbedding.finetune.embedder.encoder_only.base"),
    "train_bge_m3.sh": ("configs/bge-m3.yaml", "FlagEmbedding.finetune.embedder.encoder_only.m3"),
}


def _recorded_torchrun(tmp_path, script: str, env: dict) -> list[str]:
    shim = tmp_path / "bin"
    shim.mkdir()
    record = tmp_path / "argv.json"
    (shim / "torchrun").write_text(
        f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    (shim / "torchrun").chmod((shim / "torchrun").stat().st_mode | stat.S_IEXEC)
    run = subprocess.run(["bash", str(REPO / "scripts" / script)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", **env})
    assert run.returncode == 0, run.stderr
    return json.loads(record.read_text())


def _flag_dict(args: list[str]) -> dict[str, str]:
    assert all(a.startswith("--") for a in args[::2]), args
    return dict(zip((a[2:] for a in args[::2]), args[1::2]))


@pytest.mark.parametrize("script", sorted(RECIPES))
def test_recipe_reads_the_cluster_from_the_environment_and_passes_only_accepted_flags(script, tmp_path,
                                                                                     monkeypatch):
    from transformers import HfArgumentParser

    config, module = RECIPES[script]
    argv = _recorded_torchrun(tmp_path, script, {
        "NPROC_PER_NODE": "8", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.7", "MASTER_PORT": "29611",
        "DATA": "work/data/train_hn.jsonl", "OUTPUT": "work/ft"})
    i = argv.index("-m")
    assert argv[:i] == ["--nproc_per_node", "8", "--nnodes", "2", "--node_rank", "1", "--master_addr", "10.0.0.7",
                        "--master_port", "29611"]
    assert argv[i + 1] == module
    flags = argv[i + 2:]

    mod = __import__(module, fromlist=["x"])
    kinds = ("ModelArguments", "DataArguments", "TrainingArguments")
    classes = [next(getattr(mod, n) for n in dir(mod) if n.startswith("EncoderOnly") and n.endswith(k))
               for k in kinds]
    parser = HfArgumentParser(classes)
    parsed, unknown = parser.parse_known_args(flags)
    assert unknown == []  # every flag exists in FlagEmbedding 1.4.2 + transformers 5
    got = _flag_dict(flags)
    assert got["train_data"] == "work/data/train_hn.jsonl" and got["output_dir"] == "work/ft"
    assert json.loads((REPO / got["deepspeed"]).read_text())  # the DeepSpeed JSON it names exists

    # The same training as `kit train` builds for the config on 2 x 8 GPUs (paths, and warmup, which the kit
    # computes from warmup_ratio and the data size, aside).
    from kit.config import load_config
    from kit.registry import resolve
    from kit.options import from_section
    from kit.train import TrainOptions, build_command

    # `make test` exports KIT_MODEL (the starter model); the recipes are for the configs' default hub models.
    monkeypatch.delenv("KIT_MODEL", raising=False)
    cfg = load_config(REPO / config)
    opts = from_section(TrainOptions, {**cfg["train"], "data": "work/data/train_hn.jsonl", "output_dir": "work/ft",
                                       "nproc": 8, "nnodes": 2, "node_rank": 1, "master_addr": "10.0.0.7"}, "train")
    kit_cmd = build_command(resolve(cfg["model"]), opts, cuda=True, data_rows=100_000)
    want, unknown = parser.parse_known_args(kit_cmd[kit_cmd.index("-m") + 2:])
    assert unknown == []
    parsed, want = vars(parsed), vars(want)
    for d in (parsed, want):
        d.pop("warmup_steps")
    assert parsed == want
