"""The torchrun engine: data-parallel ranks under ``torch.distributed``, launched like training.

The driver (this process, on node 0) writes the texts once (``texts.jsonl`` in the shard folder: one JSON string a
line, with each shard's digest in ``job.json``), works out which shards are still to do, and runs::

    torchrun --standalone --nproc_per_node W -m kit.encode.worker SHARD_DIR/job.json
    torchrun --nnodes N --node_rank R --master_addr A --master_port P --nproc_per_node W -m kit.encode.worker ...

(the second form on every node: the kit prints the command for the others, e.g. for ``srun`` under SLURM; the
shard folder must be on storage all nodes see). Rank r of the world's W ranks encodes the r-th, (r+W)-th, ... shard
still to do and writes its own shard files; rank 0 gathers the ranks' counts and checks every shard is complete
(``done.json``). A rank that dies makes torchrun stop the others: the driver names the missing shards on one line
and the next run encodes only those. On CPU the ranks use gloo and split the cores between them
(``OMP_NUM_THREADS``); on GPUs nccl, one GPU per rank.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from ..device import cuda_available
from ..io import KitError, atomic_open
from ..logs import note
from ..procs import popen_tied, terminate_on_signals
from .job import EncodeJob, iter_shard_texts
from .options import EncodeOptions
from .shards import ShardDir, texts_digest


def default_workers(options: EncodeOptions) -> int:
    if options.workers:
        return int(options.workers)
    if cuda_available():
        import torch
        return max(1, torch.cuda.device_count())
    return 1


def _all_ranks_ok(done_path: Path) -> bool:
    """Whether rank 0 wrote its summary with every shard present and no rank's error."""
    try:
        return json.loads(done_path.read_text(encoding="utf-8")).get("ok") is True
    except (OSError, ValueError):
        return False


def _check_finished(rc: int, shards: ShardDir, done_path: Path, log: Path) -> None:
    """Raise when a shard is missing or a rank failed before rank 0 checked every shard."""
    missing = shards.missing()
    if rc != 0 and not missing and _all_ranks_ok(done_path):
        # A rank that crashed after every shard was written and checked (gloo's teardown has been seen to abort on
        # CPU, exit -6, in CI): the vectors are whole, so they are kept rather than encoded again.
        note(f"[kit] torchrun engine: a rank exited with {rc} after every shard was written and checked by rank 0 "
             f"({done_path.name}); the vectors are kept (log: {log})")
        rc = 0
    if rc != 0 or missing:
        done = shards.count - len(missing)
        raise KitError(f"torchrun engine: {'a rank failed (exit ' + str(rc) + ')' if rc else 'ranks exited'} and "
                       f"{len(missing)} of {shards.count} shards are not done ({', '.join(str(i) for i, _ in missing[:8])}"
                       f"{' ...' if len(missing) > 8 else ''}); {_why(log) or 'see ' + str(log)} (log: {log}); run the same "
                       f"command again: the {done} finished shards are kept and only the missing ones are encoded")


def launch_command(options: EncodeOptions, workers: int, job_path, node_rank: int | None = None) -> list[str]:
    """The torchrun command line, with the same launcher habits as training (kit/train/command.py)."""
    from ..train.command import torchrun_executable

    cmd = [torchrun_executable()]
    if int(options.nnodes) > 1 or options.master_addr:
        cmd += ["--nnodes", str(options.nnodes),
                "--node_rank", str(options.node_rank if node_rank is None else node_rank),
                "--master_addr", str(options.master_addr or "127.0.0.1"),
                "--master_port", str(options.master_port or 29500)]
    else:
        cmd += ["--standalone"]
    return cmd + ["--nproc_per_node", str(workers), "-m", "kit.encode.worker", str(job_path)]


def spool_texts(stream, path: Path, shard_size: int) -> list[str]:
    """Write the texts (one JSON string a line), atomically; return each shard's digest."""
    shas = []
    with atomic_open(path) as f:
        for _, texts in iter_shard_texts(stream(), shard_size):
            shas.append(texts_digest(texts))
            for t in texts:
                f.write(json.dumps(t, ensure_ascii=False))
                f.write("\n")
    return shas


def _why(path: Path) -> str:
    """What the log says went wrong: a rank's own error line, else torchrun's failure summary, else the last line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    ours = [x for x in lines if x.startswith("rank ") and "error:" in x]
    if ours:
        return ours[-1][:300]
    codes = re.findall(r"exitcode\s*:\s*(-?\d+)", text)
    ranks = re.findall(r"\brank\s*:\s*(\d+)", text)
    if codes:
        return f"rank {ranks[0] if ranks else '?'} exited with code {codes[0]}"
    return lines[-1][:300] if lines else ""


def run_torchrun(job: EncodeJob, shards: ShardDir, stream, options: EncodeOptions) -> dict:
    workers = default_workers(options)
    texts_file = shards.root / "texts.jsonl"
    job.texts_file = str(texts_file)
    job.shard_shas = spool_texts(stream, texts_file, job.shard_size)
    problems = {i: shards.problem(i, job.shard_shas[i]) for i in range(shards.count)}
    job.todo = [i for i, why in problems.items() if why]
    for i in job.todo:
        if problems[i] != "missing":
            note(f"[kit] {shards.root}: shard {i} {problems[i]}: encoding it again")
    reused = shards.count - len(job.todo)
    stats = {"unique": 0, "cached": 0, "encoded": 0, "workers": workers * int(options.nnodes), "shards_reused": reused}
    for i in range(shards.count):
        if i not in job.todo:
            start, end = shards.bounds(i)
            stats["unique"] += end - start
            stats["cached"] += end - start
    done_path = shards.root / "done.json"
    if done_path.exists():
        done_path.unlink()
    if not job.todo:
        return stats
    job_path = shards.root / "job.json"
    job.save(job_path)
    cmd = launch_command(options, workers, job_path)
    if int(options.nnodes) > 1:
        others = " ".join(launch_command(options, workers, job_path, node_rank=0)).replace(
            "--node_rank 0", "--node_rank <R>")
        note(f"[kit] torchrun engine: {int(options.nnodes)} nodes; on each other node R run: {others}")
    env = dict(os.environ)
    if job.device == "cpu" and "OMP_NUM_THREADS" not in os.environ:   # ranks share the cores, not each all of them
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    log = shards.root / "worker.log"
    note(f"[kit] encoding {len(job.todo)} of {shards.count} shards with torchrun ({workers} ranks per node, "
         f"{'gloo' if job.device == 'cpu' else 'nccl'}); log: {log}")
    with open(log, "ab") as out:
        try:
            proc = popen_tied(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        except OSError as e:
            raise KitError(f"torchrun engine: cannot start {cmd[0]} ({e.strerror or e})") from None
        with terminate_on_signals(proc):
            rc = proc.wait()
    _check_finished(rc, shards, done_path, log)
    try:
        done = json.loads(done_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise KitError(f"torchrun engine: rank 0 wrote no {done_path} (log: {log})") from None
    for r in done.get("ranks", []):
        for k in ("unique", "cached", "encoded"):
            stats[k] += int(r.get(k, 0))
    stats["ranks"] = done.get("ranks", [])
    return stats


__all__ = ["default_workers", "launch_command", "run_torchrun", "spool_texts"]
