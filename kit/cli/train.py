"""`kit train`: fine-tune with FlagEmbedding under torchrun, configured by a pipeline YAML."""
from __future__ import annotations

from dataclasses import replace

import click

from ._common import handle_errors, main


@main.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Pipeline YAML: top-level `model:` and the `train:` section.")
@click.option("--model", default=None, help="Base model (hub id or folder); overrides `model:`.")
@click.option("--data", default=None, help="Training JSONL (query/pos/neg); overrides train.data.")
@click.option("--output", "-o", default=None, help="Output folder; overrides train.output_dir.")
@click.option("--nproc", default=None, help="Processes per node ('auto' = number of GPUs).")
@click.option("--nnodes", type=int, default=None, help="Number of nodes (multi-node torchrun).")
@click.option("--node-rank", type=int, default=None, help="This node's rank.")
@click.option("--master-addr", default=None, help="Address of node 0.")
@click.option("--master-port", type=int, default=None, help="Port on node 0.")
@click.option("--dry-run", is_flag=True, help="Validate the data and print the exact command; do not train.")
@handle_errors
def train_cmd(config_path, model, data, output, nproc, nnodes, node_rank, master_addr, master_port, dry_run):
    """Fine-tune an embedding model (FlagEmbedding under torchrun), resuming from the last checkpoint.

    \b
    Example:
      kit train --config configs/cpu-small.yaml --data work/data/train_hn.jsonl -o work/model-ft
      kit train --config configs/bge-m3.yaml --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --dry-run
    """
    from ..config import load_config
    from ..train import TrainOptions, train

    cfg = load_config(config_path)
    options = TrainOptions.from_dict(cfg.get("train"), source=f"{config_path}: train")
    overrides = {k: v for k, v in dict(data=data, output_dir=output, nproc=nproc, nnodes=nnodes,
                                       node_rank=node_rank, master_addr=master_addr,
                                       master_port=master_port).items() if v is not None}
    options = replace(options, **overrides)
    train(model or cfg.get("model"), options, dry_run=dry_run, echo=click.echo)
