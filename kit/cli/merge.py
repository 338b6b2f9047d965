"""`kit merge`: LM_Cocktail merge of a fine-tuned model with its base."""
from __future__ import annotations

from ..merge import MergeFiles, MergeOptions
from ._common import stage_command


@stage_command("merge", MergeFiles, MergeOptions, section="merge")
def merge_cmd(files: MergeFiles, options: MergeOptions):
    """Merge a fine-tuned model with its base (LM_Cocktail) so it keeps general ability.

    Fixed weights (one output per weight: OUT/w<weight> when several), or --auto to let LM_Cocktail
    pick them from a few example rows of your domain (mix_models_with_data).

    \b
    Examples:
      kit merge --base BAAI/bge-large-zh-v1.5 --finetuned work/ft -o work/merged --weights 0.5
      kit merge --base BAAI/bge-m3 --finetuned work/ft-m3 -o work/merged --weights 0.3,0.5,0.7
      kit merge --base BAAI/bge-large-zh-v1.5 --finetuned work/ft -o work/merged-auto --auto \\
          --example-data work/data/train_hn.jsonl
    """
    from ..merge import merge

    merge(files.base, files.finetuned, files.output, options)
