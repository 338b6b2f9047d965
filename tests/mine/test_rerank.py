"""Mining with a reranker (mine.reranker): false negatives dropped at the measured margin, a seeded sample of the
rest, pos_scores/neg_scores on the logit scale, the count of what the reranker removed; and `kit train` distilling
from those scores with FlagEmbedding's knowledge_distillation / kd_loss_type."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kit.mine import MineOptions, mine
from helpers.rerank_server import RerankServer, lexical_score
from helpers.mining import cli_main, read_rows as _read


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _opts(model, **kw) -> MineOptions:
    base = dict(model=str(model), range="2-40", negatives=4, seed=3, relative_margin=None, progress=False,
                print_stats=False)
    return MineOptions(**{**base, **kw})


def test_reranker_drops_false_negatives_exactly_and_writes_teacher_scores(tiny_bert, cmrc_small, tmp_path):
    corpus, train, _, rows = cmrc_small
    # The pool the reranker sees: with the same seed, a row samples its candidates in the same order, so mining
    # 2 x 4 negatives without a reranker gives exactly the candidates the reranker step will score.
    mine(train, corpus, tmp_path / "pool.jsonl", _opts(tiny_bert, negatives=8))
    pools = {(o["query"], tuple(o["pos"])): o["neg"] for o in _read(tmp_path / "pool.jsonl")}
    margin = 1.5
    with RerankServer() as srv:   # lexical relevance in [0, 1], served over HTTP as /v1/rerank
        opts = _opts(tiny_bert, reranker="openai:lexical", reranker_settings={"base_url": srv.base_url},
                     reranker_margin=margin)
        res = mine(train, corpus, tmp_path / "rr.jsonl", opts)
    out = _read(tmp_path / "rr.jsonl")
    expected_removed = 0
    for o in out:
        pos = [_logit(lexical_score(o["query"], p)) for p in o["pos"]]
        line = min(pos) - margin
        pool = pools[(o["query"], tuple(o["pos"]))]
        above = [t for t in pool if _logit(lexical_score(o["query"], t)) > line]
        expected_removed += len(above)
        assert set(o["neg"]) <= set(pool) - set(above)                          # never a removed candidate
        assert len(o["neg"]) == min(4, len(pool) - len(above))                  # refilled from the pool
        assert np.allclose(o["pos_scores"], pos, atol=1e-3)                     # teacher scores: logits
        assert np.allclose(o["neg_scores"], [_logit(lexical_score(o["query"], t)) for t in o["neg"]], atol=1e-3)
        assert len(o["neg_ids"]) == len(o["neg"])
    st = res.stats
    assert expected_removed > 0 and st["reranker"]["removed"] == expected_removed
    assert st["filters_dropped"]["reranker"] == expected_removed
    assert st["reranker"]["candidates_scored"] == sum(len(v) for v in pools.values())
    assert all(e["logit"] > e["positive_logit"] - margin for e in st["reranker"]["removed_examples"])
    assert len(out) == len(rows) - st["rows_without_negatives"]
    assert json.loads((tmp_path / "rr.stats.json").read_text())["reranker"]["removed"] == expected_removed


def test_top_sampling_keeps_the_best_survivors_of_the_reranker(tiny_bert, cmrc_small, tmp_path):
    """With ``sampling: top`` the reranker step keeps the highest-ranked candidates it does not remove, not a
    seeded sample of them."""
    corpus, train, _, _ = cmrc_small
    mine(train, corpus, tmp_path / "pool.jsonl", _opts(tiny_bert, negatives=8, sampling="top"))
    pools = {(o["query"], tuple(o["pos"])): o["neg"] for o in _read(tmp_path / "pool.jsonl")}
    margin = 1.5
    with RerankServer() as srv:
        mine(train, corpus, tmp_path / "rr.jsonl", _opts(tiny_bert, sampling="top", reranker="openai:lexical",
                                                         reranker_settings={"base_url": srv.base_url},
                                                         reranker_margin=margin))
    out = _read(tmp_path / "rr.jsonl")
    assert out
    for o in out:
        line = min(_logit(lexical_score(o["query"], p)) for p in o["pos"]) - margin
        kept = [t for t in pools[(o["query"], tuple(o["pos"]))] if _logit(lexical_score(o["query"], t)) <= line]
        assert o["neg"] == kept[:4]


def test_cli_mine_with_a_local_cross_encoder_and_stale_scores(tiny_bert, tiny_cross_encoder, cmrc_small, tmp_path):
    from click.testing import CliRunner

    corpus, train, _, rows = cmrc_small
    out = tmp_path / "hn.jsonl"
    r = CliRunner().invoke(cli_main(), ["mine", str(train), "--corpus", str(corpus), "--model", str(tiny_bert),
                                        "-o", str(out), "--range", "2-30", "--negatives", "3", "--no-progress",
                                        "--reranker", f"local:{tiny_cross_encoder}",
                                        "--reranker-settings", "precision=fp32", "--reranker-settings",
                                        "batch_size=16", "--relative-margin", "0", "--reranker-margin", "0"])
    assert r.exit_code == 0, r.output
    assert "reranker local:" in r.output and "pos_scores/neg_scores written" in r.output
    got = _read(out)
    assert all(len(o["neg_scores"]) == len(o["neg"]) and len(o["pos_scores"]) == len(o["pos"]) for o in got)
    assert all(max(o["neg_scores"]) <= min(o["pos_scores"]) for o in got)    # margin 0: none above the positive
    # Re-mining those rows without a reranker (keep_existing) must not leave stale teacher scores behind.
    res = mine(out, corpus, tmp_path / "again.jsonl", _opts(tiny_bert, keep_existing=True))
    again = _read(tmp_path / "again.jsonl")
    assert res.stats["rows_bad"] == 0 and all("neg_scores" not in o for o in again)


@pytest.mark.slow
def test_kit_train_distils_from_reranker_scores(tiny_bert, cmrc_small, tmp_path):
    """The mined teacher scores drive FlagEmbedding's distillation in `kit train` (knowledge_distillation with
    kd_loss_type kl_div): a real torchrun run on CPU."""
    from click.testing import CliRunner

    corpus, train, _, _ = cmrc_small
    with RerankServer() as srv:
        mine(train, corpus, tmp_path / "hn.jsonl", _opts(tiny_bert, reranker="openai:lexical",
                                                        reranker_settings={"base_url": srv.base_url}))
    bge = tmp_path / "bge-tiny-zh"
    import shutil
    shutil.copytree(tiny_bert, bge)
    out = tmp_path / "ft"
    r = CliRunner().invoke(cli_main(), ["train", "--model", str(bge), "--data", str(tmp_path / "hn.jsonl"), "-o",
                                        str(out), "--args", "max_steps=2", "--args", "per_device_train_batch_size=2",
                                        "--args", "train_group_size=3", "--args", "knowledge_distillation=True",
                                        "--args", "kd_loss_type=kl_div", "--args", "logging_steps=1",
                                        "--args", "save_steps=100", "--args", "query_max_len=32",
                                        "--args", "passage_max_len=64"])
    assert r.exit_code == 0, r.output[-3000:]
    m = json.loads((out / "kit_manifest.json").read_text())
    cmd = m["command"]
    assert cmd[cmd.index("--knowledge_distillation") + 1] == "True" and cmd[cmd.index("--kd_loss_type") + 1] == "kl_div"
