"""deploy: options.py (the ``deploy:`` section), stage.py (the model to deploy, trained on every chunk with the
recipe and merge weight the held-out split chose, and its report)."""
from .options import DeployOptions
from .stage import DeployResult, run

__all__ = ["DeployOptions", "DeployResult", "run"]
