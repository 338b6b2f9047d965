"""The stages of `kit run`, each a thin call of the same function its CLI subcommand calls.

Each YAML section maps onto that stage's options dataclass (same field names); paths in a section
are relative to the config file. This module only wires files between stages.
"""
from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path

import click

from .io import KitError
from .pipeline import Pipeline, Stage, options_from


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


def _paths(p: Pipeline, value) -> list[Path]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [p.resolve_path(v) for v in values]


# --- prep ------------------------------------------------------------------------------------------
def _prep_inputs(p: Pipeline) -> list[Path]:
    sec = p.section("prep")
    if not sec.get("inputs"):
        raise KitError(f"{p.config_path}: prep.inputs is required (PDF files or folders)")
    return _paths(p, sec["inputs"])


def _run_prep(p: Pipeline) -> dict:
    from .prep import PrepOptions, prep

    sec = p.section("prep")
    sec.pop("inputs", None)
    if sec.get("tokenizer") == "model":  # count tokens with the model being fine-tuned
        sec["tokenizer"] = p.model
    opts = options_from(PrepOptions, sec, f"{p.config_path}: prep")
    result = prep(_prep_inputs(p), p.wd.corpus, opts)
    s = _summary(result)
    if not p.wd.corpus.exists() or getattr(result, "chunks", 1) == 0:
        raise KitError("no chunk was produced; check the PDFs listed above")
    return s


# --- queries ---------------------------------------------------------------------------------------
def _run_queries(p: Pipeline) -> dict:
    from .queries import QueryOptions, gen_queries

    sec = p.section("queries")
    if sec.get("cache_path"):
        sec["cache_path"] = str(p.resolve_path(sec["cache_path"]))
    opts = options_from(QueryOptions, sec, f"{p.config_path}: queries")
    result = gen_queries(p.wd.corpus, p.wd.pairs, opts)
    return _summary(result)


# --- split -----------------------------------------------------------------------------------------
def _split_inputs(p: Pipeline) -> list[Path]:
    eq = p.section("split").get("eval_queries")
    return [p.resolve_path(eq)] if eq else []


def _run_split(p: Pipeline) -> dict:
    from .split import SplitOptions, split

    sec = p.section("split")
    if sec.get("eval_queries"):
        sec["eval_queries"] = str(p.resolve_path(sec["eval_queries"]))
    opts = options_from(SplitOptions, sec, f"{p.config_path}: split")
    return _summary(split(p.wd.pairs, p.wd.corpus, p.wd.data, opts))


# --- mine ------------------------------------------------------------------------------------------
def _model_inputs(p: Pipeline) -> list[Path]:
    path = Path(p.model)
    return [path] if path.exists() else []


def _run_mine(p: Pipeline) -> dict:
    from .mine import MineOptions, mine

    sec = p.section("mine")
    sec.setdefault("model", p.model)
    opts = options_from(MineOptions, sec, f"{p.config_path}: mine")
    return _summary(mine(p.wd.train, p.wd.corpus, p.wd.train_hn, opts))


# --- train -----------------------------------------------------------------------------------------
def _train_data(p: Pipeline) -> Path:
    """Mined rows when mining is configured, else the split's rows (negatives then come in-batch only)."""
    return p.wd.train_hn if p.section("mine") else p.wd.train


def _run_train(p: Pipeline) -> dict:
    from .train import TrainOptions, train

    sec = p.section("train")
    sec["data"], sec["output_dir"] = str(_train_data(p)), str(p.wd.finetuned)
    if sec.get("deepspeed"):
        sec["deepspeed"] = str(p.resolve_path(sec["deepspeed"]))
    opts = options_from(TrainOptions, sec, f"{p.config_path}: train")
    out = train(p.model, opts, echo=lambda m: click.echo(m, err=True))
    return {"model": str(out)}


# --- merge -----------------------------------------------------------------------------------------
def _merge_weights(p: Pipeline) -> list[float]:
    w = p.section("merge").get("weights", [0.5])
    return [float(x) for x in (w if isinstance(w, (list, tuple)) else [w])]


def _run_merge(p: Pipeline) -> dict:
    from .merge import MergeOptions, merge

    sec = p.section("merge")
    sec["weights"] = _merge_weights(p)
    if sec.get("example_data"):
        sec["example_data"] = str(p.resolve_path(sec["example_data"]))
    out = {}
    if sec.get("auto"):
        opts = options_from(MergeOptions, sec, f"{p.config_path}: merge")
        out["auto"] = [str(x) for x in merge(p.model, str(p.wd.finetuned), p.wd.merged_auto, opts)]
        return out
    for w in sec["weights"]:
        opts = options_from(MergeOptions, {**sec, "weights": [w]}, f"{p.config_path}: merge")
        out[f"{w:g}"] = [str(x) for x in merge(p.model, str(p.wd.finetuned), p.wd.merged(w), opts)]
    return out


