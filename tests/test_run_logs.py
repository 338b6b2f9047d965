"""Issue 20: `kit run` keeps the noise (the trainer's ~150-line argument dump, the model config, faiss' loader lines)
in the stage's log, WORKDIR/logs/<stage>.log, and shows it on stderr only with -v; the kit's own progress (stage
lines, the training bar, step/loss lines, warnings, errors) still reaches stderr, and so does a failing trainer's
error, with where the full log is."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kit.train.progress import StepCounter, TrainerOutput

# Lines of the trainer's argument dump and model config (the tiny BERT's), and of faiss' loader (mine imports it).
DUMP = ["Training/evaluation parameters", "per_device_train_batch_size=2,", "Config: BertConfig {",
        '"hidden_size": 64,']
NOISE = DUMP + ["_n_gpu", "faiss.loader"]

# What FlagEmbedding under torchrun prints (shortened), the way it arrives: tqdm redraws with \r, a warning glued
# after a bar, a multi-line INFO record, argparse's usage block, torchrun's own report after its child failed.
TRAINER_OUTPUT = (
    "/x/accelerate/state.py:279: UserWarning: OMP_NUM_THREADS/MKL_NUM_THREADS unset, we set it at 2.\n"
    "  warnings.warn(\n"
    "12/06/2026 22:29:12 - WARNING - FlagEmbedding.AbsRunner -   Process rank: -1, device: cpu:0\n"
    "12/06/2026 22:29:12 - INFO - FlagEmbedding.AbsRunner -   Training/evaluation parameters "
    "AbsEmbedderTrainingArguments(\n_n_gpu=0,\naccelerator_config={'split_batches': False},\n"
    "per_device_train_batch_size=2,\nwarmup_steps=0,\n)\n"
    "\rLoading weights:   0%|          | 0/39 [00:00<?, ?it/s]\rLoading weights: 100%|##########| 39/39 "
    "[00:00<00:00, 19529.35it/s]\n"
    "12/06/2026 22:29:12 - INFO - FlagEmbedding.runner -   Config: BertConfig {\n"
    '  "hidden_size": 64,\n  "architectures": [\n    "BertModel"\n  ]\n}\n\n'
    "\r  0%|          | 0/2 [00:00<?, ?it/s]/x/tokenization_utils_base.py:2386: UserWarning: `max_length` is "
    "ignored\n  warnings.warn(\n"
    "\r 50%|#####     | 1/2 [00:01<00:01,  1.08s/it]\r                \r{'loss': '1.65', 'grad_norm': '68.18', "
    "'learning_rate': '5e-05', 'epoch': '0.125'}\n"
    "There were missing keys in the checkpoint model loaded: ['x'].\n"
    "\r100%|##########| 2/2 [00:02<00:00,  1.08s/it]12/06/2026 22:29:15 - INFO - trainer -   Saving model\n"
    "{'train_runtime': '2.175', 'train_loss': '1.646', 'epoch': '0.25'}\n"
)
FAILURE = (
    "usage: __main__.py [-h] --model_name_or_path MODEL_NAME_OR_PATH\n"
    "                   [--per_device_train_batch_size PER_DEVICE_TRAIN_BATCH_SIZE]\n"
    "__main__.py: error: argument --lr_scheduler_type: invalid choice: 'bogus'\n"
    "E1206 22:29:55.779000 19891 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 2) "
    "local_rank: 0 (pid: 19896) of binary: python3\n"
    "Traceback (most recent call last):\n  File \"torchrun\", line 6, in <module>\n"
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
    "=====\nRoot Cause (first observed failure):\n  exitcode  : 2 (pid: 19896)\n=====\n"
)


class Lines:
    def __init__(self):
        self.lines: list[str] = []

    def line(self, text):
        self.lines.append(text)


def replay(text: str, verbose: bool = False, failed: bool = False, chunk: int = 37) -> tuple[str, list[str]]:
    """The console and the log of ``text`` arriving in ``chunk``-character reads."""
    console, log = [], Lines()
    out = TrainerOutput(console.append, log, verbose, StepCounter(1, 0, "kit train"))
    for i in range(0, len(text), chunk):
        out.feed(text[i:i + chunk])
    out.close(failed=failed)
    return "".join(console), log.lines


def console_lines(console: str) -> list[str]:
    """The console as a user reads it: a line redrawn with \\r shows its last state."""
    return [ln.split("\r")[-1] for ln in console.split("\n") if ln.split("\r")[-1].strip()]


def test_the_console_shows_progress_warnings_and_errors_and_the_log_everything():
    console, log = replay(TRAINER_OUTPUT)
    shown = console_lines(console)
    assert "[kit train] step 1/2 loss 1.65 lr 5e-05 epoch 0.125" in shown
    assert any("1/2 [00:01<00:01" in part for part in console.split("\r"))      # the training bar, redrawn
    assert shown[0].endswith("UserWarning: OMP_NUM_THREADS/MKL_NUM_THREADS unset, we set it at 2.")
    assert shown[1].endswith("WARNING - FlagEmbedding.AbsRunner -   Process rank: -1, device: cpu:0")
    assert "/x/tokenization_utils_base.py:2386: UserWarning: `max_length` is ignored" in shown   # a line of its own
    assert "There were missing keys in the checkpoint model loaded: ['x']." in shown
    for noise in ["parameters", "_n_gpu", "per_device_train_batch_size", "accelerator_config", "BertConfig",
                  "hidden_size", "Loading weights", "warnings.warn(", "{'loss'", "train_runtime", "Saving model"]:
        assert noise not in console, noise
    # the log: every line, a redrawn line as its last state, the kit's summary after the loss line
    for kept in ["_n_gpu=0,", "per_device_train_batch_size=2,", '  "hidden_size": 64,', "  warnings.warn(",
                 "Loading weights: 100%|##########| 39/39 [00:00<00:00, 19529.35it/s]",
                 "[kit train] step 1/2 loss 1.65 lr 5e-05 epoch 0.125", "{'train_runtime': '2.175', "
                 "'train_loss': '1.646', 'epoch': '0.25'}"]:
        assert kept in log, kept
    assert log.index("[kit train] step 1/2 loss 1.65 lr 5e-05 epoch 0.125") == \
        next(i for i, ln in enumerate(log) if ln.startswith("{'loss'")) + 1
    # -v: everything as it arrives
    console, _ = replay(TRAINER_OUTPUT, verbose=True)
    assert TRAINER_OUTPUT in console.replace("\n[kit train] step 1/2 loss 1.65 lr 5e-05 epoch 0.125\n", "")


def test_a_failed_trainer_shows_its_error_not_the_usage_block_nor_torchruns_report():
    console, log = replay(FAILURE, failed=True)
    assert console_lines(console) == ["__main__.py: error: argument --lr_scheduler_type: invalid choice: 'bogus'"]
    assert "Root Cause (first observed failure):" in log and log[0].startswith("usage: ")
    # a last line the filter hid (here an INFO record just before the crash): the child's last lines are shown
    console, _ = replay("step one\n12/06/2026 22:29:12 - INFO - x -   loading data\n" + FAILURE.split("\n", 3)[3],
                        failed=True)
    assert console_lines(console)[-3:] == ["[kit train] the trainer's last lines:", "  step one",
                                           "  12/06/2026 22:29:12 - INFO - x -   loading data"]


def _logging_script(verbose: bool, log: Path) -> str:
    return (f"from kit.logs import setup_logging, stage_log\nsetup_logging({verbose})\n"
            f"with stage_log({str(log)!r}, 'test'):\n    import faiss\n")


@pytest.mark.parametrize("verbose", [False, True])
def test_other_libraries_info_lines_go_to_the_stage_log_and_to_stderr_only_with_v(tmp_path, verbose):
    log = tmp_path / "logs" / "mine.log"
    r = subprocess.run([sys.executable, "-c", _logging_script(verbose, log)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "INFO faiss.loader: Successfully loaded faiss." in log.read_text(encoding="utf-8")
    assert ("faiss.loader" in r.stderr) == verbose, r.stderr


# ------------------------------------------------------------------------------- a real `kit run`
TEXTS = ["劳动合同应当以书面形式订立", "用人单位应当按时足额支付工资", "试用期不得超过六个月", "经济补偿按工作年限计算",
         "社会保险由单位和个人共同缴纳", "解除合同应当提前三十日通知", "违反本法规定应当承担赔偿责任", "工资不得低于最低工资标准"]


def _pipeline(tmp_path: Path, model: Path, **train_args) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    for d in range(3):
        articles = [f"第{'一二三四五六七八九十'[i]}条 {TEXTS[(i + d) % 8]}。{TEXTS[(i + 3 * d + 1) % 8]}，"
                    f"{TEXTS[(i + 5) % 8]}。" for i in range(10)]
        (docs / f"法{d}.txt").write_text("\n\n".join(articles) + "\n", encoding="utf-8")
    args = dict(max_steps=2, per_device_train_batch_size=2, train_group_size=4, query_max_len=16, passage_max_len=32,
                save_steps=2, logging_steps=1, dataloader_num_workers=0, **train_args)
    cfg = {"workdir": "work", "model": str(model), "prep": {"inputs": ["docs"], "max_tokens": 120, "overlap": 0},
           "queries": {"generator": ["ict", "keywords"], "per_chunk": 2}, "split": {"eval_ratio": 0.34, "seed": 1},
           "mine": {"range": "2-8", "negatives": 3}, "train": {"nproc": 1, "args": args}}
    path = tmp_path / "kit.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _kit(*args):
    return subprocess.run([sys.executable, "-m", "kit.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900)


@pytest.mark.slow
def test_kit_run_keeps_the_trainer_dump_and_faiss_lines_in_the_stage_logs(tmp_path, tiny_bert):
    model = tmp_path / "bge-tiny-zh"
    shutil.copytree(tiny_bert, model)
    config = _pipeline(tmp_path, model)
    logs = tmp_path / "work" / "logs"

    r = _kit("run", config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not [ln for ln in r.stderr.splitlines() if any(n in ln for n in NOISE)], r.stderr
    assert "[train] running" in r.stderr and "[kit train] step 2/2 loss" in r.stderr and "[train] done" in r.stderr
    assert f"[kit train] the trainer's full output: {logs / 'train.log'}" in r.stderr
    train_log, mine_log = (logs / "train.log").read_text(encoding="utf-8"), (logs / "mine.log").read_text("utf-8")
    for line in DUMP:
        assert line in train_log, line
    assert "[train] running" in train_log and "[kit train] step 2/2 loss" in train_log
    assert "INFO faiss.loader: Loading faiss" in mine_log and "[mine] done" in mine_log

    r = _kit("-v", "run", config, "--from", "mine")
    assert r.returncode == 0, r.stderr[-3000:]
    for line in DUMP + ["INFO faiss.loader: Loading faiss"]:
        assert line in r.stderr, line
    assert train_log in (logs / "train.log").read_text(encoding="utf-8")    # appended: the first run's section stays

    r = _kit("run", _pipeline(tmp_path, model, lr_scheduler_type="bogus"))
    assert r.returncode == 2
    assert "invalid choice: 'bogus'" in r.stderr and f"full log: {logs / 'train.log'}" in r.stderr, r.stderr
    assert not [ln for ln in r.stderr.splitlines() if ln.startswith("usage:") or "Root Cause" in ln], r.stderr
    assert "Root Cause" in (logs / "train.log").read_text(encoding="utf-8")
