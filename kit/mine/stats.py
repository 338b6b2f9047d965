"""Mining statistics: what was mined, dropped and widened, and the score distributions."""
from __future__ import annotations

import numpy as np


def percentiles(values) -> dict:
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return {"count": 0}
    p = np.percentile(v, [5, 25, 50, 75, 95])
    return {"count": int(v.size), "mean": round(float(v.mean()), 4), "min": round(float(v.min()), 4),
            "p5": round(float(p[0]), 4), "p25": round(float(p[1]), 4), "p50": round(float(p[2]), 4),
            "p75": round(float(p[3]), 4), "p95": round(float(p[4]), 4), "max": round(float(v.max()), 4)}


def _dist(d: dict) -> str:
    if not d.get("count"):
        return "none"
    return (f"n={d['count']} mean={d['mean']:.3f} p5={d['p5']:.3f} p25={d['p25']:.3f} p50={d['p50']:.3f} "
            f"p75={d['p75']:.3f} p95={d['p95']:.3f}")


def format_stats(s: dict) -> str:
    f = s["filters_dropped"]
    emb = s["embedding"]
    return "\n".join([
        f"mined {s['rows_written']}/{s['rows_mined']} rows -> {s['output']} "
        f"({s['index']['type']}, {s['index']['unique_chunks']} unique chunks, {s['seconds']['total']:.1f}s)",
        f"  positive scores: {_dist(s['positive_scores'])}",
        f"  negative scores: {_dist(s['negative_scores'])}",
        f"  window ranks {s['window']['first']}-{s['window']['last']}: {s['window']['candidates_examined']} candidates;"
        " dropped: " + ", ".join(f"{k} {v}" for k, v in f.items() if v or k in ("relative_margin", "overlap")),
        f"  negatives from inside the window: {s['window']['negatives_in_window']} "
        f"({s['window']['share_in_window']:.0%}), past it (widened): {s['window']['negatives_past_window']}; "
        f"score spread {s['score_spread']:.3f}",
        f"  rows widened: {s['rows_widened']}, still short of {s['negatives_requested']}: "
        f"{s['rows_short_of_negatives']}, without any negative (not written): {s['rows_without_negatives']}, "
        f"dropped as short (short_rows: drop): {s.get('rows_dropped_short', 0)}, "
        f"bad rows: {s['rows_bad']}",
        f"  embedded: passages {emb['passages'].get('encoded', 0)} new / {emb['passages'].get('cached', 0)} cached, "
        f"queries {emb['queries'].get('encoded', 0)} new / {emb['queries'].get('cached', 0)} cached",
    ])
