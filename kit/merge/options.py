"""The ``merge:`` section, and what `kit merge` reads and writes."""
from __future__ import annotations

from dataclasses import dataclass

from ..modelfolder import SAVE_DTYPES
from ..options import option


def _unit(v) -> str | None:
    bad = [w for w in (v if isinstance(v, list) else [v]) if not 0.0 <= w <= 1.0]
    return "every weight must lie between 0 and 1 (weight of the fine-tuned model)" if bad else None


@dataclass
class MergeOptions:
    """The ``merge:`` section of a pipeline YAML; field names equal its keys."""

    weights: list[float] = option(default_factory=lambda: [0.5], check=_unit, short="w",
                                  help="Weight(s) of the fine-tuned model; the base gets 1 - w. One merged model "
                                       "per weight.")
    auto: bool = option(False, help="Let LM_Cocktail pick the weights from example_data (mix_models_with_data).")
    example_data: str | None = option(None, path=True, help="JSONL with query/pos/neg rows from the domain, for auto.")
    example_count: int = option(32, help="Rows used from example_data.")
    temperature: float = option(5.0, help="LM_Cocktail's softmax temperature over the example losses (auto).")
    batch_size: int = option(2, help="Batch size of LM_Cocktail's example losses (auto).")
    max_input_length: int = option(512, help="Token limit of the example texts (auto).")
    neg_number: int = option(7, help="Negatives per example row (auto).")
    seed: int = option(42, help="Seed of the example sampling (auto).")
    save_dtype: str = option("auto", choices=SAVE_DTYPES,
                             help="dtype of the merged weights (averaged in fp32 either way); auto = the dtype the "
                                  "fine-tuned model is stored in (kit train saves it in its training precision).")


@dataclass
class MergeFiles:
    """What `kit merge` reads and writes (`kit run` takes them from the workdir)."""

    base: str = option(yaml=False, required=True, help="Base model (hub id or folder).")
    finetuned: str = option(yaml=False, required=True, help="Fine-tuned model folder (from kit train).")
    output: str = option(yaml=False, required=True, short="o",
                         help="Output folder (OUT/w<weight> for each weight when several).")
