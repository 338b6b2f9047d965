"""`kit run`'s deploy step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from ..logs import note
from ..pipeline import Pipeline, Stage, existing, model_reads, summary_of
from .options import DeployOptions
from .stage import DeployFiles
from ..mine.step import mine_options
from ..encode.options import layer_options, scale_options


def deploy_files(p: Pipeline) -> DeployFiles:
    m = p.options["merge"]
    merged = {} if not p.configured("merge") or m.auto else {f"merged-{w:g}": w for w in m.weights}
    return DeployFiles(model=p.model, pairs=p.wd.pairs, corpus=p.wd.corpus, eval=p.wd.eval,
                       results=p.wd.report / "results.json", merged=merged, finetuned=p.wd.finetuned,
                       out=p.wd.root / "deploy", log_labels=p.wd.log_labels if p.configured("logs") else None)


def _run_deploy(p: Pipeline, o: DeployOptions) -> dict:
    from ..deploy import run

    sections = {"split": p.options["split"], "train": p.options["train"], "merge": p.options["merge"],
                "mine": mine_options(p, p.options["mine"]) if p.configured("mine") else None,
                "bench": p.options["bench"], "scale": scale_options(p), "encode": layer_options(p)}
    result = run(deploy_files(p), o, sections, real_eval=bool(p.options["split"].eval_queries),
                 echo=note)
    note(result.summary())
    return summary_of(result)


STEP = (Stage("deploy", DeployOptions, _run_deploy, lambda p, o: [p.wd.root / "deploy"],
               reads=lambda p, o: [p.wd.report / "results.json", p.wd.pairs, p.wd.corpus, p.wd.eval] + model_reads(p)
               + existing(p.options["split"].train_queries)
               + ([p.wd.log_labels] if p.configured("logs") else []),   # a corrected label re-fits the deployed model
               enabled=lambda p: p.configured("train") and "bench" in p.cfg,
               help="the report's pick refitted on every chunk -> deploy/"))
