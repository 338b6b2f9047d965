"""The ``train:`` section: how torchrun and FlagEmbedding are asked to fine-tune."""
from __future__ import annotations

from dataclasses import dataclass

from ..modelfolder import SAVE_DTYPES
from ..options import option


def _nproc(v) -> str | None:
    return None if v == "auto" or (isinstance(v, int) and v >= 1) or (isinstance(v, str) and v.isdigit()
                                                                     and int(v) >= 1) else "must be 'auto' or >= 1"


@dataclass
class TrainOptions:
    """The ``train:`` section of a pipeline YAML; field names equal its keys."""

    data: str | None = option(None, path=True, help="Training JSONL (query, pos, neg): mined rows, or the split's "
                              "rows. `kit run` sets it to the workdir's file.")
    output_dir: str | None = option(None, path=True, flag="output", short="o",
                                    help="Output model folder (checkpoints while training). `kit run` sets it.")
    nproc: str | int = option("auto", check=_nproc,
                              help="Processes per node; auto = number of visible GPUs (1 on CPU).")
    nnodes: int = option(1, check=lambda v: None if v >= 1 else "must be >= 1", help="Nodes (multi-node torchrun).")
    node_rank: int = option(0, help="This node's rank (0 on the node that saves the model).")
    master_addr: str | None = option(None, help="Address of node 0 (multi-node).")
    master_port: int | None = option(None, help="Port on node 0 (default 29500 when multi-node).")
    deepspeed: str | None = option(None, path=True, help="DeepSpeed JSON (configs/ds_stage1.json); used only where "
                                   "CUDA exists.")
    fp16: bool = option(False, help="fp16 mixed precision; used only where CUDA exists.")
    bf16: bool = option(False, help="bf16 mixed precision (on CPU too: about 3x faster where the CPU has AVX512-BF16).")
    save_dtype: str = option("auto", choices=SAVE_DTYPES,
                             help="dtype of the saved model's weights; auto = the training precision (fp16/bf16 when "
                                  "mixed precision was on), else the dtype the base model is stored in. Checkpoints "
                                  "stay as the trainer wrote them.")
    passage_titles: bool = option(False, help="Train on passages as `kit bench` embeds them: the chunk's "
                                  "title before its text (FlagEmbedding's evaluation does the same). Needs the chunks "
                                  "(`corpus`); texts that are no chunk stay as they are.")
    in_batch_negatives: bool = option(True, help="Score each question against the other rows' passages in its "
                                      "batch too (FlagEmbedding's default). false trains on its own group only, "
                                      "through FlagEmbedding's own switch: the data file's name ends in "
                                      "no_in_batch_neg and --same_dataset_within_batch is on.")
    corpus: str | None = option(None, path=True, help="Chunks whose titles passage_titles adds (corpus.jsonl or "
                                "data/train_corpus.jsonl). `kit run` sets it.")
    args: dict = option(default_factory=dict, help="FlagEmbedding / HF TrainingArguments passed through "
                        "(learning_rate, max_steps, num_train_epochs, per_device_train_batch_size, train_group_size, "
                        "query_max_len, passage_max_len, temperature, save_steps, kd_loss_type, ...).")


@dataclass
class TrainRun:
    """What `kit train` takes besides the section: where the settings and the base model come from."""

    model: str | None = option(None, yaml=False, help="Base model (hub id or local folder); overrides `model:`.")
    dry_run: bool = option(False, yaml=False, help="Validate the data and print the exact command; write nothing.")
