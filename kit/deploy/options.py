"""The ``deploy:`` section."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option

FIT_ALL = ("auto", "on", "off")


@dataclass
class DeployOptions:
    """The ``deploy:`` section; field names equal its keys."""

    fit_all: str = option("auto", choices=FIT_ALL,
                          help="Train the model to deploy on every chunk, with the recipe and merge weight the held-out "
                               "split chose (the eval questions themselves never train); auto = on when the eval "
                               "questions are real (split.eval_queries), where the held-out split kept their gold "
                               "passages out of training.")
    candidate: str = option("recommended", help="The held-out candidate whose recipe is refitted: `recommended` (the "
                            "report's pick) or a row name of report/results.json such as merged-0.5 or fine-tuned.")

    def wanted(self, real_eval: bool) -> bool:
        return self.fit_all == "on" or (self.fit_all == "auto" and real_eval)


# What the deploy folder holds (WORKDIR/deploy/): one name per file, used by the stage and its registration.
DATA, REPORT, DECISION = "data", "report", "deploy.json"
