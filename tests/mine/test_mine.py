"""kit mine with real encoders: window ranks recomputed by brute force, exclusions, seed, filters, stats."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kit.embed import EmbeddingCache, LocalEncoder
from kit.mine import MineOptions, mine
from helpers.mining import cli_main, read_rows as _read, write_rows as _write


def _grams(t: str, n: int = 5) -> set:
    import re
    import unicodedata
    t = re.sub(r"\s+", "", unicodedata.normalize("NFKC", t)).lower()
    return {t[i:i + n] for i in range(len(t) - n + 1)} or {t}


def _containment(a: str, b: str) -> float:
    ga, gb = _grams(a), _grams(b)
    return len(ga & gb) / min(len(ga), len(gb))


def _brute_force(model, chunks, rows, max_length=None):
    """Scores of every row's query against every unique corpus text, computed with numpy."""
    enc = LocalEncoder(str(model), max_length=max_length, progress=False)
    texts = list(dict.fromkeys(c["text"] for c in chunks))
    p = enc.encode_passages(texts)
    q = enc.encode_queries([r["query"] for r in rows])
    return texts, q @ p.T


def _check_rows(out, rows, chunks, texts, scores, first, last, adjacent=1):
    by_text = {t: i for i, t in enumerate(texts)}
    id_of = {c["id"]: c for c in chunks}
    order = {c["id"]: i for i, c in enumerate(chunks)}
    for o, r, s in zip(out, rows, scores):
        assert o["query"] == r["query"] and o["pos"] == r["pos"]
        pos_chunks = [id_of[i] for i in r["pos_ids"]]
        near = {c["id"] for pc in pos_chunks for c in chunks
                if c["doc"] == pc["doc"] and 0 < abs(order[c["id"]] - order[pc["id"]]) <= adjacent}
        assert len(o["neg"]) == len(o["neg_ids"]) and len(set(o["neg"])) == len(o["neg"])
        for neg, nid in zip(o["neg"], o["neg_ids"]):
            assert id_of[nid]["text"] == neg
            assert neg not in r["pos"] and nid not in r["pos_ids"] and neg != r["query"]
            assert nid not in near, "a neighbouring chunk of the positive became a negative"
            assert all(_containment(neg, p) <= 0.5 for p in r["pos"])
            sc = s[by_text[neg]]
            higher = int((s > sc + 1e-5).sum())        # rank allowing for ties and bf16 rounding
            higher_eq = int((s >= sc - 1e-5).sum())
            assert higher + 1 <= last and higher_eq >= first, (higher, higher_eq)


def test_window_exclusions_and_seed_tiny(tiny_bert, cmrc_small, tmp_path):
    corpus, train, chunks, rows = cmrc_small
    opts = MineOptions(model=str(tiny_bert), range="3-40", negatives=6, seed=1, relative_margin=None,
                       progress=False, print_stats=False)
    res = mine(train, corpus, tmp_path / "a.jsonl", opts)
    out = _read(tmp_path / "a.jsonl")
    assert len(out) == len(rows) and all(len(o["neg"]) == 6 for o in out)
    assert res.stats["rows_widened"] == 0
    texts, scores = _brute_force(tiny_bert, chunks, rows)
    _check_rows(out, rows, chunks, texts, scores, 3, 40)
    # same seed, same bytes; another seed, other negatives
    mine(train, corpus, tmp_path / "b.jsonl", opts)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    opts.seed = 2
    mine(train, corpus, tmp_path / "c.jsonl", opts)
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()


def test_overlap_and_adjacent_chunks_never_negatives(tiny_bert, cmrc_small, tmp_path):
    corpus, train, chunks, rows = cmrc_small
    # Ask for every candidate: whatever passes the filters is in the output, so exclusions are visible.
    res = mine(train, corpus, tmp_path / "all.jsonl",
               MineOptions(model=str(tiny_bert), range=f"1-{len(chunks)}", negatives=len(chunks),
                           relative_margin=None, widen=False, progress=False, print_stats=False))
    out = _read(tmp_path / "all.jsonl")
    texts, scores = _brute_force(tiny_bert, chunks, rows)
    _check_rows(out, rows, chunks, texts, scores, 1, len(chunks))
    row3 = next(o for o in out if o["pos_ids"] == ["p00003"])
    assert "dup-of-p00003" not in row3["neg_ids"]
    f = res.stats["filters_dropped"]
    assert f["positive"] >= len(rows) and f["adjacent"] > 0 and f["overlap"] >= 1
    assert res.stats["rows_short_of_negatives"] == len(rows)  # nobody padded to the request
    # the rest of the corpus is there: window minus positive, neighbours, overlaps
    assert len(row3["neg"]) >= len(chunks) - 1 - 2 - 1


