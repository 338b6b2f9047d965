"""Fine-tune a cross-encoder (reranker) with FlagEmbedding under torchrun.

options.py  the ``rerank_train:`` section    command.py  the exact torchrun command    stage.py  plan, run, finish
"""
from .command import RERANK_MODULE, build_rerank_command
from .options import RerankTrainOptions, RerankTrainRun
from .stage import rerank_train

__all__ = ["RERANK_MODULE", "RerankTrainOptions", "RerankTrainRun", "build_rerank_command", "rerank_train"]
