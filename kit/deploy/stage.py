"""The model to deploy: trained on every chunk with the recipe the held-out split chose.

With real eval questions the split holds their gold passages out of training (``holdout: gold``): the right way
to *choose* a recipe and a merge weight, since it measures how the recipe serves passages it never trained on.
But the model a company deploys should learn from every document it has. This stage, after `kit bench`, takes
the report's pick (or ``deploy.candidate``), trains the same recipe on every chunk's pairs (the eval questions
themselves never train: dropped by text), merges it with the same weight, and benchmarks it on the same real
questions beside the held-out pick, base and BM25, each row labelled with what it measures.

Each step's output is kept, so a killed run resumes at the step it was in (the pipeline clears the folder when
anything it depends on changes)::

    deploy/data/train.jsonl, train_corpus.jsonl, train_hn.jsonl     every chunk's pairs, mined
    deploy/models/finetuned, deploy/models/merged-<w>               the deployed model is the last one
    deploy/report/                                                  results.json, report.md, report.html
    deploy/deploy.json                                              the decision, the figures, what each measures
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..io import KitError, read_json, write_json
from .options import DATA, DECISION, REPORT, DeployOptions

HELD_OUT, DEPLOYED = "held out", "deployed"


@dataclass
class DeployFiles:
    """What the stage reads (the workdir's held-out run) and where it writes."""

    model: str            # the base model
    pairs: Path
    corpus: Path
    eval: Path            # the held-out split's eval folder (the real questions)
    results: Path         # the held-out report's results.json
    merged: dict          # {row name: merge weight} of the held-out run's merged models
    finetuned: Path       # the held-out run's fine-tuned model
    out: Path             # WORKDIR/deploy
    log_labels: Path | None = None   # the question log's labels (kit/questionlog/): they train the refit as in split


@dataclass
class DeployResult:
    decision: dict
    report: Path | None = None
    skipped: str | None = None
    steps: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.skipped:
            return f"deploy: not refitted ({self.skipped})"
        d = self.decision
        lines = [f"deploy: {d['deployed']['name']} = {d['candidate']} refitted on every chunk -> {d['deployed']['path']}"]
        for name, f in d["figures"].items():
            ci = f.get("vs_base")
            lines.append(f"  {name}: {d['metric'].upper()} {f['value']:.4f}"
                         + (f" ({ci['ratio']:.3f}x base, 95% CI {ci['ratio_lo']:.3f}-{ci['ratio_hi']:.3f})" if ci else "")
                         + f" - {f['measures']}")
        return "\n".join(lines + [f"report: {self.report}"])


def candidate_of(results: dict, options: DeployOptions, files: DeployFiles) -> tuple[str, float | None] | str:
    """(the held-out candidate's row name, its merge weight or None for the fine-tuned model alone), or why there is
    nothing to refit."""
    name = (results.get("recommendation") or {}).get("recommended") if options.candidate == "recommended" \
        else options.candidate
    if name not in (results.get("models") or {}):
        return f"no row {name!r} in {files.results}" if options.candidate != "recommended" else \
            "the held-out report recommends no model"
    spec = results["models"][name]["spec"]
    path = Path(spec.split(":", 1)[1]).resolve() if spec.startswith("local:") else None
    if path is not None and path == files.finetuned.resolve():
        return name, None
    if name in files.merged and path is not None:
        return name, files.merged[name]
    return f"the pick is {name} ({spec}): only the kit's own fine-tuned or merged models are refitted"


def run(files: DeployFiles, options: DeployOptions, sections: dict, *, real_eval: bool, progress: bool = True,
        echo=None) -> DeployResult:
    """``sections``: the run's split, mine, train, merge and bench options (the recipe being refitted), and how a
    corpus is encoded and searched (``scale``: the `encode:` and `search:` sections; ``encode``: the `encode:`
    section or None, see kit.encode.options.layer_options)."""
    from ..bench.stage import bench

    echo = echo or (lambda m: None)
    out = Path(files.out)
    if not options.wanted(real_eval):
        why = "deploy.fit_all is off" if options.fit_all == "off" else \
            "the eval questions are generated (fit_all auto refits only with real eval questions)"
        return _skip(out, why)
    results = read_json(files.results)
    picked = candidate_of(results, options, files)
    if isinstance(picked, str):
        return _skip(out, picked)
    name, weight = picked
    steps: list[str] = []
    deployed, leak = fit(files, sections, weight, out, steps, progress, echo)
    labels = {"base": "the base model, untouched",
              f"{name} ({HELD_OUT})": "the recipe on passages it never trained on (the held-out split that chose it)",
              DEPLOYED: "the model to deploy: same recipe and weight, trained on every chunk; the real questions never "
                        "trained it, their gold passages did (with generated questions)",
              "bm25": "lexical baseline"}
    models = {"base": f"local:{files.model}", f"{name} ({HELD_OUT})": results["models"][name]["spec"],
              DEPLOYED: f"local:{deployed}", "bm25": "bm25"}
    bench_opts = replace(sections["bench"], baseline="base", rerankers={}, progress=progress, labels=labels,
                         title="Deployed model: trained on every chunk", models={}, model_settings={})
    res = bench(str(files.eval), models, str(out / REPORT), bench_opts, encode=sections.get("encode"))
    decision = _decision(res, name, weight, deployed, labels, leak)
    write_json(out / DECISION, decision)
    return DeployResult(decision, out / REPORT / "report.html", steps=steps)


def fit(files: DeployFiles, sections: dict, weight: float | None, out: Path, steps: list, progress: bool,
        echo) -> tuple[Path, int]:
    """Split (every chunk), mine, train and merge, each skipped when its output is already there (a resumed run);
    (the deployed model's folder, eval questions among its training rows: always 0, else this raises)."""
    from ..merge import merge
    from ..mine import mine
    from ..split.stage import split_for_deployment
    from ..train import train

    data = out / DATA
    if not (data / "train.jsonl").exists():
        extra = None
        if files.log_labels is not None:   # the held-out run trained on them: so does the refit of its recipe
            from ..io import ReadReport
            from ..questionlog import training_questions

            extra = training_questions(files.log_labels, ReadReport())   # bad rows: split's step named them
        counts = split_for_deployment(files.pairs, files.corpus, data, sections["split"], extra_questions=extra,
                                      extra_source=str(files.log_labels))
        logged = f", {len(extra)} labelled log questions" if extra is not None else ""
        echo(f"[deploy] {counts['train_pairs']} pairs over all {counts['corpus_chunks']} chunks{logged} "
             f"({counts['eval_questions_dropped_from_training']} eval questions dropped from training)")
        steps.append("split")
    rows = data / "train.jsonl"
    if sections.get("mine") is not None:
        if not (data / "train_hn.jsonl").exists():
            mine(rows, data / "train_corpus.jsonl", data / "train_hn.jsonl", replace(sections["mine"], progress=progress),
                 *(sections.get("scale") or ()))
            steps.append("mine")
        rows = data / "train_hn.jsonl"
    leak = eval_questions_in_training(rows, files.eval)   # eval passages may train here; eval *questions* never
    if leak:
        raise KitError(f"{rows}: {leak} eval question(s) among the training queries; the deployed model is not trained")
    ft = out / "models" / "finetuned"
    if not (ft / "kit_model.json").exists():
        train(files.model, replace(sections["train"], data=str(rows), output_dir=str(ft),
                                   corpus=str(data / "train_corpus.jsonl") if sections["train"].passage_titles else None),
              echo=echo, result=echo)
        steps.append("train")
    if weight is None:
        return ft, leak
    merged = out / "models" / f"merged-{weight:g}"
    if not (merged / "kit_model.json").exists():
        merge(files.model, str(ft), merged, replace(sections["merge"], weights=[weight], auto=False))
        steps.append("merge")
    return merged, leak


def _decision(res: dict, name: str, weight, deployed: Path, labels: dict, leak: int) -> dict:
    from ..bench.recommend import interval, main_metric, metric_of

    metric = main_metric(res)
    rows = {**res["models"], **(res.get("hybrid") or {})}
    figures = {}
    for row, e in rows.items():
        ci = interval(rows, "base", row, metric) if row != "base" else None
        figures[row] = {"value": metric_of(e, "domain", metric), "measures": labels.get(row) or
                        (f"{e.get('model')} fused with {e.get('lexical')} ({e.get('fusion')})" if e.get("kind") == "hybrid"
                         else ""),
                        "vs_base": None if not ci else {"ratio": ci["ratio"], "ratio_lo": ci["ratio_lo"],
                                                        "ratio_hi": ci["ratio_hi"], "significant": ci["significant"]}}
    return {"candidate": name, "weight": weight, "metric": metric,
            "questions": (res.get("eval_info") or {}).get("questions"),
            "deployed": {"name": DEPLOYED, "path": str(deployed)},
            "recommended_search": res["recommendation"].get("recommended_search"),
            "eval_questions_in_training": leak,
            "figures": figures}


def _skip(out: Path, why: str) -> DeployResult:
    write_json(out / DECISION, {"skipped": why})
    return DeployResult({"skipped": why}, skipped=why)


def eval_questions_in_training(rows_path, eval_dir) -> int:
    """How many training rows ask an eval question (normalised text): must be 0 for the deployed model, whose
    training may hold the eval questions' gold passages but never the questions."""
    from ..formats import load_eval, norm_text, read_training_rows
    from ..io import ReadReport

    asked = {norm_text(q) for q in load_eval(eval_dir, passage_titles=False).query_texts}
    return sum(norm_text(r["query"]) in asked for _, r in read_training_rows(rows_path, ReadReport()))