def _merge_outputs(p: Pipeline) -> list[Path]:
    if p.section("merge").get("auto"):
        return [p.wd.merged_auto]
    return [p.wd.merged(w) for w in _merge_weights(p)]


# --- adapter ---------------------------------------------------------------------------------------
def _adapter_specs(p: Pipeline) -> dict[str, str]:
    """adapter.providers: {name: provider spec}; `base` means the base model through the local provider."""
    sec = p.section("adapter")
    providers = sec.get("providers") or {}
    return {name: (f"local:{p.model}" if spec == "base" else spec) for name, spec in providers.items()}


def _run_adapter(p: Pipeline) -> dict:
    from .adapter import AdapterOptions, train_adapter

    sec = p.section("adapter")
    sec.pop("providers", None)
    opts = options_from(AdapterOptions, sec, f"{p.config_path}: adapter")
    out = {}
    for name, spec in _adapter_specs(p).items():
        click.echo(f"[adapter] {name} over {spec}", err=True)
        out[name] = _summary(train_adapter(spec, _train_data(p), p.wd.corpus, p.wd.adapters / name, opts))
    return out


# --- bench -----------------------------------------------------------------------------------------
def bench_models(p: Pipeline) -> dict[str, str]:
    """The candidates: base, fine-tuned, each merge, each adapter, BM25, plus `bench.models` (API models)."""
    sec = p.section("bench")
    include = sec.get("include", ["base", "finetuned", "merged", "adapters", "bm25"])
    models: dict[str, str] = {}
    if "base" in include:
        models["base"] = f"local:{p.model}"
    if "finetuned" in include and p.section("train"):
        models["fine-tuned"] = f"local:{p.wd.finetuned}"
    if "merged" in include and p.section("merge"):
        if p.section("merge").get("auto"):
            models["merged-auto"] = f"local:{p.wd.merged_auto}"
        else:
            for w in _merge_weights(p):
                models[f"merged-{w:g}"] = f"local:{p.wd.merged(w)}"
    if "adapters" in include:
        for name in _adapter_specs(p):
            models[f"adapter-{name}"] = f"adapter:{p.wd.adapters / name}"
    if "bm25" in include:
        models["bm25"] = "bm25"
    for name, spec in (sec.get("models") or {}).items():
        models[name] = spec
    return models


def _bench_inputs(p: Pipeline) -> list[Path]:
    g = p.section("bench").get("general")
    return [p.resolve_path(g)] if g else []


def _run_bench(p: Pipeline) -> dict:
    from .bench.runner import BenchOptions, bench

    sec = p.section("bench")
    for k in ("include", "models"):
        sec.pop(k, None)
    if sec.get("general"):
        sec["general"] = str(p.resolve_path(sec["general"]))
    sec.setdefault("baseline", "base")
    opts = options_from(BenchOptions, sec, f"{p.config_path}: bench")
    results = bench(str(p.wd.eval), bench_models(p), str(p.wd.report), opts)
    return {"report_html": str(p.wd.report / "report.html"),
            "recommendation": (results or {}).get("recommendation")}


def build(p: Pipeline) -> list[Stage]:
    wd = p.wd
    return [
        Stage("prep", _run_prep, lambda p: [wd.corpus], external_inputs=_prep_inputs),
        Stage("queries", _run_queries, lambda p: [wd.pairs], enabled=lambda p: bool(p.section("queries"))),
        Stage("split", _run_split, lambda p: [wd.train, wd.eval], external_inputs=_split_inputs),
        Stage("mine", _run_mine, lambda p: [wd.train_hn], external_inputs=_model_inputs,
              enabled=lambda p: bool(p.section("mine"))),
        Stage("train", _run_train, lambda p: [wd.finetuned], external_inputs=_model_inputs,
              enabled=lambda p: bool(p.section("train"))),
        Stage("merge", _run_merge, _merge_outputs, enabled=lambda p: bool(p.section("merge"))),
        Stage("adapter", _run_adapter, lambda p: [wd.adapters / n for n in _adapter_specs(p)],
              enabled=lambda p: bool(_adapter_specs(p))),
        Stage("bench", _run_bench, lambda p: [wd.report / "results.json", wd.report / "report.html"],
              external_inputs=_bench_inputs, enabled=lambda p: "bench" in p.cfg),
    ]
