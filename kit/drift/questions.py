"""The question log: how well the deployed model serves the questions users ask now, against the eval questions
it was chosen on. No labels: a question is served well when its best passage scores high (top-1 similarity) and
stands out of the rest (the gap between the top-1 and the top-10 scores). A logged question is served poorly
when its top-1 score is below the ``question_quantile`` of the eval questions' top-1 scores; a one-sided
binomial test (scipy) asks whether more logged questions than that quantile are, and Mann-Whitney U tests
(scipy) compare the two groups' top-1 scores and gaps as wholes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io import KitError

KEYS = ("text", "query", "question")


def _question(obj, where: str) -> str:
    if isinstance(obj, dict):
        obj = next((obj[k] for k in KEYS if isinstance(obj.get(k), str)), None)
    if not isinstance(obj, str) or not obj.strip():
        raise KitError(f"{where}: expected a question: a JSON object with a text, query or question field, or a "
                       f"JSON string")
    return obj.strip()


def read_log(path) -> list[str]:
    """Questions of a log, one a line: JSONL ({text|query|question} or a JSON string), plain lines for other
    suffixes. An unreadable line is an error naming ``file:line``; a log without a question is an error."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: question log not found" if not path.exists() else f"{path}: is not a file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KitError(f"{path}: cannot read the question log ({e.strerror})") from None
    as_json = path.suffix.lower() in (".jsonl", ".json", ".ndjson")
    out = []
    for n, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise KitError(f"{path}:{n}: not UTF-8 text (byte {e.start + 1} of the line); save the log as UTF-8") \
                from None
        if not line:
            continue
        if as_json:
            try:
                line = _question(json.loads(line), f"{path}:{n}")
            except json.JSONDecodeError as e:
                raise KitError(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
        out.append(line)
    if not out:
        raise KitError(f"{path}: the question log holds no question")
    return out


def top_scores(queries: np.ndarray, passages: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indexes) of each question's top ``k`` passages, best first."""
    from ..search import top_k

    return top_k(queries, passages, k)


def served(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 scores, top-1 minus top-10 scores) per question."""
    return scores[:, 0], scores[:, 0] - scores[:, min(9, scores.shape[1] - 1)]


def _describe(x: np.ndarray) -> dict:
    return {"median": round(float(np.median(x)), 4), "p10": round(float(np.quantile(x, 0.1)), 4),
            "p90": round(float(np.quantile(x, 0.9)), 4)}


def compare(eval_scores: np.ndarray, log_scores: np.ndarray, quantile: float) -> dict:
    """The logged questions' top-1 scores and gaps against the eval questions'."""
    from scipy.stats import binomtest, mannwhitneyu

    e1, egap = served(eval_scores)
    l1, lgap = served(log_scores)
    top1 = mannwhitneyu(l1, e1, alternative="less")
    threshold = float(np.quantile(e1, quantile))
    poorly = int((l1 < threshold).sum())
    expected = max(float((e1 < threshold).mean()), 1e-6)
    return {"eval": len(e1), "logged": len(l1), "quantile": quantile, "threshold": round(threshold, 4),
            "poorly_served": poorly, "share": round(poorly / len(l1), 4), "expected_share": round(expected, 4),
            "p_value": float(binomtest(poorly, len(l1), expected, alternative="greater").pvalue),
            "top1": {"eval": _describe(e1), "logged": _describe(l1), "mann_whitney_p": float(top1.pvalue),
                     # the chance a logged question's top-1 is below an eval question's (U counts the pairs above)
                     "effect": round(1.0 - float(top1.statistic) / (len(l1) * len(e1)), 4)},
            "gap": {"eval": _describe(egap), "logged": _describe(lgap),
                    "mann_whitney_p": float(mannwhitneyu(lgap, egap, alternative="less").pvalue)}}


def effect(logged_top1: np.ndarray, eval_top1: np.ndarray) -> float:
    """The chance a logged question's top-1 score is below an eval question's, ties counted half (0.5 = no
    difference): the Mann-Whitney U effect of :func:`compare`, computed by sorting so that a bootstrap can call it
    a thousand times."""
    e = np.sort(np.asarray(eval_top1, dtype=np.float64))
    right = np.searchsorted(e, logged_top1, side="right")
    left = np.searchsorted(e, logged_top1, side="left")
    return float(((len(e) - right).sum() + 0.5 * (right - left).sum()) / (len(logged_top1) * len(e)))


def new_documents(eval_scores: np.ndarray, log_scores: np.ndarray, on_new: np.ndarray, alpha: float,
                  seed: int, min_questions: int) -> dict:
    """The logged questions whose best passage is a new chunk (users asking about the new documents) against the
    eval questions: their effect and its one-sided upper (1 - ``alpha``) bootstrap bound (scipy.stats.bootstrap
    over both samples, percentile method). A bound below the effect floor *shows* they are served as well; a
    non-significant Mann-Whitney test alone would only fail to show that they are not, which a small log always
    does."""
    from scipy.stats import bootstrap

    e1, l1 = served(eval_scores)[0], served(log_scores)[0][on_new]
    out = {"logged": int(on_new.sum()), "min_questions": min_questions, "alpha": alpha}
    if len(l1) < min_questions:
        return {**out, "effect": None, "effect_upper": None}
    res = bootstrap((l1, e1), effect, paired=False, vectorized=False, confidence_level=1 - 2 * alpha,
                    n_resamples=2000, method="percentile", random_state=np.random.default_rng(seed))
    return {**out, "effect": round(effect(l1, e1), 4), "effect_upper": round(float(res.confidence_interval.high), 4),
            "top1": _describe(l1)}


def worst(questions: list[str], scores: np.ndarray, idx: np.ndarray, passages: list[dict], n: int) -> list[dict]:
    """The ``n`` logged questions with the lowest top-1 scores, each with the passage it would get."""
    top1, gap = served(scores)
    out = []
    for i in np.argsort(top1, kind="stable")[:n]:
        p = passages[int(idx[i, 0])]
        out.append({"question": questions[i], "top1": round(float(top1[i]), 4), "gap": round(float(gap[i]), 4),
                    "passage_id": p.get("id"), "doc": p.get("doc"), "passage": p["text"][:160]})
    return out
