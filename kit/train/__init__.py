"""Fine-tune an embedding model with FlagEmbedding under torchrun.

options.py   the ``train:`` section            data.py      training rows checked, group size fitted
command.py   the exact torchrun command         resume.py    last checkpoint, transformers-5 resume view
progress.py  live output + step summaries       stage.py     the stage: plan, run, finish, manifest
"""
from ..modelfolder import finish_output
from .command import build_command, cuda_available, format_command
from .data import DataReport, validate_training_data
from .options import TrainOptions, TrainRun
from .resume import latest_checkpoint
from .stage import train

__all__ = ["DataReport", "TrainOptions", "TrainRun", "build_command", "cuda_available", "finish_output",
           "format_command", "latest_checkpoint", "train", "validate_training_data"]
