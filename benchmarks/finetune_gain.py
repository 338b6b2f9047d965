"""Fine-tuning gain of a `kit run`, against its named peer, the base model: every candidate's MRR@10 and
recall@10 on the held-out documents as a ratio of base (overall and per question generator), the general-set
numbers of the run's bench, and how much of the fine-tuned model's gain each merge keeps.

    .venv/bin/python benchmarks/finetune_gain.py runs/demo
    .venv/bin/python benchmarks/finetune_gain.py runs/variant --checkpoints   # also every saved checkpoint

Candidates are the models of the run's bench (RUN/report/results.json) or, for a run stopped after training
(`kit run CONFIG --until train`), the base and fine-tuned models. Domain metrics are recomputed here from the
run's eval folder with the kit's own providers and pytrec_eval-backed metrics (embeddings come from the kit
cache, so after `make demo` this takes seconds); general-set numbers are read from the run's bench. The
generator of each eval query is taken from RUN/pairs.jsonl.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def domain_metrics(run: Path, specs: dict[str, str], k: int = 10) -> tuple[dict, dict[str, int]]:
    """{model: {"mrr@10": .., "recall@10": .., "mrr@10 <generator>": ..}}, {generator: queries}."""
    from kit.bench.metrics import evaluate, run_from_ranking
    from kit.providers import make_provider
    from kit.formats import load_eval

    es = load_eval(run / "data" / "eval")
    generator = {}
    with open(run / "pairs.jsonl", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            generator[o["query"]] = o.get("generator", "?")
    groups: dict[str, list[str]] = defaultdict(list)
    for qid, text in zip(es.query_ids, es.query_texts):
        groups[generator.get(text, "?")].append(qid)
    out = {}
    for name, spec in specs.items():
        _, idx = make_provider(spec, progress=False).search(es.query_texts, es.doc_texts, k)
        ranking = run_from_ranking(es.query_ids, es.doc_ids, idx)
        row = {m: v for m, v in evaluate(ranking, es.qrels, [k]).items() if m in (f"mrr@{k}", f"recall@{k}")}
        for g, qids in sorted(groups.items()):
            row[f"mrr@{k} {g}"] = evaluate({q: ranking[q] for q in qids}, {q: es.qrels[q] for q in qids}, [k])[f"mrr@{k}"]
        out[name] = row
    return out, {g: len(q) for g, q in sorted(groups.items())}


def checkpoint_specs(run: Path) -> dict[str, str]:
    """Training checkpoints hold weights and tokenizer but not the kit's model spec (pooling, prefixes): give
    each a copy of the finished model's kit_model.json so it embeds exactly like the fine-tuned model."""
    ft = run / "models" / "finetuned"
    out = {}
    for ck in sorted(ft.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        spec_file = ck / "kit_model.json"
        if not spec_file.exists():
            spec_file.write_text((ft / "kit_model.json").read_text(encoding="utf-8"), encoding="utf-8")
        out[f"fine-tuned@{ck.name.split('-')[1]}"] = f"local:{ck}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a kit run's workdir (e.g. runs/demo)")
    ap.add_argument("--checkpoints", action="store_true", help="also evaluate every saved training checkpoint")
    args = ap.parse_args()
    run = args.run
    results_file = run / "report" / "results.json"
    bench = json.loads(results_file.read_text(encoding="utf-8")) if results_file.exists() else None
    if bench:
        specs = {n: e["spec"] for n, e in bench["models"].items()}
    else:
        model = json.loads((run / "manifests" / "train.json").read_text(encoding="utf-8"))["model"]
        specs = {"base": f"local:{model}", "fine-tuned": f"local:{run / 'models' / 'finetuned'}"}
    if args.checkpoints:
        specs.update(checkpoint_specs(run))
    if "base" not in specs:
        raise SystemExit(f"{run}: no model named 'base' among {', '.join(specs)}")
    dom, groups = domain_metrics(run, specs)

    def general(name, metric):
        e = (bench or {}).get("models", {}).get(name) or {}
        return ((e.get("general") or {}).get("metrics") or {}).get(metric)

    base, b_gen = dom["base"]["mrr@10"], general("base", "mrr@10")
    ft_gain = dom["fine-tuned"]["mrr@10"] - base if "fine-tuned" in dom else None
    print(f"{run}: held-out documents, {sum(groups.values())} queries ("
          + ", ".join(f"{g} {n}" for g, n in groups.items()) + ")"
          + (f"; general set {bench['sets']['general']['path']}" if bench and bench["sets"].get("general") else ""))
    head = ["model", "MRR@10", "x base", "recall@10", "x base"] + [f"MRR@10 {g}" for g in groups] + \
           ["general MRR@10", "x base", "general recall@10", "share of ft gain"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, d in dom.items():
        row = [name, f"{d['mrr@10']:.4f}", f"{d['mrr@10'] / base:.3f}",
               f"{d['recall@10']:.4f}", f"{d['recall@10'] / dom['base']['recall@10']:.3f}"]
        row += [f"{d[f'mrr@10 {g}']:.4f}" for g in groups]
        g, gr = general(name, "mrr@10"), general(name, "recall@10")
        row += [f"{g:.4f}" if g is not None else "–", f"{g / b_gen:.3f}" if g is not None and b_gen else "–",
                f"{gr:.4f}" if gr is not None else "–"]
        share = (d["mrr@10"] - base) / ft_gain if ft_gain and name.startswith("merged") else None
        row.append(f"{share:.0%}" if share is not None else "–")
        print("| " + " | ".join(row) + " |")
    if ft_gain is not None:
        ratio = dom["fine-tuned"]["mrr@10"] / base
        print(f"\nfine-tuned / base MRR@10 on held-out documents: {ratio:.3f} "
              f"(aim >= 1.15: {'met' if ratio >= 1.15 else 'not met'})")
        for name, d in dom.items():
            g = general(name, "mrr@10")
            if name.startswith("merged") and g is not None and b_gen:
                print(f"{name}: keeps {(d['mrr@10'] - base) / ft_gain:.0%} of the fine-tuned gain; general set "
                      f"{g / b_gen - 1:+.1%} vs base (aim: within 1%)")


if __name__ == "__main__":
    main()
