"""The steps of one update, as stages of :class:`kit.pipeline.Pipeline` over the update's folder: each is skipped when
its inputs and settings are unchanged, a killed one resumes (training from its checkpoints), and each reads its
settings from the config's own section (documents: prep, split and gate: update)::

    documents   prep.inputs now -> corpus.jsonl, new_corpus.jsonl, files.json, documents.json (only new files prepped)
    queries     new_corpus.jsonl -> pairs.jsonl (LLM answers already paid for come from the cache)
    split       pairs -> data/new/ (the new documents' eval set and rows) + replay -> data/train.jsonl, train_corpus
    mine        data/train.jsonl -> data/train_hn.jsonl over every current chunk training may see
    train       from the deployed version (or update.start_from) -> models/finetuned
    merge       with the model training started from -> models/merged-<w>
    bench       deployed and candidate on each frozen eval set and the new one -> report/<set>/results.json
    gate        -> promotion.json (decision and reasons)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path


from ..bench.stage import BenchOptions
from ..encode.options import layer_options, scale_options
from ..io import KitError, read_json, write_json
from ..merge import MergeOptions
from ..mine import MineOptions
from ..pipeline import Pipeline, Stage
from ..prep import PrepOptions
from ..queries import QueryOptions
from ..train import TrainOptions
from ..versions.gate import GateRule, decide
from ..versions.register import figure
from .options import UpdateOptions
from ..logs import note

NEW = "new"


@dataclass
class Context:
    """What the steps share besides their sections."""

    root: Path                    # the workdir
    dir: Path                     # this update's folder
    base: object                  # the deployed Version
    start_model: str
    config_model: str             # the config's model (tokenizer: model means this one, as when the corpus was cut)
    frozen: dict                  # eval set name -> folder
    weight: float | None          # merge weight, None: the fine-tuned model is the candidate
    split: object                 # the config's SplitOptions
    progress: bool = True

    @property
    def finetuned(self) -> Path:
        return self.dir / "models" / "finetuned"

    @property
    def candidate(self) -> Path:
        return self.finetuned if self.weight is None else self.dir / "models" / f"merged-{self.weight:g}"

    @property
    def rows(self) -> Path:
        return self.dir / "data" / "train_hn.jsonl"

    def sets(self) -> dict[str, Path]:
        return {**self.frozen, NEW: self.dir / "data" / "new" / "eval"}

    def results(self, name: str) -> Path:
        return self.dir / "report" / name / "results.json"


def echo(msg: str) -> None:
    note(msg)


def _existing(*paths) -> list[Path]:
    return [Path(x) for x in paths if x is not None and Path(x).exists()]


def _documents(c: Context):
    def run(p: Pipeline, o: PrepOptions) -> dict:
        from .documents import update_corpus

        o = replace(o, tokenizer=c.config_model if o.tokenizer == "model" else o.tokenizer, progress=c.progress)
        return update_corpus(o, c.base.material("corpus.jsonl"), c.base.material("files.json"), c.dir,
                             c.root / "updates" / "prepped", echo)

    names = ("corpus.jsonl", "new_corpus.jsonl", "files.json", "documents.json")
    return Stage("documents", PrepOptions, run, lambda p, o: [c.dir / n for n in names],
                 reads=lambda p, o: [Path(x) for x in o.inputs] + _existing(c.base.material("corpus.jsonl"),
                                                                             c.base.material("files.json")))


def _queries(c: Context):
    def run(p: Pipeline, o: QueryOptions) -> dict:
        from ..queries import gen_queries

        res = gen_queries(c.dir / "new_corpus.jsonl", c.dir / "pairs.jsonl", replace(o, progress=c.progress))
        if not (c.dir / "pairs.jsonl").exists():
            raise KitError(f"no question could be generated for the {res.chunks} new chunks (queries.generator "
                           f"{o.generator}); the deployed model stays")
        return {"pairs": res.pairs, "chunks": res.chunks, "by_generator": res.by_generator,
                "incomplete": res.incomplete, "llm": res.llm}

    return Stage("queries", QueryOptions, run, lambda p, o: [c.dir / "pairs.jsonl"],
                 reads=lambda p, o: [c.dir / "new_corpus.jsonl"])


def _split(c: Context):
    def run(p: Pipeline, o: UpdateOptions) -> dict:
        from .data import build

        return build(c.dir, c.base, list(c.frozen.values()), c.split, o, echo)

    data = c.dir / "data"
    return Stage("split", UpdateOptions, run,
                 lambda p, o: [data / "new", data / "train_corpus.jsonl", data / "pool.jsonl", data / "heldout.json",
                               data / "train.jsonl"],
                 reads=lambda p, o: [c.dir / "pairs.jsonl", c.dir / "corpus.jsonl", c.dir / "documents.json"]
                 + _existing(c.base.material("pool.jsonl"), o.questions)
                 + [f / "heldout.json" for f in c.frozen.values()])


def _mine(c: Context):
    def run(p: Pipeline, o: MineOptions) -> dict:
        from ..mine import mine
        from .data import leakage

        o = replace(o, model=o.model or c.start_model, progress=c.progress)
        res = mine(c.dir / "data" / "train.jsonl", c.dir / "data" / "train_corpus.jsonl", c.rows, o, *scale_options(p))
        leaks = leakage(c.rows, c.dir, list(c.frozen.values()))
        if any(v for k, v in leaks.items() if k != "rows"):
            raise KitError(f"{c.rows}: eval material among the training rows ({leaks}); not marked done")
        return {"rows": res.stats.get("rows_written", leaks["rows"]), "leakage": leaks}

    return Stage("mine", MineOptions, run, lambda p, o: [c.rows],
                 reads=lambda p, o: [c.dir / "data" / "train.jsonl", c.dir / "data" / "train_corpus.jsonl"]
                 + _existing(o.model or c.start_model), enabled=lambda p: p.configured("mine"))


def train_rows(p: Pipeline, c: Context) -> Path:
    return c.rows if p.configured("mine") else c.dir / "data" / "train.jsonl"


def _train(c: Context):
    def run(p: Pipeline, o: TrainOptions) -> dict:
        from ..train import train

        o = replace(o, data=str(train_rows(p, c)), output_dir=str(c.finetuned),
                    corpus=str(c.dir / "data" / "train_corpus.jsonl") if o.passage_titles else None)
        return {"model": str(train(c.start_model, o, echo=echo, result=echo))}

    return Stage("train", TrainOptions, run, lambda p, o: [c.finetuned],
                 reads=lambda p, o: [train_rows(p, c)] + _existing(c.start_model, o.deepspeed))


def _merge(c: Context):
    def run(p: Pipeline, o: MergeOptions) -> dict:
        from ..merge import merge

        return {"merged": [str(x) for x in merge(c.start_model, str(c.finetuned), c.candidate,
                                                  replace(o, weights=[c.weight], auto=False))]}

    return Stage("merge", MergeOptions, run, lambda p, o: [c.candidate],
                 reads=lambda p, o: [c.finetuned] + _existing(c.start_model), enabled=lambda p: c.weight is not None)


def _bench(c: Context):
    def run(p: Pipeline, o: BenchOptions) -> dict:
        from ..bench.stage import bench

        o = replace(o, k=sorted({*o.k, 10}), baseline="deployed", models={}, model_settings={}, rerankers={},
                    hybrid=[], general=None, latency_samples=0, max_queries=None, progress=c.progress, labels={},
                    title="Update: the candidate beside the deployed model")
        models = {"deployed": f"local:{c.base.model}", "candidate": f"local:{c.candidate}"}
        out = {}
        for name, folder in c.sets().items():
            res = bench(str(folder), models, str(c.results(name).parent), o, encode=layer_options(p))
            out[name] = {m: e["domain"]["metrics"].get("mrr@10") for m, e in res["models"].items()}
        return out

    return Stage("bench", BenchOptions, run, lambda p, o: [c.results(n) for n in c.sets()],
                 reads=lambda p, o: [c.candidate, c.base.model] + list(c.sets().values()))


def per_question(c: Context, metric: str) -> dict[str, dict[str, list[float]]]:
    """{set: {deployed: [...], candidate: [...]}} in the bench's question order (the same for both models)."""
    out = {}
    for name in c.sets():
        models = read_json(c.results(name))["models"]
        out[name] = {m: models[m]["domain"]["per_query"][metric] for m in ("deployed", "candidate")}
    return out


