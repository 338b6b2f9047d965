"""Mining with a reranker (``mine.reranker``): a named step after :func:`kit.mine.stage.mine_rows`.

The embedding model ranks and the filters sample as always, but each row samples ``POOL`` times the negatives it
needs; then one cross-encoder pass scores every row's positives and sampled candidates (batched across rows, each
pair through the reranker cache), and:

1. a candidate the reranker scores as answering the question as well as the positive is a false negative and
   is dropped: its logit above the row's lowest positive logit minus ``reranker_margin``. On the logit scale
   (:mod:`kit.providers.rerankers.base`) the difference is the log-odds that the reranker prefers the candidate
   to the positive, whatever the model's score level, and the default margin is measured, not guessed
   (benchmarks/rerank_gain.py ``margin``, benchmarks/RESULTS.md);
2. ``negatives`` of the survivors are kept, a seeded uniform sample in the filters' order (negatives the row
   already had, with ``keep_existing``, stay unless the reranker removed them);
3. the kept texts' logits are written as ``pos_scores`` / ``neg_scores``: what FlagEmbedding distils from
   (``train.args: {knowledge_distillation: true, kd_loss_type: kl_div}``; its teacher distribution is a softmax
   over them).

The stats say how many candidates the reranker removed (``filters_dropped.reranker``, ``reranker.removed``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..io import stable_hash
from .options import MineOptions

POOL = 2   # candidates sampled per needed negative, so the ones the reranker removes can be replaced


def pool_size(opts: MineOptions) -> int:
    """How many candidates a row samples before the reranker step."""
    return opts.negatives * POOL if opts.reranker else opts.negatives


@dataclass
class RerankTally:
    removed: int = 0
    candidates: int = 0
    rows_short: int = 0
    rows_emptied: int = 0
    removed_examples: list[dict] = field(default_factory=list)
    reranker: object = None


def _old_negatives(rows: list[tuple[int, dict]], keep_existing: bool) -> dict[tuple, set[str]]:
    if not keep_existing:
        return {}
    out: dict[tuple, set[str]] = {}
    for _, r in rows:
        out.setdefault((r["query"], tuple(r["pos"])), set()).update(r.get("neg") or [])
    return out


def _keep(row: dict, pos_logits, neg_logits, old: set[str], opts: MineOptions, tally: RerankTally) -> list[int]:
    """Indices of ``row["neg"]`` that stay: below the false-negative line, then at most ``negatives`` new ones."""
    line = float(min(pos_logits)) - float(opts.reranker_margin)
    alive = []
    for i, s in enumerate(neg_logits):
        if s > line:
            tally.removed += 1
            if len(tally.removed_examples) < 20:
                tally.removed_examples.append({"query": row["query"], "negative": row["neg"][i][:200],
                                               "logit": round(float(s), 3), "positive_logit": round(float(min(pos_logits)), 3)})
        else:
            alive.append(i)
    old_i = [i for i in alive if row["neg"][i] in old]
    new_i = [i for i in alive if row["neg"][i] not in old]
    if len(new_i) > opts.negatives and opts.sampling == "top":
        new_i = new_i[:opts.negatives]   # the mined negatives come best first (RowSampler.negatives)
    elif len(new_i) > opts.negatives:
        rng = random.Random(stable_hash([opts.seed, "rerank", row["query"], row["pos"]]))
        new_i = sorted(rng.sample(new_i, opts.negatives))
    return sorted(old_i + new_i)


def rerank_rows(rows: list[tuple[int, dict]], out_rows: list[dict], opts: MineOptions, tally: RerankTally,
                reranker=None) -> list[dict]:
    """The reranker step over the mined rows (see the module docstring); rows left without a negative are not
    written (counted in ``tally.rows_emptied``)."""
    from ..providers.rerankers import make_reranker

    rr = reranker or make_reranker(opts.reranker, opts.reranker_settings, progress=opts.progress)
    old = _old_negatives(rows, opts.keep_existing)
    groups = [(r["query"], list(r["pos"]) + list(r["neg"])) for r in out_rows]
    scores = rr.score_groups(groups, desc="reranking candidates")
    kept_rows = []
    for r, s in zip(out_rows, scores):
        logits = rr.logits(s)
        n_pos = len(r["pos"])
        tally.candidates += len(r["neg"])
        keep = _keep(r, logits[:n_pos], logits[n_pos:], old.get((r["query"], tuple(r["pos"])), set()), opts, tally)
        out = dict(r)
        out["neg"] = [r["neg"][i] for i in keep]
        if isinstance(r.get("neg_ids"), list) and len(r["neg_ids"]) == len(r["neg"]):
            out["neg_ids"] = [r["neg_ids"][i] for i in keep]
        out["pos_scores"] = [round(float(x), 4) for x in logits[:n_pos]]
        out["neg_scores"] = [round(float(logits[n_pos + i]), 4) for i in keep]
        tally.rows_short += int(len(keep) < opts.negatives)
        if not out["neg"]:
            tally.rows_emptied += 1
            continue
        kept_rows.append(out)
    tally.reranker = rr
    return kept_rows


def rerank_stats(tally: RerankTally, opts: MineOptions) -> dict:
    rr = tally.reranker
    st = rr.stats
    return {"spec": opts.reranker, "namespace": rr.namespace, "score_kind": rr.score_kind,
            "margin": opts.reranker_margin, "pool_per_negative": POOL, "candidates_scored": tally.candidates,
            "removed": tally.removed, "removed_share": round(tally.removed / max(1, tally.candidates), 4),
            "rows_short_after_rerank": tally.rows_short, "rows_without_negatives": tally.rows_emptied,
            "pairs": st["pairs"], "pairs_cached": st["cached"], "pairs_scored": st["scored"], "tokens": st["tokens"],
            "cost_usd": rr.cost_usd(st["tokens"]), "seconds": round(st["seconds"], 2),
            "removed_examples": tally.removed_examples}


def format_rerank_stats(s: dict) -> str:
    r = s.get("reranker")
    if not r:
        return ""
    cost = "" if not r["cost_usd"] else f", ${r['cost_usd']:.4f}"
    return (f"\n  reranker {r['spec']}: removed {r['removed']} of {r['candidates_scored']} sampled candidates "
            f"({r['removed_share']:.0%}) as false negatives (logit above the positive's - {r['margin']:g}); "
            f"rows short of negatives after it: {r['rows_short_after_rerank']}; pairs {r['pairs_scored']} scored / "
            f"{r['pairs_cached']} cached{cost}; pos_scores/neg_scores written")


def rerank_step(inp, out_rows: list[dict], opts: MineOptions, counts, tally) -> tuple[list[dict], dict]:
    """The step as :func:`kit.mine.stage.mine` runs it: the rows, and its stats; the mining counts updated (what
    the reranker removed, rows short of negatives or left without any after it)."""
    rt = RerankTally()
    rows = rerank_rows(inp.rows, out_rows, opts, rt)
    counts.dropped["reranker"] += rt.removed
    tally.short = rt.rows_short
    tally.empty += rt.rows_emptied
    return rows, rerank_stats(rt, opts)
