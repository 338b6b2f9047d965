"""A workdir as `kit run` leaves it (real stages, the tiny random BERT, 2 training steps) over six laws of stard_dev,
and two more laws to add later."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from versions.workdirs import base_config, laws, write_config, write_laws

TRAIN_ARGS = {"max_steps": 2, "per_device_train_batch_size": 4, "train_group_size": 3, "query_max_len": 32,
              "passage_max_len": 64, "learning_rate": 1e-5, "logging_steps": 1, "save_steps": 100,
              "dataloader_num_workers": 0}


def pipeline_config(tmp_path: Path, model: Path, docs: Path, **extra) -> dict:
    return base_config(tmp_path / "work", model, docs, queries={"generator": ["ict"], "per_chunk": 2, "seed": 1},
                       split={"eval_ratio": 0.3, "seed": 1}, mine={"range": "2-20", "negatives": 2},
                       train={"nproc": 1, "args": dict(TRAIN_ARGS)}, merge={"weights": [0.5]},
                       bench={"k": [1, 10], "latency_samples": 0, "include": ["base", "finetuned", "merged"]}, **extra)


@pytest.fixture
def kit_run(tmp_path, tiny_bert):
    """(config, docs folder, the two later laws' files) after a real `kit run`."""
    from kit.stages import run_pipeline

    chosen = laws(8, 6)
    names = sorted(chosen)
    docs = tmp_path / "docs"
    write_laws(docs, {n: chosen[n] for n in names[:6]})
    later = write_laws(tmp_path / "later", {n: chosen[n] for n in names[6:]}, prefix="new")
    config = write_config(tmp_path / "kit.yaml", pipeline_config(tmp_path, tiny_bert, docs))
    run_pipeline(config)
    return config, docs, later


def jsonl(path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


def change(docs: Path, later: list[Path]) -> dict:
    """The two later laws added, one article of the first law changed, the second law's file removed: what changed."""
    import shutil

    files = sorted(docs.iterdir())
    for f in later:
        shutil.copy(f, docs / f.name)
    rows = jsonl(files[0])
    rows[1]["text"] += "违反本条规定的，由有关部门责令改正，给予警告。"
    files[0].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    gone = jsonl(files[1])
    files[1].unlink()
    return {"added": [docs / f.name for f in later], "changed": files[0], "changed_title": rows[1]["title"],
            "removed": files[1], "gone_titles": {r["title"] for r in gone}}
