"""`kit run`'s runner: stages in order from one YAML, each skipped when already done, one run per workdir.

Work-directory layout (everything a run makes lives under ``workdir``)::

    corpus.jsonl               prep         chunks of every document
    pairs.jsonl                queries      (query, positive chunk) pairs
    data/train.jsonl           split        FlagEmbedding training rows (train documents only)
    data/train_corpus.jsonl    split        the chunks training may see (mining draws negatives from these)
    data/eval/                 split        FlagEmbedding custom-eval layout (held-out questions)
    data/log_labels.jsonl      logs         judged log questions (kit/questionlog/): edit `label` to correct them
    data/log_report.json, .md  logs         where the model is weak: worst topics, questions nothing answers
    data/train_hn.jsonl        mine         training rows with hard negatives
    models/finetuned/          train        the fine-tuned model (+ checkpoints while training)
    models/merged-<w>/         merge        LM_Cocktail merges with the base model
    adapters/<provider>/       adapter      linear query adapters
    report/                    bench        results.json, report.md, report.html
    manifests/<stage>.json     every stage  fingerprint of inputs + settings, outputs, summary, timings
    logs/<stage>.log           every stage  its whole output, one section per run: the kit's lines, other
                                            libraries' INFO lines, the trainer's (argument dump, model config);
                                            stderr shows those only with -v
    .kit.lock                  the run      who holds the workdir (pid, start time)

The runner knows the stages only through the list it is given (:mod:`kit.stages` registers them). A stage is
skipped when its manifest holds the same fingerprint and its outputs exist. The fingerprint covers the
stage's own settings, the model, and the *content* of every file it reads (upstream outputs, PDFs, model
weights), so any change upstream -- a re-run that wrote something else, an edited file, a deleted manifest --
re-runs everything downstream, and a re-run that wrote the same bytes does not. A stage killed half-way, or
one that reports work left undone (``incomplete`` in its summary: e.g. LLM calls that failed), gets no
manifest and runs again next time; what it had already paid for survives in the caches (LLM answers,
embeddings) and in training checkpoints.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


from .config import path_resolver, resolve_model
from .io import KitError, read_json, stable_hash, write_json
from .lock import WorkdirLock
from .logs import note, stage_log
from .options import OptionError, from_section, suggestion, to_section
from .secrets import redact_obj

TOP_LEVEL = {"workdir": "Folder of the run (relative to the config file).",
             "model": "Base model: hub id or local folder (relative to the config file).",
             "allow_partial": "Share of a stage's work items (e.g. LLM calls) that may fail while the stage still "
                              "counts as done (default 0: any failure leaves it to be retried).",
             # read by `kit drift CONFIG` (kit/drift/options.py), not a stage of `kit run`
             "drift": "Settings of kit drift (kit/drift/options.py): thresholds, samples, permutations.",
             # read by every stage that encodes a corpus (kit/encode/options.py) and that searches one (kit/search.py)
             "encode": "How corpora are encoded (kit/encode/options.py): engine local|torchrun|ray, workers, "
                       "shard_size, shard_dir, torchrun nodes, ray_address.",
             "search": "Index past exact_max (kit/search.py): ann, ef_search, nlist, nprobe, recall_sample, gpu.",
             # read by `kit update CONFIG` (kit/update/options.py)
             "update": "Settings of kit update (kit/update/options.py): replay share, the promotion gate, the start "
                       "model."}

# What a stage's section needs to turn it on, shown when a later stage needs its output and the section is missing.
SECTION_EXAMPLES = {"queries": "generator: [ict, keywords]"}


def _echo(msg: str) -> None:
    """A progress line of the runner: stderr, and the running stage's log."""
    note(msg)


