"""The model card (``README.md``) of a model folder the kit wrote: what the model is, what it was trained on and
how, what it measured on the user's eval set, and how to load it with sentence-transformers, FlagEmbedding,
transformers, LangChain and LlamaIndex.

The card is written from the folder's own records, so rewriting it loses nothing: ``kit_manifest.json`` (how
it was made), ``kit_model.json`` (how it embeds) and ``kit_results.json`` (what ``kit bench`` measured with it,
one entry per eval set). ``kit train`` / ``kit merge`` write it saying that nothing is measured yet; every
``kit bench`` that includes the folder as a ``local:`` model adds its numbers and rewrites it.
"""
from __future__ import annotations

from pathlib import Path

from .io import read_json, write_json, write_text
from .modelfolder import MANIFEST_FILE as MANIFEST
from .modelfolder import HEAD_FILES, TORCH_NAMES, stored_dtype
from .registry import KIT_MODEL_FILE, ModelSpec, resolve

RESULTS_FILE = "kit_results.json"


def _load(folder: Path, name: str) -> dict:
    try:
        return read_json(folder / name) if (folder / name).exists() else {}
    except (OSError, ValueError):
        return {}


def _mb(n) -> str:
    return f"{n / 1e6:.1f} MB" if n else "?"


def _dims(folder: Path):
    cfg = _load(folder, "config.json")
    return cfg.get("hidden_size") or cfg.get("d_model") or "?"


def _f(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and not Path(name).exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))


def _front_matter(man: dict, kind: str) -> list[str]:
    base = man.get("base_model") or man.get("base")
    lines = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity", "language:", "- zh"]
    if _is_hub_id(base):
        lines.append(f"base_model: {base}")
    lines += ["tags:", "- sentence-transformers", "- feature-extraction", f"- {kind}", "- kit", "---", ""]
    return lines


def _about(folder: Path, spec: ModelSpec, man: dict, kind: str) -> list[str]:
    base = man.get("base_model") or man.get("base") or "?"
    w = man.get("weights") or {}
    if kind == "merged":
        made = (f"Merged with LM_Cocktail ({man.get('method', 'mix_models')}): {man.get('weight_finetuned', 0):.3f} x "
                f"the fine-tuned model `{man.get('finetuned')}` + {man.get('weight_base', 0):.3f} x the base `{base}`.")
    else:
        made = f"Fine-tuned from `{base}` with FlagEmbedding ({spec.finetune_module}) under torchrun by `kit train`."
    rows = [("family", spec.family), ("pooling", spec.pooling), ("normalized", "yes" if spec.normalize else "no"),
            ("query instruction", f"`{spec.query_instruction}`" if spec.query_instruction else "none"),
            ("passage instruction", f"`{spec.passage_instruction}`" if spec.passage_instruction else "none"),
            ("max tokens", spec.max_length), ("dimensions", _dims(folder)),
            ("weights", f"{w.get('dtype', '?')}, {_mb(w.get('weights_bytes'))} (fp32 would be "
                        f"{_mb(w.get('fp32_bytes'))}); `--save-dtype` chooses" if w else "as saved")]
    if spec.family == "bge-m3":
        rows.append(("sparse / ColBERT heads", _heads(folder, man, kind)))
    out = [f"# {folder.name}", "", made, f"Made {man.get('finished', '?')}.", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return out + [""]


def _heads(folder: Path, man: dict, kind: str) -> str:
    """Where a bge-m3 folder's sparse/ColBERT heads came from: the card is the only place a user learns whether
    the sparse and ColBERT scores changed with the fine-tuning, or are missing (BGEM3FlagModel then starts both
    heads from random weights without an error)."""
    missing = [h for h in HEAD_FILES if not (folder / h).exists()]
    if missing:
        return (f"**missing** ({', '.join(missing)}): BGEM3FlagModel starts both heads from random weights, so "
                "the sparse and ColBERT scores mean nothing; use the dense vectors only")
    files = ", ".join(f"`{h}`" for h in HEAD_FILES)
    if kind == "merged":
        return f"{files}, merged with the same weights" if man.get("heads_merged") else f"{files}"
    trained = str((man.get("trainer_args") or {}).get("unified_finetuning", "")).lower() == "true"
    return (f"{files}, trained with the encoder (unified fine-tuning)" if trained else
            f"{files}, the base model's, unchanged: only the dense encoder was trained (`unified_finetuning: "
            "true` under train.args trains them too)")


def _training(man: dict, kind: str) -> list[str]:
    if kind == "merged":
        heads = man.get("heads_merged") or []
        return ["## How it was made", "", f"Weights averaged tensor by tensor"
                + (f"; bge-m3 heads merged the same way ({', '.join(heads)})" if heads else "") + ". "
                "The fine-tuned model's own card says what it was trained on.", ""]
    data = man.get("data_summary") or {}
    out = ["## Training data", "",
           f"{man.get('data_rows', '?')} rows (query, positive, hard negatives) from `{man.get('data')}` "
           f"(sha256 {str(man.get('data_sha256', '?'))[:16]}…); {man.get('data_dropped', 0)} dropped by the checks."]
    if data.get("generators"):
        gens = ", ".join(f"{k} {v}" for k, v in data["generators"].items())
        out.append(f"Questions by generator: {gens}. Documents: {data.get('documents', '?')}; "
                   f"negatives per row: {data.get('negatives_per_row', '?')}.")
    args = man.get("trainer_args") or {}
    keys = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "train_group_size",
            "query_max_len", "passage_max_len", "temperature", "warmup_steps")
    out += ["", "## Training settings", "", "| setting | value |", "|---|---|"]
    out += [f"| {k} | {args[k]} |" for k in keys if k in args]
    out += [f"| precision | {man.get('training_dtype', '?')} |",
            f"| processes | {man.get('processes', '?')} |"]
    if man.get("resumed_from"):
        out.append(f"| resumed from | `{man['resumed_from']}` |")
    out += ["", "The exact command, package versions and git revision are in `kit_manifest.json`. `checkpoint-*` "
            "folders (if any) are training state for resuming, not needed to use the model.", ""]
    return out


