"""The stages of `kit run`, registered in pipeline order: each is a thin call of the same function its CLI
subcommand calls, with files taken from the workdir. Each YAML section is that stage's options dataclass
(:mod:`kit.options` validates it and resolves its paths relative to the config file)."""
from __future__ import annotations

from dataclasses import asdict, is_dataclass, replace
from pathlib import Path


from .adapter import AdapterOptions
from .bench.runner import BenchOptions
from .deploy.options import DeployOptions
from .io import KitError
from .merge import MergeOptions
from .mine import MineOptions
from .pipeline import Pipeline, Stage
from .prep import PrepOptions
from .queries import QueryOptions
from .rerank_train import RerankTrainOptions
from .split import SplitOptions
from .train import TrainOptions
from .logs import note

REGISTRY: list[Stage] = []


def register(stage: Stage) -> Stage:
    REGISTRY.append(stage)
    return stage


def _summary(result) -> dict:
    """A JSON-able summary of a stage result (dataclass or dict), without bulky lists."""
    d = asdict(result) if is_dataclass(result) else dict(result or {})
    out = {}
    for k, v in d.items():
        if isinstance(v, Path):
            v = str(v)
        if isinstance(v, list) and len(v) > 20:
            v = v[:20] + [f"... {len(v) - 20} more"]
        out[k] = v
    return out


def _model_reads(p: Pipeline) -> list[Path]:
    path = Path(p.model)
    return [path] if path.exists() else []


def _existing(*paths) -> list[Path]:
    return [Path(x) for x in paths if x and Path(x).exists()]


# --- prep ------------------------------------------------------------------------------------------
def _run_prep(p: Pipeline, o: PrepOptions) -> dict:
    from .prep import prep

    if not o.inputs:
        raise KitError(f"{p.config_path}: prep.inputs is required (documents: files or folders)")
    if o.tokenizer == "model":  # count tokens with the model being fine-tuned
        o = replace(o, tokenizer=p.model)
    result = prep(o.inputs, p.wd.corpus, o)
    if not p.wd.corpus.exists() or getattr(result, "chunks", 1) == 0:
        raise KitError("no chunk was produced; check the documents listed above")
    return _summary(result)


register(Stage("prep", PrepOptions, _run_prep,
               lambda p, o: [p.wd.corpus, p.wd.corpus.with_name(p.wd.corpus.stem + ".stats.json")],
               reads=lambda p, o: [Path(x) for x in o.inputs] + (_model_reads(p) if o.tokenizer == "model" else []),
               help="documents -> corpus.jsonl"))


# --- queries ---------------------------------------------------------------------------------------
def _run_queries(p: Pipeline, o: QueryOptions) -> dict:
    from .queries import gen_queries

    result = gen_queries(p.wd.corpus, p.wd.pairs, o)
    return _summary(result)


register(Stage("queries", QueryOptions, _run_queries, lambda p, o: [p.wd.pairs],
               reads=lambda p, o: [p.wd.corpus], enabled=lambda p: p.configured("queries"),
               help="corpus -> pairs.jsonl"))


# --- split -----------------------------------------------------------------------------------------
def _run_split(p: Pipeline, o: SplitOptions) -> dict:
    from .split import split

    return _summary(split(p.wd.pairs, p.wd.corpus, p.wd.data, o))


register(Stage("split", SplitOptions, _run_split, lambda p, o: [p.wd.train, p.wd.eval, p.wd.train_corpus],
               reads=lambda p, o: [p.wd.pairs, p.wd.corpus] + _existing(o.eval_queries, o.train_queries),
               help="pairs -> data/train.jsonl + data/eval/"))


# --- mine ------------------------------------------------------------------------------------------
def _mine_options(p: Pipeline, o: MineOptions) -> MineOptions:
    return o if o.model else replace(o, model=p.model)


def _run_mine(p: Pipeline, o: MineOptions) -> dict:
    """Negatives come from the chunks training may see (split's train_corpus.jsonl), and the leakage check
    runs again on what was mined: no eval passage among the negatives."""
    from .mine import mine
    from .split import training_leakage

    summary = _summary(mine(p.wd.train, p.wd.train_corpus, p.wd.train_hn, _mine_options(p, o)))
    summary["leakage"] = training_leakage(p.wd.train_hn, p.wd.eval, p.wd.train_corpus)
    leaks = {k: v for k, v in summary["leakage"].items() if k != "rows_checked" and v}
    if leaks:
        raise KitError(f"{p.wd.train_hn}: eval text among the training rows ({leaks}); not marked done")
    return summary


register(Stage("mine", MineOptions, _run_mine, lambda p, o: [p.wd.train_hn],
               reads=lambda p, o: [p.wd.train, p.wd.train_corpus, p.wd.eval] + _existing(_mine_options(p, o).model)
               + (_existing(o.reranker[len("local:"):]) if str(o.reranker).startswith("local:") else []),
               enabled=lambda p: p.configured("mine"), help="data/train.jsonl -> data/train_hn.jsonl"))


