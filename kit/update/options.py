"""The ``update:`` section (:class:`UpdateOptions`) and what `kit update` reads (:class:`UpdateFiles`)."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option

METRICS = ("mrr@10", "recall@10")
PROMOTE = ("auto", "never")


def _share(v) -> str | None:
    return None if 0 <= v < 1 else "must lie in [0, 1)"


def _ratio(v) -> str | None:
    return None if 0 < v < 1 else "must lie in (0, 1)"


def _weight(v) -> str | None:
    return None if v is None or 0 < v <= 1 else "must lie in (0, 1] (1: no merge) or be null"


def _level(v) -> str | None:
    return None if 0.5 <= v < 1 else "must lie in [0.5, 1)"


def _not_negative(v) -> str | None:
    return None if v >= 0 else "must be 0 or more"


# The replay share: the share of an update's training rows drawn from the rows the deployed model was trained on.
# Measured on stard_dev (benchmarks/update_sequence.py, RESULTS "A growing knowledge base"): with 0.3 the update is
# within the full re-run's interval on the old and the new laws' real questions; with 0 it forgets (significantly
# below the v1 model on the old laws' questions, 0.980x, and below the full re-run on both). Higher shares unmeasured.
REPLAY_SHARE = 0.3

# The share of train.args' steps an update trains. Measured on stard_dev (same benchmark): an update of 60 steps (half
# of v1's 120) was within the full re-run's interval on both question sets (0.994x and 0.988x it), as the 120-step
# update was (0.983x, 0.987x), at 0.33x the re-run's wall time instead of 0.55x: an update starts from a model that
# already learnt the recipe and trains on fewer new rows.
STEP_SHARE = 0.5


def _step_share(v) -> str | None:
    return None if 0 < v <= 1 else "must lie in (0, 1]"


@dataclass
class UpdateOptions:
    """The ``update:`` section; field names equal its keys."""

    replay_share: float = option(REPLAY_SHARE, check=_share,
                                 help="Share of the update's training rows drawn (seeded) from the rows the deployed "
                                      "model learnt from (its documents still there, unchanged), beside the new "
                                      "documents' rows, so it does not forget them; 0 = new rows only.")
    eval_ratio: float = option(0.3, check=_ratio,
                               help="Without real questions: share of the new documents' generated pairs whose "
                                    "documents are held out of training as the new-documents eval set.")
    questions: str | None = option(None, path=True, flag="questions",
                                   help="Real questions about the new documents as their eval set (formats of "
                                        "split.eval_queries: JSONL {query, chunk_ids|source_ids|answer} or a BEIR "
                                        "folder); their gold passages are held out of training.")
    start_from: str | None = option(None, flag="from",
                                    help="The model training starts from: a version (v0002), a model folder or a hub "
                                         "id; default: the deployed version.")
    merge_weight: float | None = option(None, check=_weight,
                                        help="Weight of the update's fine-tuned model when merged with the model it "
                                             "started from (LM_Cocktail); null = the deployed version's own recipe, "
                                             "else merge.weights[0] when the config merges, else no merge.")
    step_share: float = option(STEP_SHARE, check=_step_share,
                               help="Share of train.args' max_steps (or num_train_epochs) an update trains; 1 = as "
                                    "many as the full run. train_args.max_steps, when given, wins.")
    train_args: dict = option(default_factory=dict,
                              help="train.args overridden for an update (e.g. {max_steps: 60}).")
    metric: str = option("mrr@10", choices=METRICS, help="Per-question metric the gate compares.")
    level: float = option(0.95, check=_level, help="Level of the gate's paired-bootstrap intervals.")
    resamples: int = option(2000, check=lambda v: None if v >= 100 else "must be >= 100",
                            help="Paired-bootstrap resamples of the gate.")
    min_gain: float = option(0.0, check=_not_negative,
                             help="On the new documents' questions the interval of (candidate - deployed) must lie "
                                  "above this.")
    max_loss: float = option(0.0, check=_not_negative,
                             help="On the frozen questions the interval's upper end may not fall below -max_loss "
                                  "(0: any significant loss keeps the deployed model).")
    promote: str = option("auto", choices=PROMOTE,
                          help="auto: a candidate the gate passes becomes the deployed version; never: it is only "
                               "kept as a version (`kit promote CONFIG VERSION` deploys it).")
    seed: int = option(0, help="Seed of the replay sample, the document split and the bootstrap.")
    progress: bool = option(True, yaml=False, help="Show progress bars.")


@dataclass
class UpdateFiles:
    """What `kit update` reads: the pipeline config (its workdir holds the versions and the updates)."""

    config: str = option(argument=True, yaml=False, help="Pipeline YAML whose workdir holds the deployed model and "
                         "whose prep.inputs name the documents as they are now.")
