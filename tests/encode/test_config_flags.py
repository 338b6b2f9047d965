"""Encoding flags given to a command that reads a whole config (kit run, update, drift) override its `encode:`
section for every stage, and only inside the command (kit/encode/options.py: flags_over_config)."""
from __future__ import annotations

import os

from kit.config import load_config
from kit.encode.options import flags_over_config, layer_options
from kit.pipeline import Pipeline
from kit.stages import REGISTRY


def pipeline(tmp_path, encode: str = "") -> Pipeline:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"workdir: {tmp_path / 'w'}\nmodel: {tmp_path}\n{encode}", encoding="utf-8")
    return Pipeline(load_config(cfg), cfg, REGISTRY)


def test_flags_win_over_the_section_and_only_inside(tmp_path):
    p = pipeline(tmp_path, "encode:\n  engine: torchrun\n  workers: 4\n  shard_size: 500\n")
    with flags_over_config({"engine": "ray", "workers": 2, "shard_dir": "shards"}):
        o = layer_options(p)
        assert (o.engine, o.workers, o.shard_size) == ("ray", 2, 500)          # untyped keys stay the config's
        assert o.shard_dir == os.path.abspath("shards")                         # from the working directory
    o = layer_options(p)
    assert (o.engine, o.workers, o.shard_dir) == ("torchrun", 4, None)


def test_flags_alone_turn_the_layer_on_and_nothing_leaves_it_off(tmp_path):
    p = pipeline(tmp_path)
    assert layer_options(p) is None
    with flags_over_config({}):
        assert layer_options(p) is None
    with flags_over_config({"engine": "torchrun", "workers": 2}):
        assert layer_options(p).engine == "torchrun"