# --- train -----------------------------------------------------------------------------------------
def train_data(p: Pipeline) -> Path:
    """Mined rows when mining is configured, else the split's rows (negatives then come in-batch only)."""
    return p.wd.train_hn if p.configured("mine") else p.wd.train


def _run_train(p: Pipeline, o: TrainOptions) -> dict:
    from .train import train

    o = replace(o, data=str(train_data(p)), output_dir=str(p.wd.finetuned),
                corpus=str(p.wd.train_corpus) if o.passage_titles else None)
    out = train(p.model, o, echo=note)
    return {"model": str(out)}


register(Stage("train", TrainOptions, _run_train, lambda p, o: [p.wd.finetuned],
               reads=lambda p, o: [train_data(p)] + _model_reads(p) + _existing(o.deepspeed)
               + ([p.wd.train_corpus] if o.passage_titles else []),
               enabled=lambda p: p.configured("train"), help="training rows -> models/finetuned"))


# --- rerank_train (kit/rerank_train/) ---------------------------------------------------------------
def _run_rerank_train(p: Pipeline, o: RerankTrainOptions) -> dict:
    from .rerank_train.stage import run_in_pipeline

    return run_in_pipeline(p, o, train_data(p))


register(Stage("rerank_train", RerankTrainOptions, _run_rerank_train, lambda p, o: [p.wd.root / "models" / "reranker"],
               reads=lambda p, o: [train_data(p)] + _existing(o.model or p.model, o.deepspeed),
               enabled=lambda p: p.configured("rerank_train"), help="training rows -> models/reranker"))


# --- merge -----------------------------------------------------------------------------------------
def merge_outputs(p: Pipeline, o: MergeOptions) -> list[Path]:
    return [p.wd.merged_auto] if o.auto else [p.wd.merged(w) for w in o.weights]


def merge_examples(p: Pipeline, o: MergeOptions) -> MergeOptions:
    """LM_Cocktail's data-driven merge needs a few example rows; without ``example_data`` the pipeline gives it
    the labelled real questions among the training rows (``split.train_queries``), else all training rows."""
    if not o.auto or o.example_data:
        return o
    from .formats import read_training_rows, write_training_rows
    from .io import ReadReport

    rows = [r for _, r in read_training_rows(train_data(p), ReadReport()) if r.get("neg")]
    real = [r for r in rows if r.get("generator") == "real"]
    path = p.wd.data / "merge_examples.jsonl"
    write_training_rows(path, real or rows)
    note(f"[merge] auto weights from {len(real or rows)} {'real questions' if real else 'training rows'}")
    return replace(o, example_data=str(path))


def _run_merge(p: Pipeline, o: MergeOptions) -> dict:
    from .merge import merge

    if o.auto:
        o = merge_examples(p, o)
        return {"auto": [str(x) for x in merge(p.model, str(p.wd.finetuned), p.wd.merged_auto, o)]}
    return {f"{w:g}": [str(x) for x in merge(p.model, str(p.wd.finetuned), p.wd.merged(w), replace(o, weights=[w]))]
            for w in o.weights}


register(Stage("merge", MergeOptions, _run_merge, merge_outputs,
               reads=lambda p, o: [p.wd.finetuned] + _model_reads(p) + _existing(o.example_data)
               + ([train_data(p)] if o.auto else []),
               enabled=lambda p: p.configured("merge"), help="fine-tuned + base -> models/merged-<w>"))


# --- adapter ---------------------------------------------------------------------------------------
def adapter_specs(p: Pipeline) -> dict[str, str]:
    """adapter.providers: {name: provider spec}; `base` means the base model through the local provider."""
    return {name: spec for name, (spec, _) in adapter_entries(p).items()}


def adapter_entries(p: Pipeline) -> dict[str, tuple[str, dict]]:
    from .adapter import provider_entries

    return {name: ((f"local:{p.model}" if spec == "base" else spec), own)
            for name, (spec, own) in provider_entries(p.options["adapter"]).items()}


def _run_adapter(p: Pipeline, o: AdapterOptions) -> dict:
    from .adapter import train_adapter

    out = {}
    for name, (spec, own) in adapter_entries(p).items():
        note(f"[adapter] {name} over {spec}")
        out[name] = _summary(train_adapter(spec, train_data(p), p.wd.train_corpus, p.wd.adapters / name, o,
                                           settings=own))
    return out


register(Stage("adapter", AdapterOptions, _run_adapter, lambda p, o: [p.wd.adapters / n for n in adapter_specs(p)],
               reads=lambda p, o: [train_data(p), p.wd.train_corpus] + _model_reads(p),
               enabled=lambda p: bool(adapter_specs(p)), help="any provider -> adapters/<name>"))


