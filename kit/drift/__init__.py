"""`kit drift`: is re-training worth it? options.py (the ``drift:`` section), documents.py (new / changed / gone by
content hash), signals.py (coverage, distribution test), questions.py (the question log), verdict.py, report.py,
workdir.py (the deployed model), stage.py (the one entry point :func:`run`)."""
from .options import DriftFiles, DriftOptions
from .stage import DriftResult, run

__all__ = ["DriftFiles", "DriftOptions", "DriftResult", "run"]
