"""`kit update`: options.py (the ``update:`` section), config.py (a config with ``update:`` and ``drift:`` sections,
or a bare workdir), documents.py (prep of new and changed files only, the document diff), data.py (the new
documents' eval set, the replay sample, leakage), stages.py (the steps, as pipeline stages), finish.py (the verdict
applied: a new version, the switch of models/current), stage.py (the one entry point :func:`run`)."""
from .options import UpdateFiles, UpdateOptions
from .stage import UpdateResult, run

__all__ = ["UpdateFiles", "UpdateOptions", "UpdateResult", "run"]
