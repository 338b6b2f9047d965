"""`kit export`: the kit's training rows and eval set in the layouts other tools read.

- ``sentence-transformers/``: training rows as (anchor, positive, negative_1..negative_N) columns, the layout
  sentence-transformers' trainer and its MultipleNegativesRankingLoss take (one row per positive), as JSONL and
  as a Hugging Face ``datasets`` folder (``load_from_disk``); ``prompts.json`` holds the model's instructions as
  the trainer's ``prompts`` argument when a model is named.
- ``beir/``: the eval set as BEIR (``corpus.jsonl`` with ``_id``/``title``/``text``, ``queries.jsonl``,
  ``qrels/test.tsv``), which BEIR's GenericDataLoader, MTEB-style loaders and the kit itself read.
- ``ir-evaluator/ir_evaluator.json``: ``queries``, ``corpus``, ``relevant_docs`` as sentence-transformers'
  InformationRetrievalEvaluator takes them (passages as ``title text``, as ``kit bench`` embeds them).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..formats import load_eval, read_training_rows
from ..io import KitError, ReadReport, atomic_open, iter_jsonl, write_json, write_jsonl, write_text
from .options import ExportFiles, ExportOptions  # noqa: F401


@dataclass
class ExportResult:
    out_dir: Path
    written: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return "\n".join(self.lines + [f"wrote {p}" for p in self.written])


def negative_columns(counts: list[int], requested: int | None, keep: float = 0.9) -> int:
    """N for negative_1..negative_N: as asked, else the largest N that at least ``keep`` of the rows have."""
    if requested is not None:
        return int(requested)
    for n in sorted(set(counts), reverse=True):
        if sum(c >= n for c in counts) >= keep * len(counts):
            return n
    return 0


def st_rows(rows: list[dict], n: int) -> tuple[list[dict], int]:
    """(anchor, positive, negative_1..n) rows, one per positive; rows with fewer than n negatives are dropped."""
    out, dropped = [], 0
    for r in rows:
        neg = r.get("neg") or []
        if len(neg) < n:
            dropped += 1
            continue
        for pos in r["pos"]:
            out.append({"anchor": r["query"], "positive": pos, **{f"negative_{i + 1}": neg[i] for i in range(n)}})
    return out, dropped


def export_training(train_path, out: Path, options: ExportOptions, result: ExportResult) -> None:
    report = ReadReport()
    rows = [r for _, r in read_training_rows(train_path, report)]
    if not rows:
        raise KitError(f"{train_path}: no usable training rows" + (f"\n{report.summary()}" if report else ""))
    n = negative_columns([len(r.get("neg") or []) for r in rows], options.negatives)
    table, dropped = st_rows(rows, n)
    if not table:
        raise KitError(f"{train_path}: no row has {n} negatives; lower --negatives")
    st_dir = out / "sentence-transformers"
    write_jsonl(st_dir / "train.jsonl", table)
    result.written.append(str(st_dir / "train.jsonl"))
    if options.datasets_folder:
        from datasets import Dataset   # installed with FlagEmbedding / sentence-transformers

        Dataset.from_list(table).save_to_disk(str(st_dir / "train"))
        result.written.append(str(st_dir / "train"))
    if options.model:
        from ..registry import resolve

        spec = resolve(options.model)
        prompts = {"anchor": spec.query_instruction, "positive": spec.passage_instruction,
                   **{f"negative_{i + 1}": spec.passage_instruction for i in range(n)}}
        write_json(st_dir / "prompts.json", {k: v for k, v in prompts.items() if v})
        result.written.append(str(st_dir / "prompts.json"))
    bad = f"; {len(report.errors)} unreadable line(s) skipped" if report else ""
    cols = "anchor, positive" + (f", negative_1..negative_{n}" if n else "")
    result.lines.append(f"training: {len(table)} rows ({cols}) from {len(rows)} query rows"
                        + (f"; {dropped} dropped with fewer than {n} negatives" if dropped else "") + bad)


def _titles(eval_dir: Path) -> dict[str, str]:
    out = {}
    for _, o in iter_jsonl(eval_dir / "corpus.jsonl", ReadReport()):
        key = o.get("id", o.get("_id"))
        if key is not None and isinstance(o.get("title"), str):
            out[str(key)] = o["title"].strip()
    return out


def export_eval(eval_dir, out: Path, result: ExportResult) -> None:
    es = load_eval(eval_dir, passage_titles=False)
    titles = _titles(Path(eval_dir))
    beir = out / "beir"
    write_jsonl(beir / "corpus.jsonl", ({"_id": d, "title": titles.get(d, ""), "text": t}
                                        for d, t in zip(es.doc_ids, es.doc_texts)))
    write_jsonl(beir / "queries.jsonl", ({"_id": q, "text": t} for q, t in zip(es.query_ids, es.query_texts)))
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(["query-id", "corpus-id", "score"])
    for q in es.query_ids:
        for d, rel in es.qrels[q].items():
            w.writerow([q, d, rel])
    with atomic_open(beir / "qrels" / "test.tsv") as f:
        f.write(buf.getvalue())
    ir = {"queries": dict(zip(es.query_ids, es.query_texts)),
          "corpus": {d: f"{titles.get(d, '')} {t}".strip() for d, t in zip(es.doc_ids, es.doc_texts)},
          "relevant_docs": {q: sorted(d for d, r in es.qrels[q].items() if r > 0) for q in es.query_ids}}
    write_json(out / "ir-evaluator" / "ir_evaluator.json", ir, indent=None)
    result.written += [str(beir), str(out / "ir-evaluator" / "ir_evaluator.json")]
    skipped = sum(es.dropped.values())
    result.lines.append(f"eval: {len(es.query_ids)} queries, {len(es.doc_ids)} passages, "
                        f"{sum(len(v) for v in es.qrels.values())} qrels"
                        + (f"; {skipped} question(s) without a relevant passage left out" if skipped else ""))


USAGE = """# Exported by `kit export`