def test_margin_and_score_filters_hold(tiny_bert, cmrc_small, tmp_path):
    corpus, train, chunks, rows = cmrc_small
    texts, scores = _brute_force(tiny_bert, chunks, rows)
    by_text = {t: i for i, t in enumerate(texts)}

    def row_scores(o):
        ri = next(i for i, r in enumerate(rows) if r["query"] == o["query"] and r["pos"] == o["pos"])
        return scores[ri], float(scores[ri, by_text[o["pos"][0]]])

    # absolute window: keep [lo, hi] only
    lo, hi = (float(x) for x in np.percentile(scores, [60, 92]))
    res = mine(train, corpus, tmp_path / "f.jsonl",
               MineOptions(model=str(tiny_bert), range="2-60", negatives=8, relative_margin=None,
                           min_score=lo, max_score=hi, widen=True, progress=False, print_stats=False))
    out = _read(tmp_path / "f.jsonl")
    assert out and sum(len(o["neg"]) for o in out) > 0
    for o in out:
        s, _ = row_scores(o)
        assert all(lo - 1e-4 <= float(s[by_text[n]]) <= hi + 1e-4 for n in o["neg"])
    f = res.stats["filters_dropped"]
    assert f["min_score"] > 0 and f["max_score"] > 0
    st = json.loads((tmp_path / "f.stats.json").read_text())
    assert st["rows_widened"] >= st["rows_short_of_negatives"]
    assert sum(len(o["neg"]) for o in out) == st["negative_scores"]["count"]
    assert lo - 1e-4 <= st["negative_scores"]["min"] and st["negative_scores"]["max"] <= hi + 1e-4

    # relative margin: nothing above (1 - m) x the positive's score (the random tiny model scores
    # everything within ~0.02 of each other, hence the small margin)
    res = mine(train, corpus, tmp_path / "m.jsonl",
               MineOptions(model=str(tiny_bert), range=f"2-{len(chunks)}", negatives=10, relative_margin=0.002,
                           progress=False, print_stats=False))
    out = _read(tmp_path / "m.jsonl")
    assert out and res.stats["filters_dropped"]["relative_margin"] > 0
    for o in out:
        s, pos = row_scores(o)
        assert all(float(s[by_text[n]]) <= pos * (1 - 0.002) + 1e-4 for n in o["neg"])


def test_widening_and_no_padding(tiny_bert, cmrc_small, tmp_path):
    corpus, train, chunks, rows = cmrc_small
    res = mine(train, corpus, tmp_path / "w.jsonl",
               MineOptions(model=str(tiny_bert), range="2-4", negatives=10, relative_margin=None,
                           widen=True, progress=False, print_stats=False))
    out = _read(tmp_path / "w.jsonl")
    assert res.stats["rows_widened"] == len(rows) and res.stats["rows_short_of_negatives"] == 0
    assert all(len(o["neg"]) == 10 for o in out)
    texts, scores = _brute_force(tiny_bert, chunks, rows)
    # widened upper end: 4 -> 8 -> 16 -> ... ; negatives still start at rank 2
    _check_rows(out, rows, chunks, texts, scores, 2, len(chunks))


