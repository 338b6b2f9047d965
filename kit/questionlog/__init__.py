"""questionlog: the `logs:` stage of `kit run` -- what users actually asked (a search log), labelled without
labellers, joining training as real questions, and a report of where the model is weak.

options.py (the section), reader.py + privacy.py (read and mask), merge.py (duplicates, eval questions),
candidates.py (model + BM25), judges.py (offline judge, clicks), llm_judge.py (LLM judge), labels.py
(log_labels.jsonl, corrections), weak_spots.py + report.py (the report), stage.py (:func:`run`).
"""
from .labels import log_questions, training_questions
from .options import JUDGES, LogFiles, LogOptions
from .stage import LogResult, run

__all__ = ["JUDGES", "LogFiles", "LogOptions", "LogResult", "run", "log_questions", "training_questions"]
