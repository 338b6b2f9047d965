"""`kit run`'s index step: the stage's files taken from the workdir, its summary for the manifest (registered in
kit/stages.py's ordered list)."""
from __future__ import annotations

from ..logs import note
from ..pipeline import Pipeline, Stage, existing


def _run_index(p: Pipeline, o) -> dict:
    from ..encode.options import layer_options
    from ..index import run
    from ..index.workdir import pipeline_files, pipeline_options

    result = run(pipeline_files(p), pipeline_options(p, o), progress=o.progress, encode=layer_options(p))
    note(result.summary())
    return result.record()


def _index_stage() -> Stage:
    from ..index.options import IndexOptions
    from ..index.workdir import model_reads

    return Stage("index", IndexOptions, _run_index, lambda p, o: [p.wd.root / "index" / "index.json"],
                 reads=lambda p, o: [p.wd.corpus] + existing(p.wd.eval) + model_reads(p),
                 enabled=lambda p: p.configured("index"),
                 help="corpus + deployed model -> vector store, alias switched once verified")


STEP = _index_stage()