def _results(res: dict) -> list[str]:
    out = ["## Results on your eval set", ""]
    if not res:
        return out + ["Not measured yet. `kit bench --eval EVAL_DIR --model new=local:THIS_FOLDER "
                      "--model base=local:BASE_MODEL` (or `kit run`'s bench stage) adds the numbers here.", ""]
    for path, r in sorted(res.items()):
        m, k = r.get("metrics", {}), r.get("k", 10)
        q = r.get("questions") or {}
        kind = q.get("questions", "unknown")
        out += [f"`{path}`: {r.get('queries')} questions ({kind}"
                + (f": {', '.join(q['generators'])}" if q.get("generators") else "") + f"), "
                f"{r.get('corpus')} passages; measured {r.get('measured')} as `{r.get('name')}`.", "",
                f"| model | MRR@{k} | recall@{k} | nDCG@{k} |", "|---|---|---|---|",
                f"| this model | {_f(m.get('mrr'))} | {_f(m.get('recall'))} | {_f(m.get('ndcg'))} |"]
        for other in r.get("others", []):
            om = other.get("metrics", {})
            out.append(f"| {other['name']} (`{other['spec']}`) | {_f(om.get('mrr'))} | {_f(om.get('recall'))} | "
                       f"{_f(om.get('ndcg'))} |")
        if r.get("general") is not None:
            out.append(f"\nGeneral-ability check (`{r.get('general_path')}`): MRR@{k} {r['general']:.4f}.")
        if kind != "real":
            out.append("\nThese questions were not asked by real users (generated from the documents, or of unknown "
                       "origin): gains measured on them can overstate what users will see.")
        out.append("")
    return out


def _cpu_note(stored: str | None) -> list[str]:
    """What the stored dtype means for CPU inference (transformers 5 and sentence-transformers load the dtype
    config.json names, i.e. the stored one)."""
    name = TORCH_NAMES.get(stored or "", "float32")
    if name == "float32":
        return ["**CPU inference**: the weights are stored in float32 and load in float32 everywhere; the "
                "`float32` arguments below change nothing.", ""]
    return [f"**CPU inference**: the weights are stored in {name} (half the size of float32), and "
            f"`config.json` says `\"dtype\": \"{name}\"`, so transformers and sentence-transformers load them "
            f"in {name} unless told otherwise. On a CPU that is slow (sentence-transformers warns): load in "
            "float32 for CPU inference, e.g. "
            '`SentenceTransformer(PATH, model_kwargs={"dtype": "float32"})` or '
            "`AutoModel.from_pretrained(PATH, dtype=torch.float32)` (before transformers 4.56 the argument is "
            f"`torch_dtype`), as every snippet below does. On a GPU leave the `float32` arguments out to run in "
            f"{name}. `kit_model.json` says the same under `cpu_inference`.", ""]


