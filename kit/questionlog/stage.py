"""The logs stage: a question log -> judged labels (``log_labels.jsonl``) that join training as real questions,
and a report of where the model is weak (``log_report.json`` / ``.md``).

Steps (each a module): read and mask (:mod:`.reader`, :mod:`.privacy`) -> merge duplicates and near-duplicates,
counting them, and set aside the eval questions (:mod:`.merge`) -> candidates from the model and BM25
(:mod:`.candidates`) -> a judge decides which answer, clicks lowering its bar (:mod:`.judges`,
:mod:`.llm_judge`) -> rows, with a person's earlier corrections kept (:mod:`.labels`) -> weak spots
(:mod:`.weak_spots`, :mod:`.report`). Nothing is printed here: :meth:`LogResult.summary` is the caller's to show.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..formats import read_corpus
from ..io import KitError, ReadReport, iter_jsonl, write_json, write_text
from ..split.questions import ChunkIndex
from . import weak_spots
from .candidates import Candidates, find_candidates
from .judges import Verdict, offline_verdicts, with_clicks
from .labels import apply_corrections, label_row, read_corrections, write_labels
from .merge import LogQuestion, merge_questions, near_eval
from .options import LogFiles, LogOptions
from .privacy import mask
from .reader import read_log
from .report import markdown


@dataclass
class LogResult:
    labels_path: Path
    report_path: Path
    stats: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)     # "file:line: message"
    failures: list[str] = field(default_factory=list)     # "question id: why" (LLM judge)
    llm: dict = field(default_factory=dict)
    incomplete: dict = field(default_factory=dict)        # {failed, total, what}: `kit run` retries them

    def summary(self) -> str:
        s = self.stats
        lines = [f"log: {s['rows_read']} rows -> {s['questions']} questions ({s['asked']} asks); "
                 f"{s['labelled']} labelled by {s['judge']} ({s['by_click']} by a click, {s['human']} by a person), "
                 f"{s['no_answer']} without an answer, {s['eval_questions']} eval questions kept out of training"
                 + (f", {s['failed']} failed" if s["failed"] else ""),
                 f"labels: {self.labels_path} (audit and edit `label`; the next run trains on it)",
                 f"weak spots: {self.report_path.with_suffix('.md')}"]
        if s["masked"]:
            lines.append("masked: " + ", ".join(f"{k} {v}" for k, v in s["masked"].items()))
        if self.llm:
            m = self.llm
            cost = (f"{m['cost']:.4f} {m['currency']}" if m["cost"] is not None
                    else f"unknown (no price for {m['model']})")
            lines.append(f"llm judge: {m['model']} at {m['base_url']}: {m['api_calls']} requests, {m['answered']} "
                         f"answered, {m['cache_hits']} from cache; tokens {m['prompt_tokens']} + "
                         f"{m['completion_tokens']}; estimated cost {cost}")
        for title, items in ((f"{len(self.problems)} problem(s):", self.problems),
                             (f"{len(self.failures)} question(s) not judged (run again to retry only those):",
                              self.failures)):
            if items:
                lines += [title] + [f"  {p}" for p in items[:20]]
                if len(items) > 20:
                    lines.append(f"  ... and {len(items) - 20} more (see {self.report_path})")
        return "\n".join(lines)

    def record(self) -> dict:
        """What `kit run` keeps in the manifest."""
        return {"labels": str(self.labels_path), "report": str(self.report_path), **self.stats,
                "problems": self.problems[:20], "failures": self.failures[:20], "llm": self.llm,
                "incomplete": self.incomplete}


def eval_questions(path, opts: LogOptions, report: ReadReport) -> list[str]:
    """The eval questions' texts (masked as the log is): a BEIR/custom-eval folder or a JSONL of questions."""
    if not path:
        return []
    path = Path(path)
    if path.is_dir():
        qfile = path / "test_queries.jsonl" if (path / "test_queries.jsonl").exists() else path / "queries.jsonl"
        texts = [o.get("text") for _, o in iter_jsonl(qfile, report)]
    else:
        texts = [o.get("query", o.get("question")) for _, o in iter_jsonl(path, report)]
    return [mask(t, opts.mask)[0] for t in texts if isinstance(t, str) and t.strip()]


def _clicked(q: LogQuestion, index: ChunkIndex, row_of: dict[str, int], report: ReadReport) -> set[int]:
    """Corpus rows of the passages a question's users clicked (by chunk id, source id or text)."""
    rows: set[int] = set()
    path, _, line = q.where.rpartition(":")
    for (kind, value), _n in q.clicks.items():
        if kind == "id":
            ids = [value] if value in index.by_id else index.by_source.get(value, [])
            problem = None if ids else f"clicked passage id {value[:40]!r} is not in the corpus; click ignored"
        else:
            ids, how = index.match_answer(value, 0.6)
            problem = None if ids else f"clicked passage text not found in the corpus ({how}); click ignored"
        if problem:
            report.add(path, int(line) if line.isdigit() else 0, problem)
        rows |= {row_of[i] for i in ids}
    return rows


