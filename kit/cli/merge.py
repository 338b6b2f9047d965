"""`kit merge`: LM_Cocktail merge of a fine-tuned model with its base."""
from __future__ import annotations

import click

from ..merge import MergeFiles, MergeOptions
from ._common import stage_command


@stage_command("merge", MergeFiles, MergeOptions, section="merge")
def merge_cmd(files: MergeFiles, options: MergeOptions):
    """Merge a fine-tuned model with its base (LM_Cocktail) so it keeps general ability.

    Fixed weights (one output per weight: OUT/w<weight> when several), or --auto to let LM_Cocktail
    pick them from a few example rows of your domain (mix_models_with_data). Weights are averaged in fp32
    and saved in the fine-tuned model's dtype (--save-dtype); the folder gets a model card (README.md).

    \b
    Examples:
      kit merge --base BAAI/bge-large-zh-v1.5 --finetuned work/ft -o work/merged --weights 0.5
      kit merge --base BAAI/bge-m3 --finetuned work/ft-m3 -o work/merged --weights 0.3,0.5,0.7
      kit merge --base BAAI/bge-large-zh-v1.5 --finetuned work/ft -o work/merged-auto --auto \\
          --example-data work/data/train_hn.jsonl
    """
    from ..io import read_json
    from ..merge import merge
    from ..modelfolder import MANIFEST_FILE

    for out in merge(files.base, files.finetuned, files.output, options):   # logs on stderr, results here
        m = read_json(out / MANIFEST_FILE)
        click.echo(f"merged model written to {out}: {m['weight_finetuned']:.3f} x fine-tuned + "
                   f"{m['weight_base']:.3f} x base ({m['weights']['dtype']} weights)")
