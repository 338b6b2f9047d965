"""The first version: the model a `kit run` workdir deploys today, kept as v0001 with what it learnt from.

Which model that is comes from :func:`kit.drift.workdir.versionable_model`: ``models/current``, else deploy/'s model
refitted on every chunk, else the report's recommendation, else the config's model -- and when the recommendation is
no model folder (a query adapter, an API model), the best of the kit's own model folders, said in the manifest. Its material is the workdir's:
the corpus, the training rows it was trained on (deploy/data/ for the refitted model, data/ otherwise), the chunks
training could see; the eval set it was chosen on (data/eval) is frozen as versions/eval/v0001; its figures come from
the report that measured it (per question, with a bootstrap interval); and files.json records which input file made
which chunks, by content hash, when the inputs are still the ones prep read (so an update preps only what changed).
"""
from __future__ import annotations

from pathlib import Path

from ..formats import load_eval, norm_text, read_corpus
from ..io import KitError, ReadReport, file_hash, read_json, stable_hash, text_hash
from .store import Store, Version

CHUNKING = ("max_tokens", "overlap", "tokenizer", "min_chars")
METRIC = "mrr@10"


def norm_key(text: str) -> str:
    """A passage as leakage checks compare it: its normalised text, hashed."""
    return text_hash(norm_text(text), 24)


def docs_hash(chunks: list[dict]) -> str:
    from ..drift.documents import group

    return stable_hash(sorted(v["hash"] for v in group(chunks).values()))


