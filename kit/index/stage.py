"""`kit index`: the corpus into a vector store, blue-green.

Steps (each a function): the alias is checked (:func:`kit.index.switch.live`: it must point to one of NAME's
verified collections, or nowhere) -> the collection NAME__VERSION is created or reopened (the version is the
model's identity unless given: the same model reopens its collection, another model always gets a new one) ->
:func:`kit.index.fill.fill` writes only what the collection lacks -> :func:`kit.index.verify.parity` and
:func:`kit.index.verify.golden` -> the collection is marked verified -> the alias moves to it
(:func:`kit.index.switch.switch`). Any failure before the last step leaves the alias where it was; the
collection stays, marked ``filling``, and the next run resumes it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..io import KitError, write_json
from ..providers.m3 import is_m3_folder
from ..secrets import redact_obj
from . import switch as sw
from .encode import ChunkEncoder
from .fill import fill
from .options import SEPARATOR, IndexFiles, IndexOptions
from .rows import read_rows
from .stores import Schema, Store, open_store
from .uri import parse
from .verify import golden, parity


@dataclass
class IndexResult:
    action: str                        # index | rollback | prune | status
    store: str
    name: str
    collection: str | None = None      # the collection filled (index) or now live (rollback)
    previous: str | None = None        # where the alias pointed before
    switched: bool = False
    model: dict = field(default_factory=dict)
    fill: dict = field(default_factory=dict)
    parity: dict = field(default_factory=dict)
    golden: dict = field(default_factory=dict)
    kept: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    status: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def record(self) -> dict:
        return redact_obj(asdict(self))

    def summary(self) -> str:
        from .report import summary

        return summary(self)


def decide(mode: str, what: str, has_heads: bool, supported: bool, model: str, store) -> tuple[bool, str | None]:
    """(keep bge-m3's ``what`` output?, a note when auto leaves it out)."""
    if mode == "off":
        return False, None
    if not has_heads:
        if mode == "on":
            raise KitError(f"index.{what} on: {model} has no bge-m3 heads (sparse_linear.pt and colbert_linear.pt)")
        return False, None
    if not supported:
        if mode == "on":
            raise KitError(f"index.{what} on: a {store.kind} store holds no {what} vectors")
        return False, f"{what} vectors left out: a {store.kind} store holds none"
    return True, None


def compatible(store: Store, collection: str, info, meta: dict, dim: int) -> None:
    """One line when an existing collection cannot take this model's vectors."""
    where = f"{store.uri}: {collection}"
    if not info.meta.get("kit_index"):
        raise KitError(f"{where} exists and was not made by kit index; choose another --version or --name")
    if info.dim != dim:
        raise KitError(f"{where} holds {info.dim}-dimensional vectors, and {meta['model']} makes {dim}: a model "
                       f"change needs a new collection (leave --version unset, or give a new one)")
    if info.meta.get("model_id") != meta["model_id"]:
        raise KitError(f"{where} was filled by another model or embedding ({info.meta.get('model')}); a model change "
                       f"always means a new collection: leave --version unset, or give a new one")


def prepare(store: Store, files: IndexFiles, options: IndexOptions, result: IndexResult):
    """(rows, encoder, collection name, its meta) with the collection created or checked."""
    rows, notes = read_rows(files.corpus, options.passage_titles, options.payload_text)
    result.notes += [f"{notes['bad_lines']} bad corpus lines skipped"] * bool(notes["bad_lines"])
    result.notes += [f"{notes['payloads_cut']} payloads cut to the store's field sizes"] * bool(notes["payloads_cut"])
    heads = is_m3_folder(files.model)
    sparse, n1 = decide(options.sparse, "sparse", heads, store.sparse, files.model, store)
    colbert, n2 = decide(options.colbert, "colbert", heads, store.multivector, files.model, store)
    result.notes += [n for n in (n1, n2) if n]
    encoder = ChunkEncoder(files.model, sparse=sparse, colbert=colbert, precision=options.precision,
                           max_length=options.max_length, batch_size=options.batch_size, cache_path=options.cache_path)
    version = options.version or f"m{encoder.identity[:10]}"
    collection = f"{options.name}{SEPARATOR}{version}"
    dim = int(encoder.passages([rows[0].text])["dense"].shape[1])
    meta = {"kit_index": 1, "name": options.name, "version": version, "state": sw.FILLING, "created": sw.now(),
            **encoder.describe(), "dim": dim, "sparse": sparse, "colbert": colbert,
            "passage_titles": options.passage_titles, "corpus": str(files.corpus), "previous": None}
    result.model = redact_obj({k: meta[k] for k in ("model", "family", "model_id", "dim", "sparse", "colbert")})
    info = store.info(collection)
    if info is None:
        store.create(collection, Schema(dim, sparse, encoder.colbert_dim if colbert else 0, options.payload_text),
                     redact_obj(meta))
    else:
        compatible(store, collection, info, meta, dim)
        meta = info.meta
    return rows, encoder, collection, meta


def through_layer(rows, encoder: ChunkEncoder, encode, head: str = "dense"):
    """Every row's dense vector (or, ``head="sparse"``, a bge-m3 folder's sparse row: kit/encode/heads.py) through
    the encoding layer (kit/encode/: this process, torchrun ranks or Ray actors writing shard files; a killed run
    redoes only missing shards, and the embedding cache answers what is unchanged). All rows, not only those the
    collection lacks: the golden check's exact search reads them all."""
    from ..encode import encode_texts

    return encode_texts(lambda: (r.text for r in rows), encoder=encoder.dense if head == "dense" else encoder.sparse_encoder(),
                        kind="passage", options=encode,
                        desc=f"encoding {len(rows)} chunks{' (sparse head)' if head != 'dense' else ''} "
                             f"({encode.engine})")


def index(store: Store, files: IndexFiles, options: IndexOptions, progress: bool, encode=None) -> IndexResult:
    """``encode`` (kit.encode.EncodeOptions, the `encode:` section or --engine/--workers): the chunks' dense vectors
    come from the encoding layer's shard files, read a batch at a time; None embeds them here, as before."""
    if not files.model or not files.corpus:
        raise KitError("kit index needs a model and a corpus: --model M --corpus corpus.jsonl, or a CONFIG")
    result = IndexResult("index", str(store.uri), options.name, notes=[f"model from {files.model_source}"])
    current = sw.live(store, options.name)          # a wrong alias stops the run before any work
    result.previous = current
    rows, encoder, collection, meta = prepare(store, files, options, result)
    result.collection = collection
    layer = sparse_layer = None
    keys = ("engine", "workers", "shards", "shard_size", "encoded", "cached", "shards_reused", "seconds")
    try:
        if encode is not None:
            layer = through_layer(rows, encoder, encode)
            if encoder.sparse:
                sparse_layer = through_layer(rows, encoder, encode, head="sparse")
        dense = layer.vectors if layer is not None else None
        result.fill = fill(store, collection, rows, encoder, options.batch_size, progress, dense=dense,
                           sparse=sparse_layer.vectors if sparse_layer is not None else None)
        if layer is not None:
            result.fill["encoded"]["dense"] += layer.stats.get("encoded", 0)   # + the one chunk prepare() probed
            result.fill["layer"] = {k: layer.stats[k] for k in keys if k in layer.stats}
        if sparse_layer is not None:
            result.fill["encoded"]["sparse"] += sparse_layer.stats.get("encoded", 0)
            result.fill["layer"]["sparse"] = {k: sparse_layer.stats[k] for k in keys if k in sparse_layer.stats}
        verified(store, files, options, result, rows, encoder, live_now=collection == current, dense=dense)
    finally:
        encoder.close()
        for lay in (layer, sparse_layer):
            if lay is not None:
                lay.cleanup()
    store.set_meta(collection, {**meta, "state": sw.VERIFIED, "verified_at": sw.now(),
                                "checks": {"parity": result.parity, "golden": result.golden}})
    if current != collection:
        sw.switch(store, options.name, collection, current)
        result.switched = True
    return result


def verified(store, files, options, result: IndexResult, rows, encoder, live_now: bool, dense=None) -> None:
    after = (f"; the alias still points to {result.previous}" if not live_now else
             f"; {result.collection} is live (updated in place): `kit index --rollback` moves the alias back")
    result.parity = parity(store, result.collection, rows)
    p = result.parity
    if not p["ok"]:
        raise KitError(f"{store.uri}: {result.collection} holds {p['stored']} rows for {p['corpus']} chunks (missing "
                       f"{p['missing']}, extra {p['extra']}, stale {p['stale']}){after}")
    result.golden = golden(store, result.collection, rows, encoder, files.eval, options.golden_k,
                           options.golden_queries, options.tolerance, dense)
    g, k = result.golden, options.golden_k
    if not g["ok"]:
        raise KitError(f"{store.uri}: golden check failed on {result.collection}: recall@{k} through the store "
                       f"{g[f'recall@{k}_store']:.4f} vs exact search {g[f'recall@{k}_exact']:.4f} (tolerance "
                       f"{g['tolerance']}), {g['empty_results']} empty results{after}")


def default_store(files: IndexFiles) -> str:
    if not files.corpus:
        raise KitError("--store is required here (e.g. milvus-lite:///srv/index.db or milvus://HOST:19530)")
    return f"milvus-lite://{Path(files.corpus).resolve().parent / 'index' / 'milvus.db'}"


def run(files: IndexFiles, options: IndexOptions, *, progress: bool = True, encode=None) -> IndexResult:
    """`kit index`: fill and switch (default), or only --rollback, --prune KEEP or --status. ``encode``: see
    :func:`index`."""
    if sum([files.rollback, files.prune is not None, files.status]) > 1:
        raise KitError("--rollback, --prune and --status are separate actions: give one")
    uri = parse(options.store or default_store(files))
    with open_store(uri) as store:
        if files.status:
            result = IndexResult("status", str(uri), options.name, status=sw.status(store, options.name))
        elif files.rollback:
            was, now = sw.rollback(store, options.name)
            result = IndexResult("rollback", str(uri), options.name, collection=now, previous=was, switched=True,
                                 model={"model": (store.info(now).meta or {}).get("model")})
        elif files.prune is not None:
            kept, dropped = sw.prune(store, options.name, files.prune)
            result = IndexResult("prune", str(uri), options.name, kept=kept, dropped=dropped)
        else:
            result = index(store, files, options, progress, encode)
    if files.record and result.action == "index":     # a rollback is recorded in the store itself
        write_json(files.record, result.record())
    return result