def _usage(spec: ModelSpec, stored: str | None = None) -> list[str]:
    """Loading snippets, each runnable as is once ``PATH`` and the ``["..."]`` texts are filled in (the tests run
    them). ``dtype=float32`` computes in fp32 on a CPU whatever the stored dtype; leave it out on a GPU."""
    qi, pi = spec.query_instruction, spec.passage_instruction
    q_prompt = ', "prompt_name": "query"' if qi else ""
    d_prompt = ', "prompt_name": "document"' if pi else ""
    fkw = ", ".join(f"{k}={v!r}" for k, v in spec.flagembedding_kwargs().items() if v is not None)
    pool = ("hidden[:, 0]" if spec.pooling == "cls" else "(hidden * mask).sum(1) / mask.sum(1)  # mean of real tokens")
    fp32 = '{"dtype": torch.float32}'
    return ["## Use it", "", "Replace `PATH` with this folder.", "", *_cpu_note(stored),
            "sentence-transformers (pooling, normalisation and prompts are read from this folder):", "```python",
            "import torch", "from sentence_transformers import SentenceTransformer",
            f'model = SentenceTransformer("PATH", model_kwargs={fp32})',
            'queries = model.encode_query(["..."])      # adds the query prompt, if any',
            'passages = model.encode_document(["..."])  # adds the passage prompt, if any', "```", "",
            "FlagEmbedding (`FlagAutoModel` takes pooling from a *hub* name only and `FlagModel` defaults to CLS "
            "pooling, so give these arguments; `kit_model.json` holds them under `flagembedding`):", "```python",
            "from FlagEmbedding import FlagAutoModel",
            f'model = FlagAutoModel.from_finetuned("PATH", {fkw}, use_fp16=False)',
            'queries = model.encode_queries(["..."])', 'passages = model.encode_corpus(["..."])', "```", "",
            "transformers:", "```python", "import torch", "from transformers import AutoModel, AutoTokenizer",
            'tok = AutoTokenizer.from_pretrained("PATH")',
            'model = AutoModel.from_pretrained("PATH", dtype=torch.float32).eval()', "",
            "def embed(texts, prefix):",
            f'    batch = tok([prefix + t for t in texts], padding=True, truncation=True, max_length={spec.max_length}, '
            'return_tensors="pt")',
            "    with torch.no_grad():", "        hidden = model(**batch).last_hidden_state",
            '    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)', f"    emb = {pool}",
            "    return torch.nn.functional.normalize(emb, dim=-1).numpy()", "",
            f'queries = embed(["..."], {qi!r})', f'passages = embed(["..."], {pi!r})', "```", "",
            "LangChain:", "```python", "import torch", "from langchain_huggingface import HuggingFaceEmbeddings",
            f'lc = HuggingFaceEmbeddings(model_name="PATH", model_kwargs={{"model_kwargs": {fp32}}},',
            f'                           encode_kwargs={{"normalize_embeddings": True{d_prompt}}},',
            f'                           query_encode_kwargs={{"normalize_embeddings": True{q_prompt}}})',
            'queries = [lc.embed_query(t) for t in ["..."]]', 'passages = lc.embed_documents(["..."])', "```", "",
            "LlamaIndex (it replaces the folder's prompts with its own arguments, so pass the instructions):",
            "```python", "import torch", "from llama_index.embeddings.huggingface import HuggingFaceEmbedding",
            f'li = HuggingFaceEmbedding(model_name="PATH", query_instruction={qi or None!r}, '
            f'text_instruction={pi or None!r}, model_kwargs={fp32})',
            'queries = [li.get_query_embedding(t) for t in ["..."]]',
            'passages = li.get_text_embedding_batch(["..."])', "```", "",
            *(_m3_usage() if spec.family == "bge-m3" else [])]


