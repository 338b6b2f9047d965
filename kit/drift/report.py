"""WORKDIR/drift/report.md from the report's JSON: the verdict and its reasons first, then each signal with
its numbers and examples."""
from __future__ import annotations

ROWS = 30     # documents listed per table (the JSON has them all)


def _cell(s) -> str:
    return str(s if s is not None else "").replace("|", "\\|").replace("\n", " ")


def _documents(r: dict) -> list[str]:
    d = r["documents"]
    out = ["## Documents (by content hash)", "",
           f"{d['new']} new, {d['changed']} changed, {d['gone']} gone, {d['moved']} moved or renamed, "
           f"{d['unchanged']} unchanged; {d['new_chunks']} new chunks (texts the training corpus lacks).", ""]
    for title, key, cols in (("New", "new_documents", ("doc", "chunks", "new_chunks")),
                             ("Changed", "changed_documents", ("doc", "chunks_before", "chunks", "new_chunks")),
                             ("Gone", "gone_documents", ("doc", "chunks")),
                             ("Moved or renamed", "moved_documents", ("doc", "was", "chunks"))):
        rows = d[key]
        if not rows:
            continue
        out += [f"**{title}** ({len(rows)})", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(_cell(x.get(c)) for c in cols) + " |" for x in rows[:ROWS]]
        out += ([f"| ... {len(rows) - ROWS} more (report.json) |"] if len(rows) > ROWS else []) + [""]
    return out


def _coverage(r: dict) -> list[str]:
    c = r.get("coverage")
    if not c:
        return ["## Coverage", "", "No new chunk: nothing to measure.", ""]
    out = ["## Coverage", "",
           f"A new chunk is uncovered when its nearest training chunk is less similar than {c['quantile']:.0%} of "
           f"the training chunks are to their nearest chunk of another document (calibrated on "
           f"{c['calibration_chunks']} training chunks: similarity < {c['threshold']:.4f}).", "",
           f"Uncovered: **{c['uncovered']} of {c['new_chunks']} ({c['share']:.1%})**, against "
           f"{c['calibration_share']:.1%} of the training chunks; Fisher's exact test p = {c['p_value']:.3g}.", "",
           "Least covered new chunks:", "", "| similarity | document | chunk | nearest training chunk |",
           "|---|---|---|---|"]
    out += [f"| {x['similarity']:.3f} | {_cell(x['doc'])} | {_cell(x['chunk'])} | {_cell(x['nearest_doc'])}: "
            f"{_cell(x['nearest'])} |" for x in c["least_covered"]]
    return out + [""]


def _distribution(r: dict) -> list[str]:
    d = r.get("distribution")
    if not d:
        return ["## Distribution test", "", "Not run (too few new chunks).", ""]
    auc = "n/a" if d["auc"] is None else f"{d['auc']:.3f}"
    return ["## Distribution test", "",
            f"{d['new_sample']} new chunks against {d['training_sample']} training chunks (seeded samples): "
            f"MMD² {d['mmd2']:.5f} (RBF kernel, bandwidth {d['bandwidth']:.3f}), permutation test p = "
            f"{d['p_value']:.3g} ({d['permutations']} permutations); a logistic-regression domain classifier "
            f"tells them apart with cross-validated AUC {auc} (0.5 = not at all).", ""]


def _questions(r: dict) -> list[str]:
    q = r.get("questions")
    if not q:
        return []
    out = ["## Question log", "", f"{q['logged']} logged questions against {q['eval']} eval questions "
           f"({q['eval_questions']}), both searched over the training and new chunks.", "",
           "| | eval median | logged median | eval p10 | logged p10 | Mann-Whitney p (logged lower) |",
           "|---|---|---|---|---|---|"]
    for k, label in (("top1", "top-1 score"), ("gap", "top-1 minus top-10")):
        s = q[k]
        out.append(f"| {label} | {s['eval']['median']:.3f} | {s['logged']['median']:.3f} | {s['eval']['p10']:.3f} "
                   f"| {s['logged']['p10']:.3f} | {s['mann_whitney_p']:.3g} |")
    out += ["", f"Served poorly (top-1 below the eval questions' {q['quantile']:.0%} quantile, {q['threshold']:.4f}): "
            f"**{q['poorly_served']} ({q['share']:.1%})**, expected {q['expected_share']:.1%}; binomial p = "
            f"{q['p_value']:.3g}.", "", "Worst served:", "", "| top-1 | gap | question | best passage |", "|---|---|---|---|"]
    out += [f"| {w['top1']:.3f} | {w['gap']:.3f} | {_cell(w['question'])} | {_cell(w['doc'])}: {_cell(w['passage'])} |"
            for w in q["worst"]]
    n = q.get("new_documents")
    if n:
        out += ["", f"Questions about the new documents (best passage a new chunk): **{n['logged']}**"
                + (f"; chance one scores below an eval question {n['effect']:.3f}, at most {n['effect_upper']:.3f} "
                   f"(one-sided {1 - n['alpha']:.0%} bootstrap bound), median top-1 {n['top1']['median']:.3f}."
                   if n.get("effect") is not None else f", fewer than {n['min_questions']}: not compared.")]
    return out + [""]


def markdown(r: dict) -> str:
    dep, tr = r["deployed"], r["trained_on"]
    lines = [f"# Drift report: **{r['verdict']}**", "", f"Config: {r['config']} ({r['created']})", "", "## Reasons", ""]
    lines += [f"- {x}" for x in r["reasons"]]
    lines += ["", "## Deployed model", "", f"{dep['name']}: {dep['path']} (from {dep['source']})"
              + (f". {dep['note']}" if dep.get("note") else ""), "",
              f"Trained on: {tr['chunks']} chunks of {tr['documents']} documents ({tr['corpus']})"
              + (f", {tr['training_rows']} training rows" if tr.get("training_rows") is not None else "") + ".", ""]
    lines += _documents(r) + _coverage(r) + _distribution(r) + _questions(r)
    return "\n".join(lines).rstrip() + "\n"
