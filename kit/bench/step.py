"""`kit run`'s bench step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..pipeline import Pipeline, Stage, existing
from .options import BenchOptions
from ..adapter.step import adapter_specs
from ..merge.step import merge_outputs


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
        models["bm25"] = "bm25" if o.bm25_tokens == "words" else f"bm25:{o.bm25_tokens}"
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
    return [p.wd.eval] + existing(o.general, *local)


def _run_bench(p: Pipeline, o: BenchOptions) -> dict:
    from ..bench.stage import bench

    o = replace(o, baseline=o.baseline or "base", rerankers=bench_rerankers(p, o))
    from ..encode.options import layer_options

    results = bench(str(p.wd.eval), bench_models(p), str(p.wd.report), o, encode=layer_options(p))
    return {"report_html": str(p.wd.report / "report.html"),
            "recommendation": (results or {}).get("recommendation")}


STEP = (Stage("bench", BenchOptions, _run_bench,
               lambda p, o: [p.wd.report / "results.json", p.wd.report / "report.html"],
               reads=_bench_reads, enabled=lambda p: "bench" in p.cfg, help="eval + models -> report/"))