def count_rows(path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def heldout_keys(eval_dir, train_corpus) -> list[str]:
    """The eval set's passages training never saw: not among the training chunks (all gold passages when the
    training chunks are unknown)."""
    es = load_eval(eval_dir, passage_titles=False)
    if train_corpus is not None and Path(train_corpus).is_file():
        seen = {norm_key(c["text"]) for c in read_corpus(train_corpus, ReadReport(), required=False)}
        return sorted({norm_key(t) for t in es.doc_texts} - seen)
    return sorted({norm_key(es.doc_text(d)) for rel in es.qrels.values() for d in rel})


def figure(values: list[float], level: float = 0.95) -> dict:
    from ..bench.metrics import mean_interval

    lo, hi = mean_interval(values, level=level)
    return {"questions": len(values), "value": round(sum(values) / len(values), 6) if values else None,
            "lo": lo, "hi": hi}


def figures_from(results_path: Path, row: str, metric: str = METRIC) -> dict | None:
    if not results_path.is_file():
        return None
    entry = (read_json(results_path).get("models") or {}).get(row) or {}
    values = ((entry.get("domain") or {}).get("per_query") or {}).get(metric)
    return figure(values) if values else None


def _unchanged(x: Path, recorded: str | None, prepped: set[str], exclude) -> bool:
    """Whether the files prep read under input ``x`` are byte for byte the same now: its fingerprint as prep's manifest
    recorded it (:func:`kit.pipeline.path_fingerprint`), recomputed without the files prep has not read (added
    since: those are new documents, not a change)."""
    from ..prep.document import display
    from ..prep.inputs import find_inputs

    if recorded is None or not x.exists():
        return False
    if x.is_file():
        return file_hash(x) == recorded
    added = {f.resolve() for f in find_inputs([x], exclude)[0] if display(f) not in prepped}
    listing = sorted((str(f.relative_to(x)), file_hash(f)) for f in x.rglob("*")
                     if f.is_file() and not f.name.startswith(".") and f.resolve() not in added)
    return stable_hash(listing) == recorded


def files_ledger(p) -> dict | None:
    """{input file: {hash, ids}} of the files prep read, when they are byte for byte those files still (files added
    since do not matter); the chunks of each file found through prep's per-file counts (corpus.stats.json). None when
    that cannot be told (a file changed or removed since): an update then preps every file once."""
    from ..prep.document import display
    from ..prep.inputs import find_inputs

    mpath, stats_path = p.wd.manifest("prep"), p.wd.corpus.with_name("corpus.stats.json")
    if not (mpath.is_file() and stats_path.is_file() and p.wd.corpus.is_file()):
        return None
    m, o = read_json(mpath), p.options["prep"]
    exclude = (m.get("settings") or {}).get("exclude", o.exclude)
    counts = {f.get("path"): f.get("chunks", 0) for f in read_json(stats_path).get("files") or []}
    reads = m.get("reads") or {}
    if not all(_unchanged(Path(x), reads.get(str(Path(x))), set(counts), exclude) for x in o.inputs):
        return None
    files = [f for f in find_inputs(o.inputs, exclude)[0] if display(f) in counts]
    chunks = read_corpus(p.wd.corpus, ReadReport())
    ledger, i = {}, 0
    for f in files:
        n = counts[display(f)]
        ledger[display(f)] = {"hash": file_hash(f, 32), "ids": [c["id"] for c in chunks[i:i + n]]}
        i += n
    return ledger if i == len(chunks) and len(files) == len(counts) else None


def _source(p, d) -> dict:
    """Where the deployed model came from, and the files that made it: {kind, rows, train_corpus, results, row}."""
    wd = p.wd
    held = {"rows": next((f for f in (wd.train_hn, wd.train) if f.is_file()), None), "train_corpus": wd.train_corpus,
            "results": wd.report / "results.json", "row": d.name}
    deploy_json = wd.root / "deploy" / "deploy.json"
    if d.source.startswith(str(wd.root / "models" / "current")):
        return {**held, "kind": "current", "results": None}
    deployed = (read_json(deploy_json).get("deployed") or {}) if deploy_json.is_file() else {}
    if deployed.get("path") and Path(deployed["path"]).resolve() == Path(d.path).resolve():
        data = wd.root / "deploy" / "data"
        return {"kind": "deploy", "rows": next((f for f in (data / "train_hn.jsonl", data / "train.jsonl")
                                                if f.is_file()), held["rows"]),
                "train_corpus": data / "train_corpus.jsonl", "results": wd.root / "deploy" / "report" / "results.json",
                "row": "deployed"}
    return {**held, "kind": "base" if d.path == p.model else "report"}


def recipe(model_dir: Path) -> dict:
    """How a kit model was made, as far as an update repeats it: {merge_weight: w} for a merge, None for a
    fine-tuned model alone; {} when unknown (a base model)."""
    m = Path(model_dir) / "kit_manifest.json"
    made = read_json(m) if m.is_file() else {}
    if made.get("stage") == "merge":
        return {"merge_weight": made.get("weight_finetuned")}
    return {"merge_weight": None} if made.get("stage") == "train" else {}


def _model_folder(path: str) -> Path:
    from ..modelfolder import local_model_dir

    folder = Path(path) if Path(path).is_dir() else local_model_dir(path)
    if folder is None:
        raise KitError(f"{path}: the deployed model is neither a folder nor in the Hugging Face cache; nothing to "
                       f"keep as a version")
    return folder


def _twin(store: Store, folder: Path) -> Version | None:
    from ..embed import weights_fingerprint

    fp = weights_fingerprint(folder)
    return next((v for v in store.versions() if v.manifest.get("weights") == fp), None)


def register_deployed(p, store: Store, echo=None) -> Version:
    """The workdir's deployed model as a new version (made current); the version current already is, if any."""
    from ..drift.workdir import check_workdir, versionable_model

    echo = echo or (lambda m: None)
    check_workdir(p)
    with store.lock():
        cur = store.current()
        if cur is not None:
            return cur
        d = versionable_model(p)
        src, folder = _source(p, d), _model_folder(d.path)
        twin = _twin(store, folder)
        if twin is not None:   # models/current was lost, the model it named is a version already
            store.promote_held(twin, registered=f"{d.name} ({d.source})")
            return twin
        name, sets, records = store.next_name(), {}, {}
        if (p.wd.eval / "corpus.jsonl").is_file():
            records["eval/heldout.json"] = {"heldout": heldout_keys(p.wd.eval, src["train_corpus"]),
                                            "made_by": f"{p.wd.eval} (the eval set {d.name} was chosen on)"}
            sets[name] = figures_from(Path(src["results"]), src["row"]) if src.get("results") else None
        chunks = read_corpus(p.wd.corpus, ReadReport())
        ledger = files_ledger(p)
        manifest = {
            "source": {"kind": src["kind"], "name": d.name, "path": d.path, "how": d.source, "note": d.note},
            "config": str(p.config_path), "config_model": p.model, "parent": None,
            "chunking": {k: getattr(p.options["prep"], k) for k in CHUNKING},
            "documents": {"hash": docs_hash(chunks), "documents": len({c.get("doc") for c in chunks}),
                          "chunks": len(chunks)},
            "training": {"rows": count_rows(src["rows"]) if src["rows"] else None,
                         "hash": file_hash(src["rows"]) if src["rows"] else None},
            "eval": {"metric": METRIC, "sets": sets}, "eval_sets": list(sets),
            "recipe": recipe(folder), "files_ledger": ledger is not None}
        material = {"corpus.jsonl": p.wd.corpus, "pool.jsonl": src["rows"], "eval": p.wd.eval if sets else None,
                    "train_corpus.jsonl": src["train_corpus"] if Path(src["train_corpus"]).is_file() else None}
        if ledger is not None:
            records["files.json"] = ledger
        v = store.add(folder, manifest, material, records=records, name=name)
        link = store.current_link
        if link.is_dir() and not link.is_symlink():   # a folder put there by hand: kept, beside the link
            link.rename(link.with_name(f"current.before-{v.name}"))
            echo(f"{link} was a folder: kept as {link.with_name(f'current.before-{v.name}')}")
        store.promote_held(v, registered=f"{d.name} ({d.source})")
        echo(f"registered {d.name} ({d.path}) as {v.name}; models/current -> {v.model}")
        return v
