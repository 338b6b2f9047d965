"""``log_report.md``: the weak-spot report a person reads (the same content as log_report.json)."""
from __future__ import annotations


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _topics(topics: list[dict]) -> list[str]:
    lines = ["| topic (its words) | questions | asked | no answer the judge could confirm | mean top-1 | e.g. |",
             "|---|---|---|---|---|---|"]
    for t in topics:
        example = (t["examples"] or [""])[0].replace("|", "/")
        lines.append(f"| {' '.join(t['terms']) or t['topic']} | {t['questions']} | {t['asked']} | "
                     f"{_pct(t['unanswered_share'])} | {t['mean_top1']:.3f} | {example[:60]} |")
    return lines


def markdown(rep: dict) -> str:
    s = rep["stats"]
    lines = ["# Question log: labels and weak spots", "",
             f"{s['rows_read']} logged rows -> {s['questions']} questions after merging duplicates "
             f"({s['asked']} asks in all). Judge: {rep['judge']} (threshold {rep['threshold']:g}).", "",
             f"- labelled (join training as real questions): {s['labelled']} ({s['by_click']} decided by a click, "
             f"{s['human']} by a person)",
             f"- no answer the judge could confirm among the candidates: {s['no_answer']}",
             f"- eval questions (never train): {s['eval_questions']}",
             f"- judge failed (retried on the next run): {s['failed']}",
             f"- personal data masked: {', '.join(f'{k} {v}' for k, v in s['masked'].items()) or 'none found'}",
             f"- answered share of judged questions: {_pct(rep['served']['answered_share'])}; median top-1 score "
             f"{rep['served']['top1_median']:.3f}, median lead over the next candidate "
             f"{rep['served']['margin_median']:.3f}", "",
             f"Labels: {rep['labels']} — audit them there: edit `label` (`[]` rejects, passage ids of corpus.jsonl "
             f"accept); the next `kit run` trains on your labels.", "",
             f"## The topics the model serves worst ({len(rep['topics'])} of {rep['topic_count']})", ""]
    lines += _topics(rep["topics"])
    lines += ["", "## Questions no passage answers (documents to add?)", "",
              "Judged without an answer among the candidates, the least served first "
              "(lowest top-1 similarity).", ""]
    for m in rep["missing"]:
        lines.append(f"- {m['query']} (asked {m['count']}×, top-1 {m['top1']:.3f}; nearest: {m['nearest']})")
    if not rep["missing"]:
        lines.append("- none")
    if rep["problems"]:
        lines += ["", f"## Problems ({len(rep['problems'])})", ""] + [f"- {p}" for p in rep["problems"][:50]]
    return "\n".join(lines) + "\n"
