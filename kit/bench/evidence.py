"""What the report shows besides the metrics: where the eval questions come from and how much they share the
gold passages' words, and example questions on which two models disagree."""
from __future__ import annotations

from ..formats import EvalSet, read_eval_info as eval_info

__all__ = ["disagreements", "eval_info", "lexical_overlap"]


def lexical_overlap(es: EvalSet) -> float:
    """Mean share of a question's words (jieba) that appear in its gold passages: near 1 for questions made
    from the passages (ict, keywords), much lower for questions real users type."""
    from ..providers import jieba_tokens

    shares = []
    for qid, q in zip(es.query_ids, es.query_texts):
        words = set(jieba_tokens(q))
        gold = set().union(*(set(jieba_tokens(es.doc_text(d))) for d in es.qrels[qid]))
        if words:
            shares.append(len(words & gold) / len(words))
    return round(sum(shares) / len(shares), 4) if shares else 0.0


def _clip(t: str, n: int = 160) -> str:
    t = " ".join(t.split())
    return t if len(t) <= n else t[:n] + "…"


def disagreements(results: dict, es: EvalSet, a: str, b: str, n: int = 6) -> list[dict]:
    """Questions where model ``b`` finds a gold passage first and ``a`` does not (and the reverse), with the
    gold passage and each model's top passage: a manager can read what the numbers mean."""
    models = results["models"]
    if a not in models or b not in models or a == b:
        return []
    pa, pb = models[a]["domain"]["per_query"], models[b]["domain"]["per_query"]
    text = es.doc_text
    wins, losses = [], []
    for i, qid in enumerate(es.query_ids):
        ra, rb = pa["top"][i][:1], pb["top"][i][:1]
        ga, gb = bool(ra) and ra[0] in es.qrels[qid], bool(rb) and rb[0] in es.qrels[qid]
        if ga == gb:
            continue
        row = {"question": es.query_texts[i], "gold": _clip(text(next(iter(es.qrels[qid])))),
               a: _clip(text(ra[0])) if ra else "", b: _clip(text(rb[0])) if rb else "",
               "winner": b if gb else a}
        (wins if gb else losses).append(row)
    return wins[: n - n // 3] + losses[: n // 3]


def examples_markdown(results: dict) -> list[str]:
    ex = results.get("examples") or {}
    rows, (a, b) = ex.get("rows") or [], (ex.get("models") or [None, None])
    if not rows:
        return []
    out = ["", f"## 例子 Examples: where {b} and {a} disagree", "",
           f"Questions where one finds a gold passage first and the other does not (top passage of each shown).", ""]
    for r in rows:
        out += [f"- **{r['question']}** — right: {r['winner']}", f"  - gold: {r['gold']}",
                f"  - {a}: {r[a]}", f"  - {b}: {r[b]}"]
    return out


def examples_html(results: dict) -> str:
    import html

    ex = results.get("examples") or {}
    rows, (a, b) = ex.get("rows") or [], (ex.get("models") or [None, None])
    if not rows:
        return ""
    esc = html.escape
    body = "".join(f"<tr><td>{esc(r['question'])}</td><td>{esc(r['winner'])}</td><td>{esc(r['gold'])}</td>"
                   f"<td>{esc(r[a])}</td><td>{esc(r[b])}</td></tr>" for r in rows)
    return (f"<h2>例子 Examples: where {esc(b)} and {esc(a)} disagree</h2><table class='ex'><thead><tr><th>question</th>"
            f"<th>right</th><th>gold passage</th><th>{esc(a)} top passage</th><th>{esc(b)} top passage</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")
