"""`kit publish`: a model folder checked and uploaded to the Hugging Face Hub or ModelScope."""
from __future__ import annotations

import click

from ..publish import PublishOptions
from ._common import stage_command


@stage_command("publish", PublishOptions)
def publish_cmd(o: PublishOptions) -> None:
    """Check FOLDER and upload it to the hub as ORG/NAME (private unless --no-private).

    The model card gets the hub's metadata (base_model, library_name, pipeline_tag, language and the measured
    results as model-index), checked with huggingface_hub's own card parser; a bge-m3 folder is reloaded with
    BGEM3FlagModel and must load both heads and give a non-empty sparse output. Training state and hidden files
    stay behind; a record file holding what looks like a key stops everything. The token comes from the
    environment only: HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), MODELSCOPE_API_TOKEN.

    \b
    Examples:
      kit publish runs/demo/deploy/models/merged-0.5 --repo acme/laws-zh-embedder --dry-run
      HF_TOKEN=... kit publish runs/demo/models/finetuned --repo acme/laws-zh-embedder --revision v2
      MODELSCOPE_API_TOKEN=... kit publish runs/demo/models/finetuned --repo acme/laws-zh --hub modelscope
    """
    from ..publish import publish

    click.echo(publish(o).summary())