@dataclass
class Workdir:
    root: Path

    @property
    def corpus(self) -> Path: return self.root / "corpus.jsonl"
    @property
    def pairs(self) -> Path: return self.root / "pairs.jsonl"
    @property
    def data(self) -> Path: return self.root / "data"
    @property
    def train(self) -> Path: return self.data / "train.jsonl"
    @property
    def eval(self) -> Path: return self.data / "eval"
    @property
    def train_hn(self) -> Path: return self.data / "train_hn.jsonl"
    @property
    def train_corpus(self) -> Path: return self.data / "train_corpus.jsonl"
    # the logs stage (kit/questionlog/): judged log questions, which split reads, and the weak-spot report
    @property
    def log_labels(self) -> Path: return self.data / "log_labels.jsonl"
    @property
    def log_report(self) -> Path: return self.data / "log_report.json"
    @property
    def finetuned(self) -> Path: return self.root / "models" / "finetuned"
    def merged(self, w: float) -> Path: return self.root / "models" / f"merged-{w:g}"
    @property
    def merged_auto(self) -> Path: return self.root / "models" / "merged-auto"
    @property
    def adapters(self) -> Path: return self.root / "adapters"
    @property
    def report(self) -> Path: return self.root / "report"
    def manifest(self, stage: str) -> Path: return self.root / "manifests" / f"{stage}.json"
    def started(self, stage: str) -> Path: return self.root / "manifests" / f"{stage}.started.json"
    def log(self, stage: str) -> Path: return self.root / "logs" / f"{stage}.log"


def path_fingerprint(p: Path) -> str:
    """Content fingerprint of a file, a folder of files, or a model (hub ids hash by name)."""
    from .embed import weights_fingerprint
    from .io import file_hash

    p = Path(p)
    if p.is_file():
        return file_hash(p)
    if p.is_dir():
        if (p / "config.json").exists():
            return weights_fingerprint(p)
        return stable_hash(sorted((str(f.relative_to(p)), file_hash(f)) for f in p.rglob("*")
                                  if f.is_file() and not f.name.startswith(".")))
    return f"name:{p}"


@dataclass
class Stage:
    """One step of `kit run`: its YAML section (an options dataclass), what it reads and writes, how it runs."""

    name: str
    options: type                                           # the section's dataclass
    run: Callable[["Pipeline", Any], dict]                  # (pipeline, options) -> summary
    outputs: Callable[["Pipeline", Any], list[Path]]
    reads: Callable[["Pipeline", Any], list[Path]] = lambda p, o: []
    enabled: Callable[["Pipeline"], bool] = lambda p: True
    help: str = ""


