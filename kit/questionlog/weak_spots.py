"""Where the model is weak, from the log alone: for each question its top-1 score, the lead of the top-1 over the
next candidate and whether the judge found an answer among the candidates; the topics (k-means clusters of the
question embeddings, scikit-learn) the model serves worst; and the questions no passage answers -- the documents
the company is missing.

A topic's name is its most distinctive words (class-based TF-IDF: each topic's questions as one document, jieba
tokens, scikit-learn's TfidfVectorizer), so a user reads "试用期 工资 解除" rather than "cluster 7".
"""
from __future__ import annotations

import math

import numpy as np


def topic_count(n: int, wanted: int | None) -> int:
    if n < 4:
        return 1
    k = wanted if wanted else round(math.sqrt(n / 2))
    return max(2, min(k, n // 2))


def cluster(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A topic number per question."""
    if k <= 1:
        return np.zeros(len(vectors), dtype=np.int64)
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(vectors)


def words(text: str) -> list[str]:
    """jieba's precise cut (not the search cut BM25 uses, whose sub-words would name a topic 成年 未成年 成年人),
    words of two characters or more."""
    import jieba

    return [w.lower() for w in jieba.lcut(text) if len(w.strip()) > 1 and any(c.isalnum() for c in w)]


def topic_terms(questions: list[str], topics: np.ndarray, k: int, n_terms: int = 4) -> list[list[str]]:
    """The ``n_terms`` most distinctive words of each topic."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [" ".join(q for q, t in zip(questions, topics) if t == c) for c in range(k)]
    vec = TfidfVectorizer(tokenizer=words, token_pattern=None, lowercase=False)
    try:
        m = vec.fit_transform(docs)
    except ValueError:   # no word at all (questions of digits and punctuation)
        return [[] for _ in range(k)]
    vocab = vec.get_feature_names_out()
    out = []
    for c in range(k):
        row = m[c].toarray().ravel()
        top = [vocab[i] for i in np.argsort(-row, kind="stable")[:n_terms] if row[i] > 0]
        out.append(top)
    return out


def _topic(c: int, members: list[int], rows: list[dict], terms: list[str]) -> dict:
    judged = [i for i in members if rows[i]["status"] in ("labelled", "no_answer")]
    asked = sum(rows[i]["count"] for i in members)
    w_judged = sum(rows[i]["count"] for i in judged)
    unanswered = sum(rows[i]["count"] for i in judged if rows[i]["status"] == "no_answer")
    top1 = sum(rows[i]["top1"] * rows[i]["count"] for i in members) / max(1, asked)
    examples = sorted(members, key=lambda i: -rows[i]["count"])[:3]
    return {"topic": c, "terms": terms, "questions": len(members), "asked": asked,
            "unanswered_share": round(unanswered / w_judged, 4) if w_judged else None,
            "mean_top1": round(top1, 4), "examples": [rows[i]["query"] for i in examples]}


def topics(rows: list[dict], vectors: np.ndarray, wanted: int | None, seed: int) -> list[dict]:
    """Every topic, the worst served first: the largest share of (asked) questions without an answer among the
    candidates, then the lowest mean top-1 score."""
    k = topic_count(len(rows), wanted)
    labels = cluster(vectors, k, seed)
    terms = topic_terms([r["query"] for r in rows], labels, k)
    out = [_topic(c, [i for i in range(len(rows)) if labels[i] == c], rows, terms[c]) for c in range(k)]
    out = [t for t in out if t["questions"]]
    return sorted(out, key=lambda t: (-(t["unanswered_share"] or 0.0), t["mean_top1"]))


def missing(rows: list[dict], n: int) -> list[dict]:
    """Questions no candidate answers, the least served first (lowest top-1 score, then the most asked): what the
    documents do not cover."""
    lost = [r for r in rows if r["status"] == "no_answer"]
    lost.sort(key=lambda r: (r["top1"], -r["count"]))
    return [{"query": r["query"], "count": r["count"], "top1": r["top1"], "margin": r["margin"],
             "nearest": (r["candidates"][0]["title"] or r["candidates"][0]["text"][:40]) if r["candidates"] else None}
            for r in lost[:n]]


def served(rows: list[dict]) -> dict:
    """The log as a whole: how its questions are served (judged questions only for the answer share)."""
    judged = [r for r in rows if r["status"] in ("labelled", "no_answer")]
    top1 = np.array([r["top1"] for r in rows]) if rows else np.zeros(1)
    margin = np.array([r["margin"] for r in rows]) if rows else np.zeros(1)
    return {"answered_share": round(sum(r["status"] == "labelled" for r in judged) / len(judged), 4) if judged
            else None,
            "top1_median": round(float(np.median(top1)), 4), "margin_median": round(float(np.median(margin)), 4)}