def _gate(c: Context):
    def run(p: Pipeline, o: UpdateOptions) -> dict:
        figures = per_question(c, o.metric)
        frozen = [figures[n] for n in c.frozen]
        verdict = decide(figures[NEW]["deployed"], figures[NEW]["candidate"],
                         [x for f in frozen for x in f["deployed"]], [x for f in frozen for x in f["candidate"]],
                         GateRule(o.level, o.resamples, o.seed, o.min_gain, o.max_loss), o.metric)
        record = {"update": c.dir.name, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "candidate": {"path": str(c.candidate), "start_model": c.start_model,
                                "kind": "fine-tuned" if c.weight is None else f"merged-{c.weight:g}"},
                  "deployed": {"version": c.base.name, "path": str(c.base.model)},
                  **verdict, "frozen_sets": list(c.frozen),
                  "sets": {n: {m: figure(v, o.level) for m, v in f.items()} for n, f in figures.items()}}
        write_json(c.dir / "promotion.json", record)
        return {"decision": verdict["decision"], "reasons": verdict["reasons"]}

    return Stage("gate", UpdateOptions, run, lambda p, o: [c.dir / "promotion.json"],
                 reads=lambda p, o: [c.results(n) for n in c.sets()])


def update_stages(c: Context) -> list[Stage]:
    return [f(c) for f in (_documents, _queries, _split, _mine, _train, _merge, _bench, _gate)]