@dataclass
class Pipeline:
    cfg: dict
    config_path: Path
    stages: list[Stage]
    wd: Workdir = field(init=False)
    model: str = field(init=False)
    options: dict[str, Any] = field(init=False)

    def __post_init__(self):
        self._check_top_level()
        self.wd = Workdir(self.resolve_path(self.cfg.get("workdir", "runs/default")))
        model = self.cfg.get("model")
        if not model:
            raise KitError(f"{self.config_path}: `model:` is required (a hub id or a local folder)")
        self.model = resolve_model(self.config_path, model)
        self.allow_partial = float(self.cfg.get("allow_partial") or 0.0)
        self.options = self._parse_sections()

    def _check_top_level(self) -> None:
        known = list(TOP_LEVEL) + [s.name for s in self.stages]
        unknown = [k for k in self.cfg if k not in known]
        if unknown:
            raise OptionError([f"{self.config_path}: {k}: unknown section{suggestion(str(k), known)}"
                               for k in unknown])

    def _parse_sections(self) -> dict[str, Any]:
        """Every section validated before anything runs: all problems at once, unknown keys first."""
        out, problems = {}, []
        for stage in self.stages:
            try:
                out[stage.name] = from_section(stage.options, self.cfg.get(stage.name),
                                               f"{self.config_path}: stage {stage.name}: {stage.name}",
                                               resolve_path=self.resolve_path)
            except OptionError as e:
                problems += e.problems
        if problems:
            raise OptionError(problems)
        return out

    def resolve_path(self, p) -> Path:
        """A config path as every command reads it (:func:`kit.config.path_resolver`)."""
        return path_resolver(self.config_path)(p)

    def configured(self, name: str) -> bool:
        return isinstance(self.cfg.get(name), dict) and bool(self.cfg[name])

    # --- running -------------------------------------------------------------------------------------
    def fingerprint(self, stage: Stage, opts) -> tuple[str, dict]:
        reads = {str(p): path_fingerprint(p) for p in stage.reads(self, opts)}
        # Settings as stored: credentials in an endpoint URL are redacted first, so a changed key re-runs nothing.
        fp = stable_hash({"stage": stage.name, "settings": redact_obj(to_section(opts)), "model": self.model,
                          "reads": reads})
        return fp, reads

    def run(self, from_stage: str | None = None, force: bool = False, until: str | None = None) -> dict:
        names = [s.name for s in self.stages]
        for flag, value in (("--from", from_stage), ("--until", until)):
            if value and value not in names:
                raise KitError(f"{flag} {value}: unknown stage; stages are {', '.join(names)}")
        self.check_inputs_reachable(until)   # before anything runs (or the workdir is created)
        self.wd.root.mkdir(parents=True, exist_ok=True)
        summaries: dict[str, Any] = {}
        t_run = time.perf_counter()
        with WorkdirLock(self.wd.root / ".kit.lock", echo=_echo):
            forcing = force
            for stage in self.stages:
                forcing = forcing or from_stage == stage.name
                summaries[stage.name] = self._run_stage(stage, forcing)
                if until == stage.name:
                    break
        summaries["_seconds"] = round(time.perf_counter() - t_run, 1)
        return summaries

    def check_inputs_reachable(self, until: str | None = None) -> None:
        """Refuse, in one line and before anything runs, a run in which a stage would read a file that is not there
        and that only a stage the config leaves out writes (no `queries:` section, no pairs.jsonl: split could
        only fail, after the stages before it ran)."""
        stages = [s for s in self.stages if s.enabled(self)]
        if until is not None:
            names = [s.name for s in self.stages]
            stages = [s for s in stages if names.index(s.name) <= names.index(until)]
        made: dict[Path, str] = {}        # output -> the stage that writes it (enabled ones win)
        for stage in sorted(self.stages, key=lambda s: s.enabled(self)):
            try:
                for o in stage.outputs(self, self.options[stage.name]):
                    made[Path(o)] = stage.name
            except Exception:  # noqa: BLE001 - a stage that cannot tell its outputs here fails when it runs
                continue
        enabled = {s.name for s in stages}
        for stage in stages:
            try:
                reads = [Path(r) for r in stage.reads(self, self.options[stage.name])]
            except Exception:  # noqa: BLE001 - as above: its own run reports it
                continue
            for r in reads:
                producer = made.get(r)
                if producer is None or producer in enabled or r.exists():
                    continue
                example = SECTION_EXAMPLES.get(producer)
                add = f"e.g. `{producer}: {{{example}}}`" if example else "with its settings"
                raise KitError(f"{self.config_path}: stage {stage.name} needs {r}, which the {producer} stage writes, "
                               f"but the config has no `{producer}:` section; add one ({add}), or put {r.name} "
                               f"in {r.parent}")

    def _run_stage(self, stage: Stage, forcing: bool) -> dict:
        if not stage.enabled(self):
            _echo(f"[{stage.name}] not configured, skipped")
            return {}
        opts = self.options[stage.name]
        fp, reads = self.fingerprint(stage, opts)
        manifest_path = self.wd.manifest(stage.name)
        manifest = read_json(manifest_path) if manifest_path.exists() else None
        outputs = stage.outputs(self, opts)
        if (not forcing and manifest is not None and manifest.get("fingerprint") == fp
                and all(Path(o).exists() for o in outputs)):
            _echo(f"[{stage.name}] up to date, skipped (delete {manifest_path} or use --from {stage.name} to redo)")
            return manifest.get("summary", {})
        with stage_log(self.wd.log(stage.name), f"kit run: stage {stage.name}"):
            self._prepare_outputs(stage, fp, outputs, forcing)
            write_json(self.wd.started(stage.name), {"fingerprint": fp, "started": time.time()})
            _echo(f"[{stage.name}] running")
            t0 = time.perf_counter()
            try:
                summary = stage.run(self, opts) or {}
            except KitError as e:
                raise KitError(f"stage {stage.name}: {e}") from None
            seconds = round(time.perf_counter() - t0, 1)
            missing = [str(o) for o in outputs if not Path(o).exists()]
            if missing:
                raise KitError(f"stage {stage.name}: finished but did not write {', '.join(missing)}")
            self._check_complete(stage, summary)
            write_json(manifest_path, redact_obj({
                "stage": stage.name, "fingerprint": fp, "settings": to_section(opts), "model": self.model,
                "reads": reads, "outputs": [str(o) for o in outputs], "summary": summary, "seconds": seconds,
                "finished": time.time()}))
            self.wd.started(stage.name).unlink(missing_ok=True)
            _echo(f"[{stage.name}] done in {seconds:.1f}s")
        return summary

    def _check_complete(self, stage: Stage, summary: dict) -> None:
        """Work left undone (``incomplete``: {failed, total, what}) above ``allow_partial`` leaves the stage
        without a manifest, so the next run retries exactly what failed (the rest comes from the caches)."""
        inc = summary.get("incomplete") if isinstance(summary, dict) else None
        if not inc or not inc.get("failed"):
            return
        share = inc["failed"] / max(1, inc.get("total") or inc["failed"])
        if share > self.allow_partial:
            raise PartialFailure(
                f"stage {stage.name}: {inc['failed']} of {inc.get('total', '?')} {inc.get('what', 'items')} failed "
                f"({share:.1%} > allow_partial {self.allow_partial:g}); not marked done. Run again to retry only "
                f"those (finished work is cached), or set allow_partial in the config to accept them.")
        _echo(f"[{stage.name}] {inc['failed']} of {inc.get('total', '?')} {inc.get('what', 'items')} failed "
              f"({share:.1%} <= allow_partial {self.allow_partial:g}): accepted")

    def _prepare_outputs(self, stage: Stage, fp: str, outputs: list[Path], forcing: bool) -> None:
        """Resume a stage that was killed with the same fingerprint (keep its partial outputs, e.g.
        training checkpoints); otherwise clear stale outputs so old results cannot leak into new ones."""
        started = self.wd.started(stage.name)
        same_attempt = started.exists() and read_json(started).get("fingerprint") == fp
        if same_attempt and not forcing:
            _echo(f"[{stage.name}] resuming an interrupted run")
            return
        for o in outputs:
            o = Path(o)
            if o.is_dir():
                shutil.rmtree(o)
            elif o.exists():
                o.unlink()
        self.wd.manifest(stage.name).unlink(missing_ok=True)


class PartialFailure(KitError):
    """A stage finished with some of its work failed (exit status 1: run again to retry what failed)."""


# --- helpers of the stages' steps (kit/<stage>/step.py) ---------------------------------------------------------
def summary_of(result) -> dict:
    """A JSON-able summary of a stage result (dataclass or dict), without bulky lists: what the manifest keeps."""
    from dataclasses import asdict, is_dataclass

    d = asdict(result) if is_dataclass(result) else dict(result or {})
    out = {}
    for k, v in d.items():
        if isinstance(v, Path):
            v = str(v)
        if isinstance(v, list) and len(v) > 20:
            v = v[:20] + [f"... {len(v) - 20} more"]
        out[k] = v
    return out


def model_reads(p: Pipeline) -> list[Path]:
    """The base model's folder among a step's reads (a hub id is fingerprinted by name)."""
    path = Path(p.model)
    return [path] if path.exists() else []


def existing(*paths) -> list[Path]:
    return [Path(x) for x in paths if x and Path(x).exists()]
