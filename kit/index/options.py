"""The ``index:`` section (:class:`IndexOptions`) and what `kit index` reads besides it (:class:`IndexFiles`)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..options import option

# Milvus allows letters, digits and underscores in collection and alias names (Qdrant allows more): the common
# ground. "__" separates the name from the version in a collection name, so a name may not contain it.
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,100}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,60}$")
SEPARATOR = "__"
MODES = ("auto", "on", "off")


def name_problem(v) -> str | None:
    if not NAME.match(str(v)) or SEPARATOR in str(v) or str(v).endswith("_"):
        return "letters, digits and single underscores, starting with a letter (\"__\" separates the version)"
    return None


def version_problem(v) -> str | None:
    if v is None:
        return None
    return None if VERSION.match(str(v)) and SEPARATOR not in str(v) else \
        "letters, digits and single underscores, starting with a letter or digit"


def _positive(v) -> str | None:
    return None if v >= 1 else "must be >= 1"


def _tolerance(v) -> str | None:
    return None if 0 <= v < 1 else "must lie in [0, 1)"


@dataclass
class IndexOptions:
    """The ``index:`` section; field names equal its keys."""

    store: str | None = option(None, help="Where the vectors go: milvus-lite:///PATH/index.db (Milvus Lite, a file "
                               "folder, no server: the default, WORKDIR/index/milvus.db or beside the corpus), "
                               "faiss:///FOLDER, milvus://HOST:19530, qdrant://HOST:6333 (https: milvus+https://, "
                               "qdrant+https://), qdrant-local:///FOLDER. Keys never go in the URI: MILVUS_TOKEN, "
                               "QDRANT_API_KEY.")
    name: str = option("kit", check=name_problem, help="The alias searches use; each model version fills a "
                       "collection NAME__VERSION and the alias moves to it once it is verified.")
    version: str | None = option(None, check=version_problem, help="The collection's version (NAME__VERSION); "
                                 "default: a hash of the model's weights and how it embeds, so the same model updates "
                                 "its collection incrementally and another model always gets a new one.")
    batch_size: int = option(64, check=_positive, help="Chunks embedded and written per batch (a killed run loses at "
                             "most one batch of store writes; embeddings are cached).")
    passage_titles: bool = option(True, help="Embed a chunk as `kit bench` scores it: its title before its text.")
    payload_text: bool = option(True, help="Store the chunk's text in the payload (besides id, document, pages and "
                                "title), so the search service can show it without another look-up.")
    sparse: str = option("auto", choices=MODES, help="bge-m3's sparse (lexical) vectors: auto = when the model has "
                         "the heads and the store holds sparse vectors (Milvus, Qdrant; not faiss).")
    colbert: str = option("off", choices=MODES, help="bge-m3's ColBERT multi-vectors (one vector per token: about "
                          "100x the dense storage): auto/on = when the model has the heads and the store holds "
                          "multi-vectors (Qdrant only).")
    golden_k: int = option(10, check=_positive, help="Cut-off of the golden check's recall.")
    tolerance: float = option(0.01, check=_tolerance, help="The golden check passes when the eval questions' "
                              "recall@k through the store differs from the kit's exact search by at most this.")
    golden_queries: int = option(200, check=_positive, help="Eval questions (seeded sample) the golden check asks; "
                                 "without an eval set, that many chunks ask for themselves (title + first sentence).")
    precision: str = option("auto", choices=("auto", "fp32", "bf16", "fp16"),
                            help="Encoding precision; auto = fp16 on CUDA, bf16 on CPUs that have it, else fp32.")
    max_length: int | None = option(None, help="Token limit of the passages (default: the model's).")
    cache_path: str | None = option(None, path=True, help="Embedding cache (default "
                                    "$KIT_CACHE_DIR/embeddings.sqlite).")
    progress: bool = option(True, yaml=False, help="Show progress bars.")


@dataclass
class IndexFiles:
    """What `kit index` reads (a config's workdir, or the files named) and the one-off actions."""

    config: str | None = option(None, argument=True, yaml=False, help="Pipeline YAML: the workdir's corpus, eval "
                                "questions and deployed (else recommended) model, and the `index:` section.")
    model: str | None = option(None, yaml=False, help="Embedding model folder or hub id (default with CONFIG: "
                               "deploy/deploy.json's model, else the report's recommendation, else `model:`).")
    corpus: str | None = option(None, yaml=False, help="prep's corpus.jsonl (default with CONFIG: the workdir's).")
    eval: str | None = option(None, yaml=False, help="Eval set for the golden check (custom-eval or BEIR folder; "
                              "default with CONFIG: WORKDIR/data/eval).")
    rollback: bool = option(False, yaml=False, help="Move the alias back to the collection it pointed to before the "
                            "last switch, and do nothing else.")
    prune: int | None = option(None, yaml=False, help="Drop NAME's collections but the live one and the KEEP most "
                               "recent others (rollback targets first), and do nothing else.")
    status: bool = option(False, yaml=False, help="Print where the alias points and NAME's collections, and do "
                          "nothing else.")
    record: str | None = option(None, yaml=False, cli=False, help="Where the run's record goes (JSON; `kit run` and "
                                "`kit index CONFIG`: WORKDIR/index/index.json).")
    model_source: str = option("--model", yaml=False, cli=False, help="Where the model choice came from.")
