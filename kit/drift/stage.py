"""`kit drift`: is re-training worth it? The deployed model's training material against the documents now.

Steps (each a function): :func:`current_corpus` (prep of the config's ``prep.inputs`` into WORKDIR/drift/
corpus.jsonl, skipped when the inputs and settings are unchanged since the last drift run) -> the document
diff (:mod:`kit.drift.documents`) -> :func:`embed` (the training corpus and the new chunks through the kit's
embedding cache: a second run encodes nothing) -> the signals (:mod:`kit.drift.signals`, and
:mod:`kit.drift.questions` for a question log) -> the verdict (:mod:`kit.drift.verdict`) -> WORKDIR/drift/
report.json and report.md, written atomically.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..encode.options import layer_options
from ..formats import load_eval, read_corpus, read_eval_info, titled
from ..io import KitError, ReadReport, read_json, stable_hash, write_json, write_text
from ..options import to_section, validated
from . import questions as qlog
from .documents import DocumentDiff, chunk_key, diff
from .options import DriftFiles, DriftOptions
from .report import markdown
from .signals import coverage, distribution
from .verdict import NO_RETRAIN, coverage_vote, decide, distribution_vote, question_vote, served_as_well
from .workdir import check_workdir, deployed_model, load_pipeline

EXIT = {NO_RETRAIN: 0, "retrain": 3}


@dataclass
class DriftResult:
    verdict: str
    reasons: list[str]
    report_path: Path
    markdown_path: Path
    report: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT[self.verdict]

    def summary(self) -> str:
        """The reasons, where the report is, and the verdict on the last line."""
        return "\n".join([*self.reasons, f"deployed model: {self.report['deployed']['name']} "
                          f"({self.report['deployed']['path']})", f"report: {self.markdown_path}",
                          f"verdict: {self.verdict}"])


def _prep_fingerprint(p, prep_opts) -> str:
    from ..pipeline import path_fingerprint

    reads = {str(x): path_fingerprint(Path(x)) for x in prep_opts.inputs}
    return stable_hash({"inputs": reads, "settings": to_section(prep_opts), "model": p.model})


def current_corpus(p, out_dir: Path, progress: bool) -> tuple[Path, list[str]]:
    """The config's documents as they are now, prepped as training prepped them; (corpus path, prep's notes)."""
    from ..prep import prep
    from ..prep.inputs import find_inputs

    o = p.options["prep"]
    if not o.inputs:
        raise KitError(f"{p.config_path}: prep.inputs is empty: no documents to compare with the training corpus")
    files, _ = find_inputs(o.inputs, o.exclude)
    if not files:
        raise KitError(f"prep.inputs ({', '.join(o.inputs)}) holds no document any more (PDF, TXT, MD, DOCX, JSONL): "
                       f"every file is gone; restore them or fix prep.inputs in {p.config_path.name}")
    if o.tokenizer == "model":
        o = replace(o, tokenizer=p.model)
    o = replace(o, progress=progress)
    corpus, stamp = out_dir / "corpus.jsonl", out_dir / "prep.json"
    fp = _prep_fingerprint(p, o)
    if corpus.is_file() and stamp.is_file() and read_json(stamp).get("fingerprint") == fp:
        return corpus, []
    notes: list[str] = []
    result = prep(o.inputs, corpus, o, echo=notes.append)
    if result.chunks == 0 or not corpus.is_file():
        raise KitError(f"prep.inputs ({', '.join(o.inputs)}): no chunk could be made of the documents now "
                       f"({result.files_failed} of {result.files} files failed)" + (f": {notes[0]}" if notes else ""))
    write_json(stamp, {"fingerprint": fp, "chunks": result.chunks, "files": result.files})
    return corpus, notes


def passage_texts(encoder, chunks: list[dict]) -> list[str]:
    """Chunks as the bench embeds passages (title before text, the model's passage prefix)."""
    return [encoder.spec.passage_text(titled(c.get("title"), c["text"])) for c in chunks]


def make_encoder(model: str, o: DriftOptions, progress: bool):
    from ..embed import LocalEncoder

    return LocalEncoder(model, batch_size=o.batch_size, precision=o.precision, cache=o.cache_path,
                        progress=progress)


def _encode(encoder, texts: list[str], desc: str, layer) -> tuple[np.ndarray, dict]:
    """(vectors, counts) in this process, or through the encoding layer (kit/encode/: torchrun or Ray workers) when
    the config has an `encode:` section. The signals need the whole matrices: they are read back from the shards."""
    if layer is None:
        vecs = encoder.encode(texts, desc=desc)
        return vecs, {"engine": "in-process", **{k: encoder.last_stats.get(k, 0) for k in ("unique", "cached", "encoded")}}
    from ..encode import encode_texts

    enc = encode_texts(texts, encoder=encoder, kind="passage", options=layer, desc=desc)
    try:
        return enc.vectors.to_array(), {"engine": layer.engine, "workers": layer.workers,
                                        **{k: enc.stats.get(k, 0) for k in ("unique", "cached", "encoded")}}
    finally:
        enc.cleanup()


def embed(encoder, old: list[dict], current: list[dict], d: DocumentDiff, layer=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(training chunk vectors, new chunk vectors, encoding counts: a second run encodes nothing). ``layer``: the
    `encode:` section (kit.encode.EncodeOptions) or None."""
    ref, counts = _encode(encoder, passage_texts(encoder, old), "embedding the training corpus", layer)
    if not d.new_chunks:
        return ref, np.zeros((0, ref.shape[1]), dtype=np.float32), counts
    new, more = _encode(encoder, passage_texts(encoder, [current[i] for i in d.new_chunks]), "embedding new chunks",
                        layer)
    return ref, new, {k: v + more[k] if k in ("unique", "cached", "encoded") else v for k, v in counts.items()}


def _examples(cov, old, current, d: DocumentDiff, n: int) -> list[dict]:
    """The least covered new chunks, each with its nearest training chunk."""
    order = np.argsort(cov.nearest, kind="stable")[:n]
    return [{"doc": current[d.new_chunks[i]].get("doc"), "chunk": current[d.new_chunks[i]]["text"][:160],
             "similarity": cov.nearest[i], "nearest_doc": old[cov.nearest_index[i]].get("doc"),
             "nearest": old[cov.nearest_index[i]]["text"][:160]} for i in order]


def signals(old, current, d, ref, new, o: DriftOptions) -> tuple[dict, list]:
    """Coverage and the distribution test, as report sections and votes."""
    cov = dist = None
    why_not = ""
    if len(new):
        docs = [str(c.get("doc") or c["id"]) for c in old]
        cov = coverage(ref, docs, [chunk_key(c) for c in old], new, o.coverage_quantile, o.calibration_sample, o.seed)
        if len(new) >= o.min_new_chunks:
            dist = distribution(ref, new, o.sample_size, o.permutations, o.folds, o.seed)
        else:
            why_not = f"{len(new)} new chunks, fewer than min_new_chunks {o.min_new_chunks}"
    votes = [coverage_vote(cov, o.alpha, o.coverage_min_share), distribution_vote(dist, o.alpha, o.min_auc, why_not)]
    section = {"coverage": None if cov is None else {
        **{k: v for k, v in cov.__dict__.items() if k not in ("nearest", "nearest_index")},
        "least_covered": _examples(cov, old, current, d, o.examples)},
        "distribution": None if dist is None else dict(dist.__dict__)}
    return section, votes


def questions(p, log: str, encoder, old, current, ref, new, d, o: DriftOptions) -> tuple[dict, tuple]:
    """The logged questions against the eval questions, both searched over the training and new chunks; (section,
    the log's vote: None when it may not vote)."""
    wd = p.wd
    if not wd.eval.is_dir():
        raise KitError(f"{wd.eval}: no eval questions to compare the log {log} with (the split stage writes them)")
    logged = qlog.read_log(log)
    es = load_eval(str(wd.eval))
    if not es.query_texts:
        raise KitError(f"{wd.eval}: holds no eval question to compare the log {log} with")
    passages = old + [current[i] for i in d.new_chunks]
    vecs = np.concatenate([ref, new]) if len(new) else ref
    e_scores, _ = qlog.top_scores(encoder.encode_queries(es.query_texts, desc="embedding eval questions"), vecs)
    l_scores, l_idx = qlog.top_scores(encoder.encode_queries(logged, desc="embedding logged questions"), vecs)
    cmp = qlog.compare(e_scores, l_scores, o.question_quantile)
    cmp["worst"] = qlog.worst(logged, l_scores, l_idx, passages, o.worst_questions)
    cmp["new_documents"] = qlog.new_documents(e_scores, l_scores, l_idx[:, 0] >= len(old), o.served_alpha, o.seed,
                                              o.min_new_questions)
    kind = read_eval_info(wd.eval).get("questions", "unknown")
    cmp["eval_questions"] = kind
    may = o.question_vote == "always" or (o.question_vote == "auto" and kind == "real")
    why = ("question_vote: never" if o.question_vote == "never" else
           f"the eval questions were {kind}, not real ones; set drift.question_vote: always to let it vote")
    return cmp, question_vote(cmp, o.alpha, o.question_min_effect, may, why)


def trained_on(p, old: list[dict]) -> dict:
    """The training material: the corpus, the training rows (mined ones, else split's) and the eval set."""
    wd = p.wd
    data = next((f for f in (wd.train_hn, wd.train) if f.is_file()), None)
    rows = sum(1 for line in data.open(encoding="utf-8") if line.strip()) if data else None
    return {"corpus": str(wd.corpus), "chunks": len(old), "documents": len({str(c.get('doc') or c['id']) for c in old}),
            "training_rows": rows, "training_rows_file": str(data) if data else None,
            "eval": str(wd.eval) if wd.eval.is_dir() else None}


def run(files: DriftFiles, options: DriftOptions | None = None, *, progress: bool = True) -> DriftResult:
    """Compare the deployed model's training material with the documents now; write the report, return the
    verdict (``retrain`` | ``no_retrain``) with its reasons."""
    t0 = time.perf_counter()
    p = load_pipeline(files.config)
    o = validated(options or p.options["drift"], "drift")
    check_workdir(p)
    if files.log:
        qlog.read_log(files.log)             # a bad log is one line before anything expensive runs
    deployed = deployed_model(p)
    out_dir = p.wd.root / "drift"
    corpus, notes = current_corpus(p, out_dir, progress)
    old, current = read_corpus(p.wd.corpus, ReadReport()), read_corpus(corpus, ReadReport())
    d = diff(old, current)
    encoder = make_encoder(deployed.path, o, progress)
    ref, new, enc = embed(encoder, old, current, d, layer_options(p))
    section, votes = signals(old, current, d, ref, new, o)
    section["questions"], served = None, None
    if files.log:
        section["questions"], vote = questions(p, files.log, encoder, old, current, ref, new, d, o)
        votes.append(vote)
        served = served_as_well(section["questions"]["new_documents"], o.question_min_effect,
                                vote[0] is not None and o.questions_decide,
                                section["coverage"] and section["coverage"]["share"], o.decide_max_uncovered)
    verdict, reasons = decide(votes, d.line(), served)
    report = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "config": str(p.config_path), "verdict": verdict,
              "reasons": reasons, "deployed": deployed.__dict__, "trained_on": trained_on(p, old),
              "documents": {**d.counts(), "new_documents": d.new, "changed_documents": d.changed,
                            "moved_documents": d.moved, "gone_documents": d.gone, "current_corpus": str(corpus)},
              **section, "options": to_section(o), "log": files.log, "prep_notes": notes[:50], "embedding": enc,
              "seconds": round(time.perf_counter() - t0, 1)}
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "report.md", markdown(report))
    return DriftResult(verdict, reasons, out_dir / "report.json", out_dir / "report.md", report)
