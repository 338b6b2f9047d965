"""Training data as FlagEmbedding will read it: every row checked, the group size fitted to the negatives."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..formats import norm_text, read_corpus, read_training_rows, titled, write_training_rows
from ..io import KitError, ReadReport


@dataclass
class DataReport:
    path: str                     # the file FlagEmbedding will read (original or the clean copy)
    source: str                   # the file the user gave
    rows: int                     # rows that will be trained on
    dropped: int                  # rows dropped (invalid or too few negatives)
    train_group_size: int         # possibly lowered
    requested_group_size: int
    errors: ReadReport
    notes: list[str] = field(default_factory=list)
    clean_rows: list[dict] | None = None   # the rows of the clean copy, when one is needed

    def summary(self) -> str:
        lines = [f"training data {self.source}: {self.rows} rows usable, {self.dropped} dropped, "
                 f"train_group_size {self.train_group_size}"]
        lines += self.notes
        if self.errors:
            lines.append(self.errors.summary())
        return "\n".join(lines)


def fit_group_size(negs: list[int], group: int, min_keep: float) -> tuple[int, str | None]:
    """The largest group size (<= ``group``) that at least ``min_keep`` of the rows support, and a note."""
    need = group - 1
    supported = sum(1 for n in negs if n >= need)
    if supported >= min_keep * len(negs):
        return group, None
    negs = sorted(negs)
    k = negs[int(math.floor((1 - min_keep) * len(negs)))]
    new_group = max(1, min(group, k + 1))
    return new_group, (f"lowered train_group_size from {group} to {new_group}: only {supported}/{len(negs)} "
                       f"rows have {need} negatives (mine more negatives to keep {group})")


def title_passages(rows: list[dict], corpus_path) -> tuple[list[dict], int, int]:
    """Rows whose positives and negatives carry their chunk's title, as the benchmark and the index embed them
    (:func:`kit.formats.titled`). A text's chunk is the row's ``pos_ids``/``neg_ids`` entry at its position (an
    ``ict`` positive is its chunk less the question's sentence, so only its id finds it), else the chunk with that
    text, exactly or after normalisation; a text with no chunk (a hand-written positive) stays as it is. Returns
    (rows, texts titled, texts without a chunk)."""
    by_id: dict[str, str] = {}
    exact: dict[str, str] = {}    # chunk text -> title ("" for a chunk without one)
    loose: dict[str, str] = {}
    for c in read_corpus(corpus_path):
        title = c.get("title") or ""
        by_id[str(c["id"])] = title
        exact.setdefault(c["text"], title)
        loose.setdefault(norm_text(c["text"]), title)
    titled_n = unknown = 0

    def one(t: str, cid) -> str:
        nonlocal titled_n, unknown
        title = by_id.get(str(cid)) if cid is not None else None
        if title is None:
            title = exact.get(t)
        if title is None:
            title = loose.get(norm_text(t))
        if title is None:
            unknown += 1
            return t
        if title:
            titled_n += 1
        return titled(title, t)

    def ids(row: dict, key: str, n: int) -> list:
        got = row.get(key) if isinstance(row.get(key), list) else []
        return got if len(got) == n else [None] * n   # ids only when they pair up with the texts one to one

    out = []
    for r in rows:
        pos, neg = r["pos"], r.get("neg") or []
        out.append({**r, "pos": [one(t, i) for t, i in zip(pos, ids(r, "pos_ids", len(pos)))],
                    "neg": [one(t, i) for t, i in zip(neg, ids(r, "neg_ids", len(neg)))]})
    return out, titled_n, unknown


def validate_training_data(path, train_group_size: int, clean_path=None, min_keep: float = 0.9,
                           write: bool = True, corpus=None, force_copy: bool = False) -> DataReport:
    """Check every row; lower train_group_size or drop rows so that every row has group-1 negatives.

    FlagEmbedding samples ``train_group_size - 1`` negatives per query and silently repeats them when a row
    has fewer (and crashes on none), so the fix happens here, visibly: keep the largest group size that at
    least ``min_keep`` of the rows support, drop the rest. If anything changed, a clean copy is written to
    ``clean_path`` (unless ``write`` is false: a dry run writes nothing) and :attr:`DataReport.path` points to it;
    ``force_copy`` writes it even when nothing changed (its file name then carries meaning to FlagEmbedding).
    """
    path = Path(path)
    report = ReadReport()
    rows = [r for _, r in read_training_rows(path, report)]
    invalid = len(report.errors)
    if not rows:
        raise KitError(f"{path}: no usable training rows" + (f"\n{report.summary()}" if report else ""))
    group = int(train_group_size)
    if group < 1:
        raise KitError(f"train_group_size must be >= 1, got {group}")
    group, note = fit_group_size([len(r.get("neg") or []) for r in rows], group, min_keep)
    notes = [note] if note else []
    need = group - 1
    kept = [r for r in rows if len(r.get("neg") or []) >= need]
    if len(kept) < len(rows):
        notes.append(f"dropped {len(rows) - len(kept)} row(s) with fewer than {need} negatives")
    dropped = invalid + (len(rows) - len(kept))
    used, clean = path, None
    titled_n = 0
    if corpus is not None:
        kept, titled_n, unknown = title_passages(kept, corpus)
        notes.append(f"passages as the benchmark embeds them: {titled_n} texts with their chunk's title"
                     + (f", {unknown} not found in {corpus} (kept as they are)" if unknown else ""))
    # FlagEmbedding asserts that every row has a 'neg' list, even when it samples none from it.
    if force_copy or dropped or titled_n or any("neg" not in r for r in kept):
        if clean_path is None:
            raise KitError(f"{path}: rows had to be fixed but no place for a clean copy was given")
        clean = [{**r, "neg": r.get("neg") or []} for r in kept]
        used = Path(clean_path)
        if write:
            write_training_rows(used, clean)
            notes.append(f"wrote a clean copy for FlagEmbedding: {used}")
        else:
            notes.append(f"a clean copy for FlagEmbedding would be written to {used}")
    return DataReport(path=str(used), source=str(path), rows=len(kept), dropped=dropped,
                      train_group_size=group, requested_group_size=int(train_group_size),
                      errors=report, notes=notes, clean_rows=clean)


def data_summary(path) -> dict:
    """What the model card says about the training data: questions per generator, documents, negatives per row."""
    from collections import Counter

    rows = [r for _, r in read_training_rows(path, ReadReport())]
    gens = Counter(str(r.get("generator") or "unknown") for r in rows)
    docs = {r.get("doc") for r in rows if r.get("doc")}
    negs = [len(r.get("neg") or []) for r in rows]
    return {"rows": len(rows), "generators": dict(gens.most_common()), "documents": len(docs) or None,
            "negatives_per_row": round(sum(negs) / len(negs), 1) if negs else 0}
