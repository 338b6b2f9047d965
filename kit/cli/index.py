"""`kit index`: the corpus into a vector store, blue-green; --rollback, --prune KEEP, --status."""
from __future__ import annotations

import dataclasses

import click

from ..encode.options import EncodeOptions
from ..index.options import IndexFiles, IndexOptions
from ..options import cli_values, click_options, validated
from ._common import CONTEXT, EXIT_CODES, handle_errors, main


def _command(fn):
    cmd = handle_errors(fn)
    for cls in (EncodeOptions, IndexOptions, IndexFiles):
        cmd = click_options(cls)(cmd)
    command = main.command("index", context_settings=CONTEXT, epilog=EXIT_CODES)(cmd)
    command.kit_sources = (IndexFiles, IndexOptions, EncodeOptions)
    return command


def _load(files: IndexFiles, typed: dict, flags: dict) -> tuple[IndexFiles, IndexOptions, EncodeOptions | None]:
    """(files, the index options, the encoding layer's options or None): defaults < CONFIG's sections < flags."""
    from ..encode.options import layer_options, wanted

    if not files.config:
        return files, validated(IndexOptions(**typed), "index"), wanted(validated(EncodeOptions(**flags), "encode"))
    from pathlib import Path

    from ..config import load_config
    from ..index.workdir import pipeline_files, pipeline_options
    from ..pipeline import Pipeline
    from ..stages import REGISTRY

    path = Path(files.config).resolve()
    p = Pipeline(load_config(path), path, REGISTRY)
    options = validated(dataclasses.replace(p.options["index"], **typed), "index")
    section = layer_options(p)
    encode = (validated(dataclasses.replace(section, **flags), "encode") if section is not None else
              wanted(validated(EncodeOptions(**flags), "encode")))
    return pipeline_files(p, files), pipeline_options(p, options), encode


@_command
def index_cmd(**kwargs):
    """Embed a corpus into a vector store and move the search alias NAME to it with no downtime.

    Each model version fills its own collection NAME__VERSION (VERSION: a hash of the model unless --version
    gives one). Only the chunks the collection lacks are embedded (a killed run resumes; the same model with
    changed documents updates its collection in place: upserts and deletes by chunk id). Before the alias moves,
    the collection must hold exactly the corpus (count parity) and pass the golden check: the eval questions'
    recall@10 through the store equals the kit's exact search within --tolerance. Then the alias moves
    atomically; readers never see an empty or half-filled collection. Old collections stay until --prune.

    Stores: milvus-lite:///PATH.db (default: beside the corpus, or WORKDIR/index/milvus.db), faiss:///FOLDER,
    milvus://HOST:19530, qdrant://HOST:6333, qdrant-local:///FOLDER. Keys come from MILVUS_TOKEN or
    QDRANT_API_KEY only, never from the URI.

    \b
    Examples:
      kit index --model runs/demo/models/merged-0.5 --corpus runs/demo/corpus.jsonl \\
          --eval runs/demo/data/eval --store milvus-lite:///srv/laws.db --name laws
      kit index configs/demo.yaml --store milvus://10.0.0.5:19530 --name laws
      kit index --rollback --store milvus://10.0.0.5:19530 --name laws
      kit index --prune 2 --store milvus://10.0.0.5:19530 --name laws
      kit index --status --store qdrant://10.0.0.6:6333 --name laws
      kit index configs/demo.yaml --engine torchrun --workers 8     # chunks encoded by 8 ranks into shard files
    """
    from ..index import run

    files = validated(IndexFiles(**cli_values(IndexFiles, kwargs)), "index")
    files, options, encode = _load(files, cli_values(IndexOptions, kwargs), cli_values(EncodeOptions, kwargs))
    result = run(files, options, progress=options.progress, encode=encode)
    click.echo(result.summary())
