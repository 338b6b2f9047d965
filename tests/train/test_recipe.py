"""The shipped recipes train at FlagEmbedding's learning rate or near it (issue 27): the demo recipe once trained at
5e-5 and the fine-tuned model alone was no better than its base on real questions (stard_dev: 1.038x at 120 steps,
0.976x at 240), while 1e-5 gave 1.121x and beat FlagEmbedding's and sentence-transformers' own recipes on the same
pairs (benchmarks/RESULTS.md, "Peer recipes"). A config that drifts back fails here."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["demo.yaml", "cpu-small.yaml", "bge-large-zh-v1.5.yaml", "bge-m3.yaml"])
def test_shipped_embedding_recipes_keep_a_measured_learning_rate(name):
    cfg = yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))
    lr = float(cfg["train"]["args"]["learning_rate"])
    assert 5e-6 <= lr <= 2e-5, f"{name}: learning_rate {lr}; 5e-5 measured no gain alone on real questions"


def test_demo_budget_is_the_measured_one():
    cfg = yaml.safe_load((CONFIGS / "demo.yaml").read_text(encoding="utf-8"))
    steps = str(cfg["train"]["args"]["max_steps"])
    assert steps.endswith(":-120}"), steps   # 120 steps: the budget the peer benchmark measured
