"""The documents as they are now, chunked as the deployed model's corpus was, with prep run only on files that are
new or changed.

An input file is known by its content hash. A file the deployed version's ``files.json`` lists with the same hash
keeps its chunks from that version's corpus; a file prepped by an earlier update (same hash, same name, same prep
settings) comes from WORKDIR/updates/prepped/; only the rest goes through prep. The result is compared with the
deployed version's corpus document by document (:mod:`kit.drift.documents`): new, changed, moved, gone, and the new
chunks (those of new and changed documents whose text the old corpus lacks): only they get questions.
"""
from __future__ import annotations

from pathlib import Path

from ..drift.documents import diff
from ..formats import read_corpus
from ..io import KitError, ReadReport, file_hash, read_json, read_jsonl, stable_hash, write_json, write_jsonl
from ..options import to_section
from ..prep.stage import dedupe_ids

NOT_CHUNKING = ("inputs", "progress", "workers")


def settings_key(o) -> str:
    """What makes prep's chunks of one file differ: every prep setting but where the files are and how fast."""
    return stable_hash({k: v for k, v in to_section(o).items() if k not in NOT_CHUNKING})


def input_files(o) -> list[Path]:
    """The files prep.inputs name now; one line when there are none."""
    from ..prep.inputs import find_inputs

    if not o.inputs:
        raise KitError("prep.inputs is empty: no documents to update the model with")
    files, _ = find_inputs(o.inputs, o.exclude)
    if not files:
        raise KitError(f"prep.inputs ({', '.join(map(str, o.inputs))}) holds no document any more (PDF, TXT, MD, DOCX, "
                       f"JSONL): every file is gone; restore them or fix prep.inputs; the deployed model stays")
    return files


def _prep_missing(todo: list, o, out: Path, echo) -> dict[str, list[dict]]:
    """Prep of the files no record covers: {file: chunks}; each file's chunks kept under its hash for next time
    (not a file that failed: its failure may be passing)."""
    from ..prep import prep

    tmp = out / ".prepped.jsonl"
    result = prep([f for f, _, _ in todo], tmp, o, echo=echo)
    by_path = {r.path: r for r in result.reports}
    got = {}
    for f, key, cached in todo:
        r = by_path.get(key)
        got[key] = list(r.rows) if r is not None else []
        if r is not None and not r.failed:
            write_jsonl(cached, got[key])
    for x in (tmp, tmp.with_name(".prepped.stats.json")):
        x.unlink(missing_ok=True)
    return got


def assemble(o, base: list[dict], ledger: dict | None, out: Path, cache: Path, echo) -> tuple[list[dict], dict, dict]:
    """(chunks of every current document, the new files.json, counts of files reused / from cache / prepped)."""
    from ..prep.document import display

    files = input_files(o)
    by_id = {c["id"]: c for c in base}
    key = settings_key(o)
    rows_of: dict[str, list[dict]] = {}
    hashes, todo, counts = {}, [], {"files": len(files), "reused": 0, "from_cache": 0, "prepped": 0}
    for f in files:
        name, h = display(f), file_hash(f, 32)
        hashes[name] = h
        old = (ledger or {}).get(name) or {}
        cached = cache / f"{stable_hash([key, h, f.name], 24)}.jsonl"
        if old.get("hash") == h and all(i in by_id for i in old.get("ids") or []):
            rows_of[name], counts["reused"] = [by_id[i] for i in old.get("ids") or []], counts["reused"] + 1
        elif cached.is_file():
            rows_of[name], counts["from_cache"] = read_jsonl(cached), counts["from_cache"] + 1
        else:
            todo.append((f, name, cached))
    if todo:
        echo(f"[documents] prepping {len(todo)} new or changed file(s) of {len(files)}")
        rows_of.update(_prep_missing(todo, o, out, echo))
        counts["prepped"] = len(todo)
    rows, new_ledger = [], {}
    for f in files:
        chunk_rows = [dict(r) for r in rows_of[display(f)]]
        rows += chunk_rows
        new_ledger[display(f)] = {"hash": hashes[display(f)], "rows": chunk_rows}
    dedupe_ids(rows)
    new_ledger = {k: {"hash": v["hash"], "ids": [r["id"] for r in v["rows"]]} for k, v in new_ledger.items()}
    if not rows:
        raise KitError(f"prep.inputs ({', '.join(map(str, o.inputs))}): no chunk could be made of the documents now "
                       f"({len(files)} files); the deployed model stays")
    return rows, new_ledger, counts


def update_corpus(o, base_corpus: Path, base_ledger: Path | None, out: Path, cache: Path, echo) -> dict:
    """Write out/corpus.jsonl (every current document), out/new_corpus.jsonl (the chunks that need questions),
    out/files.json and out/documents.json (the diff); return the summary."""
    base = read_corpus(base_corpus, ReadReport())
    ledger = read_json(base_ledger) if base_ledger is not None else None
    if ledger is None:
        echo("[documents] the deployed version records no file hashes: every file is prepped once (later updates "
             "prep only what changed)")
    rows, new_ledger, counts = assemble(o, base, ledger, out, cache, echo)
    d = diff(base, rows)
    write_jsonl(out / "corpus.jsonl", rows)
    write_jsonl(out / "new_corpus.jsonl", [rows[i] for i in d.new_chunks])
    write_json(out / "files.json", new_ledger)
    stale = sorted({x["doc"] for x in d.gone} | {x["doc"] for x in d.changed})
    summary = {"line": d.line(), "counts": d.counts(), "files": counts, "stale_documents": stale,
               "new_documents": d.new, "changed_documents": d.changed, "moved_documents": d.moved,
               "gone_documents": d.gone}
    write_json(out / "documents.json", summary)
    echo(f"[documents] {d.line()}; files: {counts['reused']} unchanged, {counts['from_cache']} from an earlier "
         f"update, {counts['prepped']} prepped")
    return {k: summary[k] for k in ("line", "counts", "files")}
