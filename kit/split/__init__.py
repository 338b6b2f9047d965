"""split: options.py (the ``split:`` section), questions.py (real questions -> chunks), sides.py (which questions
evaluate, which pairs train, which chunks training may see), leakage.py (after mining), stage.py."""
from ..formats import norm_text
from .leakage import training_leakage
from .options import HOLDOUTS, SplitFiles, SplitOptions
from .sides import choose_eval_docs
from .stage import EVAL_INFO, SplitResult, split

__all__ = ["EVAL_INFO", "HOLDOUTS", "SplitFiles", "SplitOptions", "SplitResult", "choose_eval_docs", "norm_text",
           "split", "training_leakage"]