# --- bench -----------------------------------------------------------------------------------------
def bench_models(p: Pipeline) -> dict[str, str]:
    """The candidates: base, fine-tuned, each merge, each adapter, BM25, plus `bench.models` (API models)."""
    o = p.options["bench"]
    include = o.include
    models: dict[str, str] = {}
    if "base" in include:
        models["base"] = f"local:{p.model}"
    if "finetuned" in include and p.configured("train"):
        models["fine-tuned"] = f"local:{p.wd.finetuned}"
    if "merged" in include and p.configured("merge"):
        m = p.options["merge"]
        for out, w in zip(merge_outputs(p, m), ["auto"] if m.auto else m.weights):
            models[f"merged-{w:g}" if w != "auto" else "merged-auto"] = f"local:{out}"
    if "adapters" in include:
        for name in adapter_specs(p):
            models[f"adapter-{name}"] = f"adapter:{p.wd.adapters / name}"
    if "bm25" in include:
        models["bm25"] = "bm25"
    models.update(o.models or {})
    return models


def bench_rerankers(p: Pipeline, o: BenchOptions) -> dict:
    """`bench.rerankers`, plus the cross-encoder `rerank_train` made (as `reranker`) when that stage is configured."""
    own = {"reranker": f"local:{p.wd.root / 'models' / 'reranker'}"} if p.configured("rerank_train") else {}
    return {**own, **(o.rerankers or {})}


def _bench_reads(p: Pipeline, o: BenchOptions) -> list[Path]:
    local = [Path(s.split(":", 1)[1]) for s in bench_models(p).values() if s.startswith(("local:", "adapter:"))]
    rr = [v if isinstance(v, str) else str(v.get("spec") or "") for v in bench_rerankers(p, o).values()]
    local += [Path(s.split(":", 1)[1]) for s in rr if s.startswith("local:")]
    return [p.wd.eval] + _existing(o.general, *local)


def _run_bench(p: Pipeline, o: BenchOptions) -> dict:
    from .bench.runner import bench

    o = replace(o, baseline=o.baseline or "base", rerankers=bench_rerankers(p, o))
    results = bench(str(p.wd.eval), bench_models(p), str(p.wd.report), o)
    return {"report_html": str(p.wd.report / "report.html"),
            "recommendation": (results or {}).get("recommendation")}


register(Stage("bench", BenchOptions, _run_bench,
               lambda p, o: [p.wd.report / "results.json", p.wd.report / "report.html"],
               reads=_bench_reads, enabled=lambda p: "bench" in p.cfg, help="eval + models -> report/"))


# --- deploy (kit/deploy/) --------------------------------------------------------------------------
def deploy_files(p: Pipeline) -> "DeployFiles":
    from .deploy.stage import DeployFiles

    m = p.options["merge"]
    merged = {} if not p.configured("merge") or m.auto else {f"merged-{w:g}": w for w in m.weights}
    return DeployFiles(model=p.model, pairs=p.wd.pairs, corpus=p.wd.corpus, eval=p.wd.eval,
                       results=p.wd.report / "results.json", merged=merged, finetuned=p.wd.finetuned,
                       out=p.wd.root / "deploy")


def _run_deploy(p: Pipeline, o: DeployOptions) -> dict:
    from .deploy import run

    sections = {"split": p.options["split"], "train": p.options["train"], "merge": p.options["merge"],
                "mine": _mine_options(p, p.options["mine"]) if p.configured("mine") else None,
                "bench": p.options["bench"]}
    result = run(deploy_files(p), o, sections, real_eval=bool(p.options["split"].eval_queries),
                 echo=note)
    note(result.summary())
    return _summary(result)


register(Stage("deploy", DeployOptions, _run_deploy, lambda p, o: [p.wd.root / "deploy"],
               reads=lambda p, o: [p.wd.report / "results.json", p.wd.pairs, p.wd.corpus, p.wd.eval] + _model_reads(p)
               + _existing(p.options["split"].train_queries),
               enabled=lambda p: p.configured("train") and "bench" in p.cfg,
               help="the report's pick refitted on every chunk -> deploy/"))


# --- index (kit/index/): the last stage, on only with an `index:` section -----------------------------
def _run_index(p: Pipeline, o) -> dict:
    from .index import run
    from .index.workdir import pipeline_files, pipeline_options

    result = run(pipeline_files(p), pipeline_options(p, o), progress=o.progress)
    note(result.summary())
    return result.record()


def _index_stage() -> Stage:
    from .index.options import IndexOptions
    from .index.workdir import model_reads

    return Stage("index", IndexOptions, _run_index, lambda p, o: [p.wd.root / "index" / "index.json"],
                 reads=lambda p, o: [p.wd.corpus] + _existing(p.wd.eval) + model_reads(p),
                 enabled=lambda p: p.configured("index"),
                 help="corpus + deployed model -> vector store, alias switched once verified")


register(_index_stage())


SECTIONS = {s.name: s.options for s in REGISTRY}


def run_pipeline(config_path, from_stage: str | None = None, force: bool = False,
                 until: str | None = None) -> dict:
    """`kit run CONFIG`: every registered stage in order (see :mod:`kit.pipeline`)."""
    from .config import load_config

    config_path = Path(config_path).resolve()
    cfg = load_config(config_path)
    return Pipeline(cfg, config_path, REGISTRY).run(from_stage=from_stage, force=force, until=until)
