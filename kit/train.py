"""Fine-tune an embedding model with FlagEmbedding under torchrun.

The kit does not reimplement training: it builds the ``torchrun -m FlagEmbedding...`` command with the
flags the model family needs (from :mod:`kit.registry`), checks the data first, streams the trainer's
output, resumes from the last checkpoint, and afterwards makes the output folder load directly in
sentence-transformers and FlagEmbedding with the right pooling and prompts.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .io import KitError, ReadReport, file_hash, iter_jsonl, write_json, write_jsonl
from .registry import ModelSpec, resolve, write_kit_model

MANIFEST_FILE = "kit_manifest.json"
HEAD_FILES = ("colbert_linear.pt", "sparse_linear.pt")
# transformers 5 rejects these; warmup_ratio is translated into warmup_steps.
REJECTED_ARGS = {"overwrite_output_dir"}
# Options that live on TrainOptions itself; if a user puts them under `args:` they are moved there.
_LIFTED_ARGS = ("fp16", "bf16", "deepspeed")


@dataclass
class TrainOptions:
    """The ``train:`` section of a pipeline YAML; field names equal its keys."""

    data: str | None = None                 # train_hn.jsonl (FlagEmbedding format: query, pos, neg)
    output_dir: str | None = None
    nproc: str | int = "auto"               # processes per node; auto = number of GPUs (1 on CPU)
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    deepspeed: str | None = None            # DeepSpeed JSON; used only where CUDA exists
    fp16: bool = False                      # used only where CUDA exists
    bf16: bool = False                      # on CPU only when asked for
    args: dict = field(default_factory=dict)  # FlagEmbedding / HF TrainingArguments, passed through

    @classmethod
    def from_dict(cls, d: dict | None, source: str = "train") -> TrainOptions:
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KitError(f"{source}: unknown train option(s) {', '.join(unknown)}; "
                           f"put trainer arguments under `args:` (known: {', '.join(sorted(known))})")
        return cls(**d)


# ---------------------------------------------------------------------------------------------- data

@dataclass
class DataReport:
    path: str                     # the file FlagEmbedding will read (original or the clean copy)
    source: str                   # the file the user gave
    rows: int                     # rows that will be trained on
    dropped: int                  # rows dropped (invalid or too few negatives)
    train_group_size: int         # possibly lowered
    requested_group_size: int
    errors: ReadReport
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"training data {self.source}: {self.rows} rows usable, {self.dropped} dropped, "
                 f"train_group_size {self.train_group_size}"]
        lines += self.notes
        if self.errors:
            lines.append(self.errors.summary())
        return "\n".join(lines)


def _check_row(row: dict) -> str | None:
    q = row.get("query")
    if not isinstance(q, str) or not q.strip():
        return "missing or empty 'query'"
    pos = row.get("pos")
    if not isinstance(pos, list) or not pos:
        return "needs at least one positive in 'pos' (a non-empty list)"
    if not all(isinstance(p, str) and p.strip() for p in pos):
        return "'pos' must hold non-empty strings"
    neg = row.get("neg", [])
    if not isinstance(neg, list) or not all(isinstance(n, str) for n in neg):
        return "'neg' must be a list of strings"
    return None


def validate_training_data(path, train_group_size: int, clean_path=None, min_keep: float = 0.9) -> DataReport:
    """Check every row; lower train_group_size or drop rows so that every row has group-1 negatives.

    FlagEmbedding samples ``train_group_size - 1`` negatives per query and silently repeats them when a row
    has fewer (and crashes on none), so the fix happens here, visibly: keep the largest group size that at
    least ``min_keep`` of the rows support, drop the rest. If anything changed, a clean copy is written to
    ``clean_path`` and :attr:`DataReport.path` points to it.
    """
    path = Path(path)
    report = ReadReport()
    rows = [r for _, r in iter_jsonl(path, report, _check_row)]
    invalid = len(report.errors)
    if not rows:
        raise KitError(f"{path}: no usable training rows" + (f"\n{report.summary()}" if report else ""))
    notes: list[str] = []
    negs = sorted(len(r.get("neg") or []) for r in rows)
    group = int(train_group_size)
    if group < 1:
        raise KitError(f"train_group_size must be >= 1, got {group}")
    need = group - 1
    supported = sum(1 for n in negs if n >= need)
    if supported < len(rows):
        if supported < min_keep * len(rows):
            # The largest group size that min_keep of the rows support (index into the sorted counts).
            k = negs[int(math.floor((1 - min_keep) * len(negs)))]
            new_group = max(1, min(group, k + 1))
            notes.append(f"lowered train_group_size from {group} to {new_group}: only {supported}/{len(rows)} "
                         f"rows have {need} negatives (mine more negatives to keep {group})")
            group, need = new_group, new_group - 1
        kept = [r for r in rows if len(r.get("neg") or []) >= need]
        if len(kept) < len(rows):
            notes.append(f"dropped {len(rows) - len(kept)} row(s) with fewer than {need} negatives")
        rows_out = kept
    else:
        rows_out = rows
    if need == 0:
        # FlagEmbedding asserts that every row has a 'neg' list, even when it samples none from it.
        for r in rows_out:
            r.setdefault("neg", [])
    dropped = invalid + (len(rows) - len(rows_out))
    used = path
    if dropped or any("neg" not in r for r in rows_out):
        if clean_path is None:
            raise KitError(f"{path}: rows had to be fixed but no place for a clean copy was given")
        clean_rows = [{**r, "neg": r.get("neg") or []} for r in rows_out]
        write_jsonl(clean_path, clean_rows)
        used = Path(clean_path)
        notes.append(f"wrote a clean copy for FlagEmbedding: {used}")
    return DataReport(path=str(used), source=str(path), rows=len(rows_out), dropped=dropped,
                      train_group_size=group, requested_group_size=int(train_group_size),
                      errors=report, notes=notes)


# ------------------------------------------------------------------------------------------- command

def cuda_available() -> bool:
    # Importing torch costs seconds; a machine without NVIDIA device nodes or driver has no CUDA anyway.
    if not (Path("/proc/driver/nvidia").exists() or list(Path("/dev").glob("nvidia*"))
            or shutil.which("nvidia-smi")):
        return False
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no torch means no CUDA
        return False


def _flag_value(v) -> list[str]:
    if isinstance(v, bool):
        return [str(v)]
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    return [str(v)]


def torchrun_executable() -> str:
    exe = Path(sys.executable).parent / "torchrun"
    return str(exe) if exe.exists() else "torchrun"


def latest_checkpoint(output_dir) -> Path | None:
    out = Path(output_dir)
    if not out.is_dir():
        return None
    found = []
    for d in out.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", d.name)
        if m and d.is_dir() and (d / "trainer_state.json").exists():
            found.append((int(m.group(1)), d))
    return max(found)[1] if found else None


def _steps_per_epoch(rows: int, batch: int, world: int, accum: int) -> int:
    return max(1, math.ceil(math.ceil(rows / max(1, batch * world)) / max(1, accum)))


def build_command(spec: ModelSpec, options: TrainOptions, data_path: str | None = None,
                  resume_from: str | None = None, cuda: bool | None = None,
                  data_rows: int | None = None, notes: list[str] | None = None) -> list[str]:
    """The exact ``torchrun ... -m FlagEmbedding...`` command line for ``spec`` and ``options``."""
    notes = notes if notes is not None else []
    cuda = cuda_available() if cuda is None else cuda
    args = dict(options.args or {})
    fp16 = bool(args.pop("fp16", options.fp16))
    bf16 = bool(args.pop("bf16", options.bf16))
    deepspeed = args.pop("deepspeed", options.deepspeed)
    for bad in REJECTED_ARGS & set(args):
        args.pop(bad)
        notes.append(f"dropped --{bad}: transformers 5 rejects it (kit resumes from checkpoints instead)")
    for k in ("model_name_or_path", "train_data", "output_dir", "resume_from_checkpoint"):
        if k in args:
            raise KitError(f"train.args.{k}: set it with the kit's own option, not under args")

    if options.nproc in (None, "auto"):
        nproc = 1
        if cuda:
            import torch
            nproc = max(1, torch.cuda.device_count())
    else:
        nproc = int(options.nproc)
    world = nproc * int(options.nnodes or 1)

    if world == 1 and args.get("negatives_cross_device"):
        # Nothing to share negatives with; skip the all-gather FlagEmbedding would set up for it.
        args.pop("negatives_cross_device")
        notes.append("dropped --negatives_cross_device: a single process has no other devices")

    if "warmup_ratio" in args:
        ratio = float(args.pop("warmup_ratio"))
        max_steps = int(args.get("max_steps", -1) or -1)
        if max_steps > 0:
            total = max_steps
        elif data_rows:
            per_epoch = _steps_per_epoch(data_rows, int(args.get("per_device_train_batch_size", 8)), world,
                                         int(args.get("gradient_accumulation_steps", 1)))
            total = math.ceil(per_epoch * float(args.get("num_train_epochs", 3)))
        else:
            total = 0
        args["warmup_steps"] = int(round(ratio * total))
        notes.append(f"warmup_ratio {ratio} -> --warmup_steps {args['warmup_steps']} "
                     f"(transformers 5 rejects --warmup_ratio)")

    cmd = [torchrun_executable(), "--nproc_per_node", str(nproc)]
    if int(options.nnodes or 1) > 1 or options.master_addr:
        cmd += ["--nnodes", str(options.nnodes or 1), "--node_rank", str(options.node_rank or 0)]
        if options.master_addr:
            cmd += ["--master_addr", str(options.master_addr)]
        cmd += ["--master_port", str(options.master_port or 29500)]
    elif options.master_port:
        cmd += ["--master_port", str(options.master_port)]
    cmd += ["-m", spec.finetune_module,
            "--model_name_or_path", spec.name_or_path,
            "--train_data", str(data_path or options.data),
            "--output_dir", str(options.output_dir)]
    cmd += spec.training_flags()

    if cuda:
        if fp16:
            cmd += ["--fp16", "True"]
        if bf16:
            cmd += ["--bf16", "True"]
        if deepspeed:
            cmd += ["--deepspeed", str(deepspeed)]
    else:
        dropped = [n for n, on in (("fp16", fp16), ("DeepSpeed", bool(deepspeed))) if on]
        if dropped:
            notes.append(f"no CUDA: training on CPU without {' and '.join(dropped)}")
        cmd += ["--use_cpu", "True"]
        if bf16:
            cmd += ["--bf16", "True"]
    if "report_to" not in args:
        args["report_to"] = "none"     # no wandb/tensorboard surprises; the kit streams the log itself
    for k, v in args.items():
        if v is None:
            continue
        cmd += [f"--{k}", *_flag_value(v)]
    if resume_from:
        cmd += ["--resume_from_checkpoint", str(resume_from)]
    return cmd


def format_command(cmd: list[str]) -> str:
    import shlex
    return " ".join(shlex.quote(c) for c in cmd)


# -------------------------------------------------------------------------------------------- resume

def make_resume_view(checkpoint: Path, family: str) -> Path:
    """A copy of ``checkpoint`` that transformers 5's Trainer can resume from.

    FlagEmbedding saves checkpoints with the inner encoder's ``save_pretrained`` (keys without the
    wrapper's ``model.`` prefix). transformers 5's ``Trainer._load_from_checkpoint`` loads them into the
    wrapper with strict=False, so every key is "missing", and then crashes reading the wrapper's
    ``_keys_to_ignore_on_save`` (AttributeError). Rather than patch site-packages, the kit writes a resume
    view whose weights carry the wrapper's key names (optimizer, scheduler, RNG and trainer state are
    linked unchanged), so resuming restores the weights AND the step, optimizer and schedule.
    """
    import safetensors.torch
    import torch

    view = checkpoint.parent / ".kit_resume" / checkpoint.name
    if view.exists():
        shutil.rmtree(view)
    view.mkdir(parents=True)
    weight_files = {"model.safetensors", "pytorch_model.bin", *HEAD_FILES}
    for f in checkpoint.iterdir():
        if f.name not in weight_files:
            (view / f.name).symlink_to(f.resolve())
    if (checkpoint / "model.safetensors").exists():
        inner = safetensors.torch.load_file(str(checkpoint / "model.safetensors"))
    elif (checkpoint / "pytorch_model.bin").exists():
        inner = torch.load(checkpoint / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise KitError(f"{checkpoint}: no model weights to resume from")
    state = {f"model.{k}": v.contiguous() for k, v in inner.items()}
    for head in HEAD_FILES:
        if (checkpoint / head).exists():
            prefix = head[: -len(".pt")]
            sd = torch.load(checkpoint / head, map_location="cpu", weights_only=True)
            state.update({f"{prefix}.{k}": v.contiguous() for k, v in sd.items()})
    safetensors.torch.save_file(state, str(view / "model.safetensors"), metadata={"format": "pt"})
    return view


# ------------------------------------------------------------------------------------------ progress

_LOSS = re.compile(r"\{'loss': '?([0-9.eE+-]+)'?.*?'learning_rate': '?([0-9.eE+-]+)'?.*?'epoch': '?([0-9.]+)'?")
_STEP = re.compile(r"(\d+)/(\d+) \[")


def run_streaming(cmd: list[str], env: dict | None = None, echo=None, logging_steps=None,
                  start_step: int = 0) -> int:
    """Run ``cmd``, passing its output through live and adding a one-line progress summary per log step.

    The trainer's loss dict carries no step number and tqdm redraws at most every 0.1 s (so its counter can
    lag the log), hence the step is counted from ``logging_steps`` when that is a whole number.
    """
    echo = echo or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    try:
        every = int(logging_steps) if logging_steps is not None and float(logging_steps) >= 1 else None
    except (TypeError, ValueError):
        every = None
    logs = 0
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    step = total = None
    buf = ""
    try:
        while True:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            text = chunk.decode("utf-8", errors="replace")
            echo(text)
            buf += text
            parts = re.split(r"[\r\n]", buf)
            buf = parts.pop()
            for part in parts:
                for m in _STEP.finditer(part):
                    step, total = int(m.group(1)), int(m.group(2))
                m = _LOSS.search(part)
                if m:
                    logs += 1
                    if every:
                        step = start_step + logs * every
                    where = f"step {step}/{total} " if total else ""
                    echo(f"\n[kit train] {where}loss {m.group(1)} lr {m.group(2)} epoch {m.group(3)}\n")
    finally:
        rc = proc.wait()
    return rc


# ---------------------------------------------------------------------------------- output finishing

def write_sentence_transformers_files(folder, spec: ModelSpec) -> None:
    """Make ``folder`` a sentence-transformers model with the spec's pooling, normalisation and prompts.

    Written by hand in the classic layout (``sentence_transformers.models.*`` module names, the
    ``pooling_mode_*`` keys, as in ../shared/models/zh-e5-small and the hub's bge models), which every
    sentence-transformers release reads. Building a SentenceTransformer to ``save()`` would import the
    library, reload the weights and write them again: seconds per run for tiny models, minutes for bge-m3.
    """
    import json as _json

    folder = Path(folder)
    cfg = _json.loads((folder / "config.json").read_text(encoding="utf-8"))
    dim = int(cfg.get("hidden_size") or cfg.get("d_model") or cfg["dim"])
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if spec.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    write_json(folder / "modules.json", modules)
    write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": spec.pooling == "cls",
        "pooling_mode_mean_tokens": spec.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": spec.pooling == "last_token",
        "include_prompt": True,
    })
    if spec.normalize:
        (folder / "2_Normalize").mkdir(exist_ok=True)
    else:
        shutil.rmtree(folder / "2_Normalize", ignore_errors=True)
    max_len = int(spec.max_length)
    mpe = cfg.get("max_position_embeddings")
    if mpe:   # XLM-R style models reserve two positions for the padding offset
        max_len = min(max_len, int(mpe) - (2 if cfg.get("model_type") in ("xlm-roberta", "roberta") else 0))
    write_json(folder / "sentence_bert_config.json", {"max_seq_length": max_len, "do_lower_case": False})
    prompts = {}
    if spec.query_instruction:
        prompts["query"] = spec.query_instruction
    if spec.passage_instruction:
        prompts["document"] = prompts["passage"] = spec.passage_instruction
    write_json(folder / "config_sentence_transformers.json", {
        "prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"})


def _local_model_dir(name_or_path: str) -> Path | None:
    if Path(name_or_path).is_dir():
        return Path(name_or_path)
    try:  # a hub id FlagEmbedding already downloaded
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(name_or_path, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached: nothing to copy from
        return None


def carry_m3_heads(base: str, output: Path) -> list[str]:
    """Copy bge-m3's sparse/ColBERT heads from the base when training did not write them."""
    missing = [h for h in HEAD_FILES if not (output / h).exists()]
    if not missing:
        return []
    base_dir = _local_model_dir(base)
    copied = []
    for h in missing:
        if base_dir is not None and (base_dir / h).exists():
            shutil.copy2(base_dir / h, output / h)
            copied.append(h)
    return copied


def finish_output(output: Path, base_spec: ModelSpec) -> ModelSpec:
    """Write kit_model.json + sentence-transformers files (and m3 heads) so the folder loads anywhere."""
    spec = replace(base_spec, name_or_path=str(output))
    if base_spec.family == "bge-m3":
        copied = carry_m3_heads(base_spec.name_or_path, output)
        if copied:
            print(f"[kit train] sparse/ColBERT heads were not trained: copied {', '.join(copied)} from the base")
    write_sentence_transformers_files(output, spec)
    write_kit_model(output, spec)
    return spec


def package_versions() -> dict:
    out = {}
    for pkg in ("torch", "transformers", "FlagEmbedding", "sentence-transformers", "LM_Cocktail", "deepspeed"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_revision() -> str | None:
    repo = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------- stage

def train(model: str, options: TrainOptions, dry_run: bool = False, echo=print) -> Path:
    """Validate the data, build and run torchrun, then finish the output folder. Returns the output dir."""
    if isinstance(options, dict):
        options = TrainOptions.from_dict(options)
    if not model:
        raise KitError("train: no model given (top-level `model:` in the config, or --model)")
    if not options.data:
        raise KitError("train: no training data given (train.data in the config, or --data)")
    if not options.output_dir:
        raise KitError("train: no output folder given (train.output_dir in the config, or --output)")
    spec = resolve(model)
    out = Path(options.output_dir)
    args = dict(options.args or {})
    group = int(args.get("train_group_size", 8))
    clean = out.parent / f"{out.name}.kit_train_data.jsonl"
    report = validate_training_data(options.data, group, clean_path=clean)
    echo(report.summary())
    if report.train_group_size != group:
        args["train_group_size"] = report.train_group_size
    options = replace(options, args=args)

    resume = latest_checkpoint(out)
    if resume is None and out.is_dir() and any(p for p in out.iterdir() if p.name != ".kit_resume"):
        raise KitError(f"{out}: folder exists, is not empty and has no checkpoint-* to resume from; "
                       f"choose another --output")
    notes: list[str] = []
    cuda = cuda_available()
    resume_arg = None
    if resume is not None:
        uses_deepspeed = cuda and bool(options.deepspeed or args.get("deepspeed"))
        # DeepSpeed checkpoints restore through DeepSpeed's own loader, which does not hit the key bug.
        resume_arg = resume if uses_deepspeed or dry_run else make_resume_view(resume, spec.family)
        echo(f"[kit train] resuming from {resume}")
    cmd = build_command(spec, options, data_path=report.path, resume_from=resume_arg, cuda=cuda,
                        data_rows=report.rows, notes=notes)
    for n in notes:
        echo(f"[kit train] note: {n}")
    echo(format_command(cmd))
    if dry_run:
        return out

    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = _now()
    start_step = int(re.sub(r"\D", "", resume.name) or 0) if resume else 0
    rc = run_streaming(cmd, env=env, logging_steps=args.get("logging_steps", 500), start_step=start_step)
    if rc != 0:
        raise KitError(f"training failed (torchrun exit status {rc}); command: {format_command(cmd)}")
    if int(options.node_rank or 0) != 0:
        return out   # the trainer saves the final model on node 0 only
    shutil.rmtree(out / ".kit_resume", ignore_errors=True)
    finish_output(out, spec)
    write_json(out / MANIFEST_FILE, {
        "command": cmd,
        "command_line": format_command(cmd),
        "base_model": model,
        "family": spec.family,
        "data": report.source,
        "data_used": report.path,
        "data_sha256": file_hash(report.source, n=64),
        "data_rows": report.rows,
        "data_dropped": report.dropped,
        "train_group_size": report.train_group_size,
        "resumed_from": str(resume) if resume else None,
        "notes": report.notes + notes,
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "git_revision": git_revision(),
        "started": started,
        "finished": _now(),
    })
    echo(f"[kit train] model written to {out}")
    return out
