"""`kit merge`: LM_Cocktail merge of a fine-tuned model with its base."""
from __future__ import annotations

import click

from ._common import handle_errors, main


@main.command("merge")
@click.option("--base", required=True, help="Base model (hub id or folder).")
@click.option("--finetuned", required=True, help="Fine-tuned model folder (from kit train).")
@click.option("--output", "-o", required=True, help="Output folder (OUT/w<weight> for each weight when several).")
@click.option("--weights", "-w", multiple=True, default=("0.5",), show_default=True,
              help="Weight of the fine-tuned model (base gets 1 - w); repeat or comma-separate for several.")
@click.option("--auto", is_flag=True, help="Let LM_Cocktail choose the weights from --example-data.")
@click.option("--example-data", type=click.Path(dir_okay=False), default=None,
              help="JSONL rows (query/pos/neg) from the target domain, for --auto.")
@handle_errors
def merge_cmd(base, finetuned, output, weights, auto, example_data):
    """Merge a fine-tuned embedding model with its base so it keeps general ability.

    \b
    Example:
      kit merge --base BAAI/bge-large-zh-v1.5 --finetuned work/model-ft -o work/merged --weights 0.3,0.5,0.7
      kit merge --base BAAI/bge-m3 --finetuned work/m3-ft -o work/m3-merged --auto --example-data work/data/train_hn.jsonl
    """
    from ..merge import MergeOptions, merge, parse_weights

    merge(base, finetuned, output, MergeOptions(weights=parse_weights(list(weights)), auto=auto,
                                                example_data=example_data))