def _m3_usage() -> list[str]:
    """bge-m3's sparse and ColBERT outputs: only FlagEmbedding's BGEM3FlagModel reads the two head files (every
    loader above gives the dense vector alone)."""
    out = "return_dense=True, return_sparse=True, return_colbert_vecs=True"
    return ["bge-m3's sparse (lexical weights) and ColBERT outputs, from `sparse_linear.pt` and `colbert_linear.pt` "
            "in this folder (FlagEmbedding's `BGEM3FlagModel` reads them; it needs both files, and starts both heads "
            "from random weights without an error when one is missing):", "```python",
            "from FlagEmbedding import BGEM3FlagModel",
            'model = BGEM3FlagModel("PATH", use_fp16=False)   # fp32: on a GPU use_fp16=True is faster',
            f'queries = model.encode_queries(["..."], {out})',
            f'passages = model.encode_corpus(["..."], {out})',
            'sparse = model.compute_lexical_matching_score(queries["lexical_weights"], passages["lexical_weights"])',
            'colbert = model.colbert_score(queries["colbert_vecs"][0], passages["colbert_vecs"][0])', "```", ""]


def card_text(folder) -> str:
    folder = Path(folder)
    man = _load(folder, MANIFEST)
    kind = "merged" if man.get("stage") == "merge" else "fine-tuned"
    spec = resolve(str(folder))
    lines = _front_matter(man, kind) + _about(folder, spec, man, kind) + _training(man, kind) \
        + _results(_load(folder, RESULTS_FILE)) + _usage(spec, (man.get("weights") or {}).get("dtype")
                                                         or stored_dtype(folder))
    return "\n".join(lines)


def write_card(folder) -> Path:
    """(Re)write ``folder/README.md`` from the folder's records."""
    path = Path(folder) / "README.md"
    write_text(path, card_text(folder))
    return path


def is_kit_folder(folder) -> bool:
    folder = Path(folder)
    return (folder / MANIFEST).exists() and (folder / KIT_MODEL_FILE).exists()


def record_results(folder, record: dict) -> Path:
    """Keep ``record`` (one eval set's numbers for this model) in kit_results.json and rewrite the card."""
    folder = Path(folder)
    results = _load(folder, RESULTS_FILE)
    results[record["eval"]] = {k: v for k, v in record.items() if k != "eval"}
    write_json(folder / RESULTS_FILE, results)
    return write_card(folder)


def bench_records(results: dict) -> dict[str, dict]:
    """{model folder: record} for every ``local:`` model of a bench run whose folder the kit wrote."""
    from .formats import read_eval_info

    ks = [int(x) for x in (results.get("options") or {}).get("k") or [10]]
    k = 10 if 10 in ks else max(ks)   # the report's main cut-off
    domain = results["sets"]["domain"]
    info = read_eval_info(domain["path"]) if Path(domain["path"]).is_dir() else {"questions": "unknown"}
    metrics = {n: (e.get("domain") or {}).get("metrics", {}) for n, e in results["models"].items()}
    out = {}
    for name, e in results["models"].items():
        spec = str(e.get("spec", ""))
        folder = spec[len("local:"):] if spec.startswith("local:") else None
        if not folder or not is_kit_folder(folder):
            continue
        general = (e.get("general") or {}).get("metrics", {}).get(f"mrr@{k}")
        out[folder] = {"eval": str(Path(domain["path"]).resolve()), "name": name, "measured": results.get("created"),
                       "queries": domain.get("queries"), "corpus": domain.get("corpus"), "questions": info, "k": k,
                       "metrics": {m: metrics[name].get(f"{m}@{k}") for m in ("mrr", "recall", "ndcg", "hit")},
                       "others": [{"name": o, "spec": results["models"][o]["spec"],
                                   "metrics": {m: metrics[o].get(f"{m}@{k}") for m in ("mrr", "recall", "ndcg")}}
                                  for o in results["models"] if o != name],
                       "general": general,
                       "general_path": (results["sets"].get("general") or {}).get("path")}
    return out


def record_bench(results: dict) -> list[Path]:
    """Write a bench run's numbers into the card of every kit model folder it measured."""
    return [record_results(folder, rec) for folder, rec in bench_records(results).items()]


__all__ = ["RESULTS_FILE", "bench_records", "card_text", "is_kit_folder", "record_bench", "record_results",
           "write_card"]