sentence-transformers training (`sentence-transformers/`):

```python
from datasets import load_from_disk   # or load_dataset("json", data_files="sentence-transformers/train.jsonl")
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
train = load_from_disk("sentence-transformers/train")
model = SentenceTransformer("BASE_MODEL")
trainer = SentenceTransformerTrainer(model=model, train_dataset=train,
                                     loss=losses.MultipleNegativesRankingLoss(model))
trainer.train()   # prompts.json (if present) goes to SentenceTransformerTrainingArguments(prompts=...)
```

BEIR (`beir/`): `GenericDataLoader(data_folder="beir").load(split="test")`; `kit bench --eval beir` reads it too.

InformationRetrievalEvaluator (`ir-evaluator/ir_evaluator.json`):

```python
import json
from sentence_transformers.evaluation import InformationRetrievalEvaluator
d = json.load(open("ir-evaluator/ir_evaluator.json", encoding="utf-8"))
ev = InformationRetrievalEvaluator(d["queries"], d["corpus"], {q: set(v) for q, v in d["relevant_docs"].items()})
print(ev(model))   # pass query_prompt= / corpus_prompt= from prompts.json for models with instructions
```
"""


def export(files: ExportFiles, options: ExportOptions | None = None) -> ExportResult:
    """Write ``files.train`` and/or ``files.eval`` in the layouts above under ``files.output``."""
    options = options or ExportOptions()
    if not files.train and not files.eval:
        raise KitError("nothing to export: give --train FILE and/or --eval FOLDER")
    out = Path(files.output)
    result = ExportResult(out)
    if files.train:
        export_training(files.train, out, options, result)
    if files.eval:
        export_eval(files.eval, out, result)
    write_text(out / "README.md", USAGE)
    return result
