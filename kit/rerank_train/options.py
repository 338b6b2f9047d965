"""The ``rerank_train:`` section: the ``train:`` section's fields (torchrun, nodes, precision, DeepSpeed) plus the
cross-encoder's base model, with a CPU recipe as the embedded default."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option
from ..train.options import TrainOptions


def cpu_recipe() -> dict:
    """The embedded default: a small cross-encoder (e.g. from ../shared/models/zh-e5-small) in minutes on a CPU.
    Short inputs and few steps; FlagEmbedding's published recipe for bge-reranker-* is in configs/."""
    return {"learning_rate": 5.0e-5, "max_steps": 120, "per_device_train_batch_size": 8, "train_group_size": 4,
            "query_max_len": 32, "passage_max_len": 128, "warmup_steps": 10, "weight_decay": 0.01,
            "logging_steps": 10, "save_steps": 40, "save_total_limit": 1, "dataloader_num_workers": 0}


@dataclass
class RerankTrainOptions(TrainOptions):
    """The ``rerank_train:`` section; field names equal its keys."""

    model: str | None = option(None, help="Base of the cross-encoder: a reranker (BAAI/bge-reranker-base, "
                               "-large, -v2-m3) or any encoder (a new one-logit head is added); default: the "
                               "top-level `model`.")
    data: str | None = option(None, path=True, help="Training JSONL (query, pos, neg; pos_scores/neg_scores for "
                              "distillation). `kit run` sets it to the workdir's training rows.")
    output_dir: str | None = option(None, path=True, flag="output", short="o",
                                    help="Output cross-encoder folder (checkpoints while training). `kit run` "
                                         "sets it to models/reranker.")
    # a cross-encoder scores each (question, passage) pair alone: there are no in-batch negatives to switch off
    in_batch_negatives: bool = option(True, yaml=False, cli=False, help="Not a reranker setting.")
    args: dict = option(default_factory=cpu_recipe, help="FlagEmbedding reranker / HF TrainingArguments passed "
                        "through (learning_rate, max_steps, num_train_epochs, per_device_train_batch_size, "
                        "train_group_size, query_max_len, passage_max_len, knowledge_distillation, save_steps, ...); "
                        "names the reranker trainer does not know are refused before torchrun starts.")


@dataclass
class RerankTrainRun:
    """What `kit rerank-train` takes besides the section."""

    dry_run: bool = option(False, yaml=False, help="Validate the data and print the exact command; write nothing.")