def _llm_verdicts(questions, chunks, shown, clicked, todo: list[int], opts: LogOptions):
    from .llm_judge import make_judge, render, usage

    judge = make_judge(opts)
    items = [{"id": questions[i].id, "text": render(questions[i].query, [(chunks[j].get("title") or "",
                                                                          chunks[j]["text"]) for j in shown[i]])}
             for i in todo]
    try:
        answers = judge.run(items, progress=opts.progress)
    finally:
        judge.cache.close()
    failed = dict(judge.stats.failures)
    out: dict[int, Verdict] = {}
    for i in todo:
        raw = answers.get(questions[i].id)
        if raw is None:
            out[i] = Verdict({j: 0.0 for j in shown[i]}, failed=failed.get(questions[i].id, "no answer"))
            continue
        scores = {j: 0.0 for j in shown[i]} | {shown[i][a - 1]: raw.confidence for a in raw.answers}
        out[i] = with_clicks(Verdict(scores, reason=raw.reason), clicked[i], opts)
    return out, usage(judge), [f"{questions[i].id}: {failed[questions[i].id]}" for i in todo
                                if questions[i].id in failed]


def judge_all(questions, chunks, cands: Candidates, clicked, is_eval, opts: LogOptions):
    """(verdict per question -- None for eval questions --, shown candidates, llm usage, failures)."""
    shown = [cands.fused(i, opts.shown, extra=sorted(clicked[i])) for i in range(len(questions))]
    todo = [i for i in range(len(questions)) if not is_eval[i]]
    if opts.judge == "llm":
        by_index, llm, failures = _llm_verdicts(questions, chunks, shown, clicked, todo, opts)
    else:
        offline = offline_verdicts(cands, clicked, opts)
        by_index, llm, failures = {i: offline[i] for i in todo}, {}, []
    return [by_index.get(i) for i in range(len(questions))], shown, llm, failures


def _status(v: Verdict | None) -> str:
    if v is None:
        return "eval_question"
    return "failed" if v.failed else ("labelled" if v.accepted else "no_answer")


def build_rows(questions, chunks, cands: Candidates, clicked, verdicts, shown, opts: LogOptions) -> list[dict]:
    rows = []
    for i, (q, v) in enumerate(zip(questions, verdicts)):
        top1, margin = cands.top1(i)
        signals = {"top1": top1, "margin": margin, "judge": opts.judge_name(), "threshold": opts.bar()}
        rows.append(label_row(q, chunks, shown[i], (cands.dense_ranks(i), cands.bm25_ranks(i)), v, _status(v),
                              signals, clicked[i]))
    return rows


def _stats(rows_read, rows: list[dict], info: dict, human: int, opts: LogOptions) -> dict:
    status = [r["status"] for r in rows]
    return {"rows_read": len(rows_read), "questions": len(rows), "asked": sum(r["count"] for r in rows),
            "merged": len(rows_read) - len(rows), "judge": opts.judge_name(), "threshold": opts.bar(),
            **{s: status.count(s) for s in ("labelled", "no_answer", "failed")},
            "eval_questions": status.count("eval_question"),
            "by_click": sum(r["by"] == "click" and r["status"] == "labelled" for r in rows), "human": human,
            "clicked_questions": sum(bool(r["clicked"]) for r in rows), "masked": info["masked"],
            "files": info["files"], "encodings": info["encodings"]}


def _inputs(files: LogFiles, opts: LogOptions, report: ReadReport):
    if not opts.paths():
        raise KitError("logs.path is required: the question log (JSONL or CSV files, or a folder of them)")
    if opts.judge == "llm" and not (opts.preset or (opts.base_url and opts.model)):
        raise KitError("logs.judge llm needs logs.preset (openai, dashscope, deepseek) or logs.base_url and "
                       "logs.model")
    rows_read, info = read_log(opts.paths(), opts, report)
    if not rows_read:
        raise KitError(f"{', '.join(opts.paths())}: no usable question in the log"
                       + (f"\n{report.summary()}" if report else ""))
    chunks = read_corpus(files.corpus, report)
    return rows_read, info, chunks


def run(files: LogFiles, options: LogOptions, *, progress: bool = True) -> LogResult:
    opts = replace(options, progress=progress)
    report = ReadReport()
    rows_read, info, chunks = _inputs(files, opts, report)
    questions = merge_questions(rows_read, opts.near_duplicate)
    index = ChunkIndex(chunks)
    row_of = {c["id"]: n for n, c in enumerate(chunks)}
    clicked = [_clicked(q, index, row_of, report) for q in questions]
    is_eval = near_eval([q.query for q in questions], eval_questions(files.eval_queries, opts, report),
                        opts.near_duplicate)
    cands = find_candidates([q.query for q in questions], chunks, files.model, opts)
    verdicts, shown, llm, failures = judge_all(questions, chunks, cands, clicked, is_eval, opts)
    rows = build_rows(questions, chunks, cands, clicked, verdicts, shown, opts)
    human = apply_corrections(rows, read_corrections(files.labels, set(row_of), report))
    write_labels(files.labels, rows)
    stats = _stats(rows_read, rows, info, human, opts)
    problems = [str(e) for e in report.errors]
    rep = {"labels": str(files.labels), "judge": opts.judge_name(), "threshold": opts.bar(), "stats": stats,
           "served": weak_spots.served(rows), "topic_count": 0, "topics": [],
           "missing": weak_spots.missing(rows, opts.missing), "problems": problems, "llm": llm}
    all_topics = weak_spots.topics(rows, cands.question_vectors, opts.topics, opts.seed)
    rep.update(topic_count=len(all_topics), topics=all_topics[:opts.worst_topics])
    report_path = Path(files.report)
    write_json(report_path, rep)
    write_text(report_path.with_suffix(".md"), markdown(rep))
    judged = len([v for v in verdicts if v is not None])
    incomplete = {"failed": len(failures), "total": judged, "what": "log questions (LLM judge)"} if failures else {}
    return LogResult(Path(files.labels), report_path, stats, problems, failures, llm, incomplete)