def test_plain_rows_bad_lines_keep_existing_and_cache(tiny_bert, cmrc_small, tmp_path):
    corpus, _, chunks, rows = cmrc_small
    path = tmp_path / "plain.jsonl"
    plain = [{"query": r["query"], "pos": r["pos"], "neg": ["旧的负例"]} for r in rows[:10]]  # no pos_ids
    lines = [json.dumps(plain[0], ensure_ascii=False), "{broken", json.dumps({"query": "没有正例", "pos": []})]
    lines += [json.dumps(p, ensure_ascii=False) for p in plain[1:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cache = tmp_path / "emb.sqlite"
    opts = MineOptions(model=str(tiny_bert), range="2-30", negatives=4, cache_path=str(cache), relative_margin=None,
                       keep_existing=True, progress=False, print_stats=False)
    res = mine(path, corpus, tmp_path / "o.jsonl", opts)
    out = _read(tmp_path / "o.jsonl")
    assert len(out) == 10 and res.stats["rows_bad"] == 2
    assert f"{path}:2: not valid JSON" in "\n".join(res.problems)
    assert f"{path}:3: row has no positive" in "\n".join(res.problems)
    texts, scores = _brute_force(tiny_bert, chunks, [{"query": p["query"]} for p in plain])
    fixed = [dict(p, pos_ids=[c["id"] for c in chunks if c["text"] == p["pos"][0]]) for p in plain]
    assert all(len(o["pos_ids"]) == 1 for o in out)  # positives found by their text
    for o in out:
        assert o["neg"][0] == "旧的负例" and o["neg_ids"][0] is None and len(o["neg"]) == 5
    _check_rows([dict(o, neg=o["neg"][1:], neg_ids=o["neg_ids"][1:]) for o in out], fixed, chunks, texts, scores, 2, 30)
    assert res.stats["embedding"]["passages"]["encoded"] > 0
    # replace by default
    opts.keep_existing = False
    res2 = mine(path, corpus, tmp_path / "o2.jsonl", opts)
    assert all("旧的负例" not in o["neg"] for o in _read(tmp_path / "o2.jsonl"))
    # mining again re-embeds nothing
    assert res2.stats["embedding"]["passages"]["encoded"] == 0 and res2.stats["embedding"]["queries"]["encoded"] == 0
    assert EmbeddingCache(cache).count() == res.stats["embedding"]["passages"]["unique"] + \
        res.stats["embedding"]["queries"]["unique"]


def test_approximate_index_past_exact_max(tiny_bert, cmrc_small, tmp_path):
    corpus, train, chunks, rows = cmrc_small
    res = mine(train, corpus, tmp_path / "h.jsonl",
               MineOptions(model=str(tiny_bert), range="2-30", negatives=5, exact_max=50, relative_margin=None,
                           progress=False, print_stats=False))
    assert res.stats["index"]["type"].startswith("hnsw")
    out = _read(tmp_path / "h.jsonl")
    texts, scores = _brute_force(tiny_bert, chunks, rows)
    _check_rows(out, rows, chunks, texts, scores, 2, 30)


def test_cli_mine_and_stats_file(tiny_bert, cmrc_small, tmp_path):
    from click.testing import CliRunner

    corpus, train, _, rows = cmrc_small
    out = tmp_path / "train_hn.jsonl"
    r = CliRunner().invoke(cli_main(), ["mine", str(train), "--corpus", str(corpus), "--model", str(tiny_bert),
                                        "-o", str(out), "--range", "2-50", "--negatives", "3", "--no-progress",
                                        "--relative-margin", "0"])
    assert r.exit_code == 0, r.output
    st = json.loads((tmp_path / "train_hn.stats.json").read_text())
    for key in ("positive_scores", "negative_scores", "filters_dropped", "rows_short_of_negatives", "rows_widened"):
        assert key in st
    assert st["positive_scores"]["count"] == len(rows) and {"p5", "p50", "p95"} <= set(st["negative_scores"])
    assert "positive scores: n=" in r.output
    r = CliRunner().invoke(cli_main(), ["mine", str(train), "--corpus", str(corpus), "--model", str(tiny_bert),
                                        "-o", str(out), "--range", "9-3"])
    assert r.exit_code == 2 and "range '9-3'" in r.output


@pytest.mark.slow
def test_real_encoder_zh_e5(zh_e5_path, cmrc_small, tmp_path):
    corpus, train, chunks, rows = cmrc_small
    opts = MineOptions(model=str(zh_e5_path), range="2-30", negatives=5, max_length=96, widen=True, relative_margin=0.05,
                       progress=False, print_stats=False)
    res = mine(train, corpus, tmp_path / "e5.jsonl", opts)
    out = _read(tmp_path / "e5.jsonl")
    texts, scores = _brute_force(zh_e5_path, chunks, rows, max_length=96)
    # the query/passage prefixes are applied: a real retriever ranks most cmrc positives first
    assert res.stats["positive_at_rank1"] >= 0.6
    assert len(out) == len(rows)
    widened = res.stats["rows_widened"]
    _check_rows(out, rows, chunks, texts, scores, 2, 30 if not widened else len(chunks))
    for o in out:  # margin 0.05 below the positive
        ri = next(i for i, r in enumerate(rows) if r["query"] == o["query"] and r["pos"] == o["pos"])
        pos = float(scores[ri, texts.index(o["pos"][0])])
        assert all(float(scores[ri, texts.index(n)]) <= 0.95 * pos + 1e-3 for n in o["neg"])
    again = mine(train, corpus, tmp_path / "e5b.jsonl", opts)
    assert (tmp_path / "e5.jsonl").read_bytes() == (tmp_path / "e5b.jsonl").read_bytes()
    assert again.stats["embedding"]["passages"]["encoded"] == 0


def test_rows_sharing_a_query_are_mined_against_that_query(tiny_bert, cmrc_small, tmp_path):
    """Regression: search results are per unique query; rows repeating a query (two generators, or one
    question with two answers) must use that query's results, not the row number's."""
    corpus, train, chunks, rows = cmrc_small
    dup = [dict(rows[0], pos=[chunks[50]["text"]], pos_ids=[chunks[50]["id"]])] + rows
    path = _write(tmp_path / "dup.jsonl", dup)
    mine(path, corpus, tmp_path / "out.jsonl", MineOptions(model=str(tiny_bert), range="2-30", negatives=4,
                                                           relative_margin=None, progress=False, print_stats=False))
    out = _read(tmp_path / "out.jsonl")
    assert len(out) == len(dup)
    texts, scores = _brute_force(tiny_bert, chunks, dup)
    _check_rows(out, dup, chunks, texts, scores, 2, 30)


def test_widening_is_opt_in_and_the_window_share_is_reported(tiny_bert, cmrc_small, tmp_path):
    """By default negatives come only from the requested ranks; rows left short are counted, not widened."""
    corpus, train, chunks, rows = cmrc_small
    res = mine(train, corpus, tmp_path / "n.jsonl",
               MineOptions(model=str(tiny_bert), range="2-4", negatives=10, relative_margin=None,
                           progress=False, print_stats=False))
    st = res.stats
    assert st["rows_widened"] == 0 and st["window"]["negatives_past_window"] == 0
    assert st["window"]["share_in_window"] == 1.0 and st["rows_short_of_negatives"] == len(rows)
    texts, scores = _brute_force(tiny_bert, chunks, rows)
    _check_rows(_read(tmp_path / "n.jsonl"), rows, chunks, texts, scores, 2, 4)
    wide = mine(train, corpus, tmp_path / "w.jsonl",
                MineOptions(model=str(tiny_bert), range="2-4", negatives=10, relative_margin=None, widen=True,
                            progress=False, print_stats=False))
    w = wide.stats["window"]
    assert w["negatives_past_window"] > 0 and w["share_in_window"] == round(
        w["negatives_in_window"] / (w["negatives_in_window"] + w["negatives_past_window"]), 4) < 1


def test_absolute_and_scaled_margins(tiny_bert, cmrc_small, tmp_path):
    corpus, train, chunks, rows = cmrc_small
    texts, scores = _brute_force(tiny_bert, chunks, rows)
    by_text = {t: i for i, t in enumerate(texts)}
    for kind, m in (("absolute_margin", 0.001), ("scaled_margin", 0.5)):
        res = mine(train, corpus, tmp_path / f"{kind}.jsonl",
                   MineOptions(model=str(tiny_bert), range=f"2-{len(chunks)}", negatives=10, relative_margin=None,
                               progress=False, print_stats=False, **{kind: m}))
        spread = res.stats["score_spread"]
        assert res.stats["filters_dropped"][kind] > 0 and spread > 0
        gap = m if kind == "absolute_margin" else m * spread
        for o in _read(tmp_path / f"{kind}.jsonl"):
            ri = next(i for i, r in enumerate(rows) if r["query"] == o["query"] and r["pos"] == o["pos"])
            pos = float(scores[ri, by_text[o["pos"][0]]])
            assert all(float(scores[ri, by_text[n]]) <= pos - gap + 1e-4 for n in o["neg"])


def test_short_rows_dropped_as_sentence_transformers_does(tiny_bert, cmrc_small, tmp_path):
    """short_rows: drop writes only the rows that got every negative asked for (sentence-transformers'
    mine_hard_negatives does the same); keep (the default) writes them with what they have. Same seed, same
    negatives for the rows both write."""
    corpus, train, chunks, rows = cmrc_small
    opts = dict(model=str(tiny_bert), range="2-12", negatives=4, relative_margin=0.002, progress=False,
                print_stats=False)
    kept = mine(train, corpus, tmp_path / "k.jsonl", MineOptions(**opts))
    dropped = mine(train, corpus, tmp_path / "d.jsonl", MineOptions(**opts, short_rows="drop"))
    k, d = _read(tmp_path / "k.jsonl"), _read(tmp_path / "d.jsonl")
    short = kept.stats["rows_short_of_negatives"]
    assert 0 < short < len(rows), "the margin must leave some rows short for this test to mean anything"
    assert dropped.stats["rows_dropped_short"] == short and kept.stats["rows_dropped_short"] == 0
    assert all(len(o["neg"]) == 4 for o in d) and len(d) == len(rows) - short
    assert len(k) == len(rows) - kept.stats["rows_without_negatives"]
    full = {o["query"]: o["neg"] for o in k if len(o["neg"]) == 4}
    assert {o["query"]: o["neg"] for o in d} == full
    texts, scores = _brute_force(tiny_bert, chunks, rows)
    kept_rows = [r for r in rows if r["query"] in full]
    _check_rows(d, kept_rows, chunks, texts, scores[[rows.index(r) for r in kept_rows]], 2, 12)


def test_every_margin_is_off_at_null_and_the_same_filter_at_zero():
    """"Off" means one thing for the three margins (null), and 0 means one thing too: drop what scores above the
    row's positive."""
    from kit.mine.filters import margin_thresholds

    assert margin_thresholds(0.8, MineOptions(), spread=0.1) == {}
    at_zero = margin_thresholds(0.8, MineOptions(relative_margin=0.0, absolute_margin=0.0, scaled_margin=0.0),
                                spread=0.1)
    assert at_zero == {"relative_margin": 0.8, "absolute_margin": 0.8, "scaled_margin": 0.8}
    assert margin_thresholds(0.8, MineOptions(relative_margin=0.05), spread=0.1) == {"relative_margin": 0.8 - 0.04}


def test_top_sampling_takes_the_best_survivors_of_the_window(zh_e5_path, cmrc_small, tmp_path):
    """``sampling: top`` (sentence-transformers' strategy): the negatives are the highest-scoring candidates that
    pass every filter, i.e. the head of what the whole window would give; ``random`` (the default) is not. A real
    encoder: the tiny random one scores most of these texts the same (their characters are outside its vocabulary),
    and ties have no "top"."""
    corpus, train, chunks, rows = cmrc_small
    common = dict(model=str(zh_e5_path), range="3-40", relative_margin=None, precision="fp32", progress=False,
                  print_stats=False)
    mine(train, corpus, tmp_path / "all.jsonl", MineOptions(negatives=len(chunks), **common))
    mine(train, corpus, tmp_path / "top.jsonl", MineOptions(negatives=6, sampling="top", **common))
    mine(train, corpus, tmp_path / "rand.jsonl", MineOptions(negatives=6, **common))
    every, top, rand = (_read(tmp_path / f"{n}.jsonl") for n in ("all", "top", "rand"))
    assert len(top) == len(rows)
    for a, t in zip(every, top):
        assert t["neg_ids"] == a["neg_ids"][:6]   # the window's survivors come best first
    assert sum(r["neg_ids"] != a["neg_ids"][:6] for r, a in zip(rand, every)) > len(rows) // 2
    texts, scores = _brute_force(zh_e5_path, chunks, rows)
    _check_rows(top, rows, chunks, texts, scores, 3, 40)
