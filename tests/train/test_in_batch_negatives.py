"""``train.in_batch_negatives: false`` (issue 27's factor): FlagEmbedding switches in-batch negatives off per data
file, by a name ending in ``no_in_batch_neg`` read by its same-dataset sampler. The kit's command and data copy
must meet that convention, checked here against FlagEmbedding's own dataset class, and a real run must train."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from helpers.training import run_kit, write_config, write_train_data
from kit.registry import resolve
from kit.train import TrainOptions, build_command
from kit.train.stage import prepare_run


def _plan(tmp_path: Path, model: Path, in_batch: bool) -> tuple[list[str], str]:
    data = write_train_data(tmp_path / "train.jsonl")
    out = tmp_path / ("on" if in_batch else "off") / "model"
    opts = TrainOptions(data=str(data), output_dir=str(out), nproc=1, in_batch_negatives=in_batch,
                        args={"train_group_size": 3, "per_device_train_batch_size": 4, "max_steps": 1})
    opts, report, _, _, cuda = prepare_run(opts, "bge", False, lambda m: None, "kit train")
    return build_command(resolve(str(model)), opts, data_path=report.path, cuda=cuda), report.path


def _flag_of_first_batch(cmd: list[str], model: Path) -> bool:
    """What FlagEmbedding's own data pipeline makes of the command: its runner's dataset choice and the flag its
    collator hands to the loss."""
    from transformers import AutoTokenizer, HfArgumentParser
    from FlagEmbedding.abc.finetune.embedder import AbsEmbedderDataArguments
    from FlagEmbedding.abc.finetune.embedder.AbsDataset import (AbsEmbedderSameDatasetCollator,
                                                                AbsEmbedderSameDatasetTrainDataset)
    args = cmd[cmd.index("--train_data"):]
    data_args, _ = HfArgumentParser(AbsEmbedderDataArguments).parse_args_into_dataclasses(
        args=args, return_remaining_strings=True)
    if not data_args.same_dataset_within_batch:
        return False   # the plain dataset never sets the flag (AbsEmbedderCollator returns False)
    tok = AutoTokenizer.from_pretrained(str(model))
    ds = AbsEmbedderSameDatasetTrainDataset(args=data_args, default_batch_size=4, seed=1, tokenizer=tok)
    batch = AbsEmbedderSameDatasetCollator(tokenizer=tok, query_max_len=16, passage_max_len=32)([ds[0]])
    return bool(batch["no_in_batch_neg_flag"])


def test_in_batch_negatives_off_reaches_flagembeddings_loss(tmp_path, tiny_bert):
    model = tmp_path / "bge-tiny-zh"
    shutil.copytree(tiny_bert, model)
    off, off_data = _plan(tmp_path, model, in_batch=False)
    assert off_data.endswith("no_in_batch_neg.jsonl") and Path(off_data).is_file()
    assert off[off.index("--same_dataset_within_batch") + 1] == "True"
    assert _flag_of_first_batch(off, model) is True
    # the default: FlagEmbedding's own (in-batch negatives on), the user's file as it is
    on, on_data = _plan(tmp_path, model, in_batch=True)
    assert on_data == str(tmp_path / "train.jsonl") and "--same_dataset_within_batch" not in on
    assert _flag_of_first_batch(on, model) is False


@pytest.mark.slow
def test_kit_train_without_in_batch_negatives_trains(tmp_path, tiny_bert):
    model = tmp_path / "bge-tiny-zh"
    shutil.copytree(tiny_bert, model)
    data = write_train_data(tmp_path / "train.jsonl")
    out = tmp_path / "ft"
    cfg_path = write_config(tmp_path / "c.yaml", model, data, out)
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["train"]["in_batch_negatives"] = False
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    res = run_kit(["train", "--config", str(cfg_path)])
    assert res.exit_code == 0, res.output
    assert "[kit train] step 2/2 loss" in res.output
    manifest = json.loads((out / "kit_manifest.json").read_text(encoding="utf-8"))
    assert manifest["trainer_args"]["same_dataset_within_batch"] == "True"
    assert manifest["data_used"].endswith("no_in_batch_neg.jsonl")
    assert (out / "model.safetensors").is_file()
