"""Single-query encode latency, measured so that the number means something.

A latency taken while the machine is busy says more about the machine than about the model (once 1,620 ms
against 31 ms idle), so: the model is warmed up first (the first calls load weights and open connections),
each query is timed alone with a random suffix so no cache answers it, the spread is kept (p5/p50/p95, min,
max), and the CPU share used by *other* work is sampled right before and after. Above ``BUSY_SHARE`` the
measurement is repeated after a pause; if the machine stays busy the result is kept but flagged ``busy``, the
report says so, and it is not remembered (the next bench measures again).

The CPU share is sampled over a short interval while this process sleeps (psutil), not read from the load
average: the 1-minute load average still counts the corpus encoding this very process has just finished.
"""
from __future__ import annotations

import os
import statistics
import time
import uuid

from ..io import read_json, write_json

BUSY_SHARE = 0.5     # share of all cores busy with other work above which a measurement is not trusted
WARMUP = 2           # untimed calls first: model load, lazy initialisation, connection set-up
TRIES = 3            # measurements attempted while the machine is busy
PAUSE_S = 3.0        # wait between tries


def cpu_busy_share(interval: float = 0.3) -> float:
    """Share (0..1) of the machine's CPU time spent over ``interval`` seconds while this process sleeps."""
    try:
        import psutil
        return psutil.cpu_percent(interval=interval) / 100.0
    except ImportError:   # no psutil: the load average, the best the standard library offers
        return min(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def summarize(times_ms: list[float]) -> dict:
    t = sorted(times_ms)

    def pct(p: float) -> float:
        return round(t[min(len(t) - 1, int(round(p * (len(t) - 1))))], 2)

    return {"p50_ms": round(statistics.median(t), 2), "p5_ms": pct(0.05), "p95_ms": pct(0.95),
            "min_ms": round(t[0], 2), "max_ms": round(t[-1], 2),
            "stdev_ms": round(statistics.stdev(t), 2) if len(t) > 1 else 0.0, "samples": len(t)}


def measure(encode_one, texts: list[str], repeats: int, probe=cpu_busy_share, busy_share: float = BUSY_SHARE,
            tries: int = TRIES, pause: float = PAUSE_S, warmup: int = WARMUP) -> dict:
    """Time ``encode_one(text)`` ``repeats`` times after ``warmup`` untimed calls, on an idle machine if one can
    be had within ``tries``; ``probe()`` gives the CPU share used by other work."""
    if not texts or repeats < 1:
        raise ValueError("latency needs at least one text and one repeat")
    for i in range(warmup):
        encode_one(f"{texts[i % len(texts)]} {uuid.uuid4().hex[:6]}")
    attempt, load, times = 0, 0.0, []
    while attempt < tries:
        attempt += 1
        before = probe()
        times = []
        for i in range(repeats):
            text = f"{texts[i % len(texts)]} {uuid.uuid4().hex[:6]}"
            t0 = time.perf_counter()
            encode_one(text)
            times.append((time.perf_counter() - t0) * 1000)
        load = max(before, probe())
        if load <= busy_share:
            break
        if attempt < tries:
            time.sleep(pause)
    return {**summarize(times), "warmup": warmup, "tries": attempt, "cpu_busy_share": round(load, 2),
            "busy": load > busy_share}


def _memo_path():
    from ..embed import default_cache_path
    return default_cache_path().parent / "bench_perf.json"


def measure_latency(provider, queries: list[str], samples: int) -> dict:
    """Latency of ``provider`` (single-query ``encode_queries``), remembered per model when measured on an idle
    machine, so a re-run whose embeddings are all cached does not load the model again."""
    memo_path = _memo_path()
    memo = read_json(memo_path) if memo_path.exists() else {}
    key = "latency:" + provider.cache_key
    if key in memo and "p5_ms" in memo[key]:
        return {**memo[key], "remembered": True}
    out = measure(lambda t: provider.encode_queries([t]), queries, samples)
    if not out["busy"]:
        memo = read_json(memo_path) if memo_path.exists() else {}
        memo[key] = out
        write_json(memo_path, memo)
    return out
