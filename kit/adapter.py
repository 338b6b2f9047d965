"""Query adapters: a (linear or residual two-layer) map on query embeddings over a frozen provider.

Document embeddings are computed ONCE through the provider (so they come from the embedding cache and
an API corpus is paid for once); only the small query map trains. LlamaIndex's adapter engine re-embeds
every epoch; we do not. Loss: softmax over the positive, the in-batch positives and the row's hard
negatives (InfoNCE with temperature). Early stopping on a held-out slice of queries, by MRR@10 against the
full corpus.
"""
from __future__ import annotations

import dataclasses
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.io import KitError, ReadReport, read_json, read_jsonl, write_json


@dataclass
class AdapterOptions:
    epochs: int = 100               # cheap: documents are frozen, an epoch is a pass over query vectors
    lr: float = 1e-4
    batch_size: int = 64
    temperature: float = 0.02
    hidden: int = 0                 # > 0: two-layer residual variant q + W2 relu(W1 q)
    weight_decay: float = 0.0
    identity_reg: float = 0.01      # penalty on ||W - I||^2 (linear map): keeps the map near the base space
    heldout_fraction: float = 0.1   # of queries, for early stopping
    # query: random held-out queries; doc: whole held-out documents. Measured on the demo statutes (benchmarks/
    # RESULTS.md): a document slice is one small statute, too few queries and too particular to steer by -- it
    # never rose above the identity -- while with random queries the map trains and improves MRR@10 on the two
    # statutes it never saw (0.733 -> 0.767).
    heldout_by: str = "query"
    # Held-out MRR first dips for a few epochs while the map leaves the identity, then climbs for dozens
    # (measured on the demo statutes: best epoch ~60 of 100); a short patience stops in the dip at the identity.
    patience: int = 15
    max_negatives: int = 7
    seed: int = 0
    base_url: str | None = None
    dimensions: int | None = None


@dataclass
class AdapterResult:
    out_dir: str
    base_spec: str
    epochs_run: int
    best_epoch: int
    heldout_mrr10_base: float
    heldout_mrr10_adapter: float
    n_train: int
    n_heldout: int
    history: list = field(default_factory=list)


def _build_module(dim: int, hidden: int):
    import torch
    from torch import nn

    class QueryMap(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = hidden
            if hidden > 0:
                self.up = nn.Linear(dim, hidden)
                self.down = nn.Linear(hidden, dim)
                nn.init.zeros_(self.down.weight)   # residual starts as identity
                nn.init.zeros_(self.down.bias)
            else:
                self.linear = nn.Linear(dim, dim)
                with torch.no_grad():
                    self.linear.weight.copy_(torch.eye(dim))   # identity init: epoch 0 == base model
                    self.linear.bias.zero_()

        def forward(self, q):
            if self.hidden > 0:
                return q + self.down(torch.relu(self.up(q)))
            return self.linear(q)

    return QueryMap()


def mrr_at_k(q: np.ndarray, d: np.ndarray, relevant: list[set[int]], k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant doc within the top k (exact inner-product search)."""
    import faiss
    index = faiss.IndexFlatIP(d.shape[1])
    index.add(np.ascontiguousarray(d, dtype=np.float32))
    _, idx = index.search(np.ascontiguousarray(q, dtype=np.float32), k)
    total = 0.0
    for row, rel in zip(idx, relevant):
        for rank, j in enumerate(row, 1):
            if int(j) in rel:
                total += 1.0 / rank
                break
    return total / max(len(relevant), 1)


def _heldout_split(rows: list[dict], fraction: float, rng: random.Random,
                   by_doc: bool = True) -> tuple[list[int], list[int]]:
    """Early-stopping slice. When rows name their document, whole documents are held out, so the stopping
    point measures transfer to documents the adapter never saw (a random-query slice rewards memorising the
    training documents); otherwise random queries. Documents are picked (in random order) only while the slice
    stays within 1.5x the target size, so one big document never swallows most of the training data; when no
    document fits, random queries are held out instead."""
    n_held = max(1, int(round(len(rows) * fraction)))
    sizes = Counter(r["doc"] for r in rows if r.get("doc"))
    if by_doc and len(sizes) >= 2:
        docs = sorted(sizes)
        rng.shuffle(docs)
        held_docs: set[str] = set()
        count = 0
        for d in docs:
            if count >= n_held:
                break
            if count + sizes[d] <= 1.5 * n_held and len(held_docs) < len(docs) - 1:
                held_docs.add(d)
                count += sizes[d]
        held = [i for i, r in enumerate(rows) if r["doc"] in held_docs]
        train = [i for i, r in enumerate(rows) if r["doc"] not in held_docs]
        if held and train:
            return held, train
    order = list(range(len(rows)))
    rng.shuffle(order)
    return order[:n_held], order[n_held:]


def _load_rows(train_path, corpus_path):
    report = ReadReport()
    corpus = read_jsonl(corpus_path, report)
    if not corpus:
        raise KitError(f"{corpus_path}: no chunks")
    ids = [str(c["id"]) for c in corpus]
    texts = [c["text"] for c in corpus]
    by_id = {i: n for n, i in enumerate(ids)}
    by_text = {t: n for n, t in enumerate(texts)}
    rows = []
    for r in read_jsonl(train_path, report):
        pos = [by_id[p] for p in r.get("pos_ids") or [] if p in by_id]
        if not pos:  # no ids (or unknown ids): fall back to matching the positive texts
            pos = [by_text[t] for t in r.get("pos") or [] if t in by_text]
        if not pos or not r.get("query"):
            report.add(train_path, 0, f"query {r.get('query', '')[:40]!r}: positive not in {corpus_path}; skipped")
            continue
        neg = [by_id[n] for n in r.get("neg_ids") or [] if n in by_id] or \
              [by_text[t] for t in r.get("neg") or [] if t in by_text]
        rows.append({"query": r["query"], "pos": pos, "neg": [n for n in neg if n not in pos],
                     "doc": str(r.get("doc") or "")})
    if report:
        print(report.summary())
    if len(rows) < 4:
        raise KitError(f"{train_path}: only {len(rows)} usable training rows")
    return texts, rows


def train_adapter(provider_spec: str, train_path, corpus_path, out_dir, options: AdapterOptions | None = None,
                  *, provider=None) -> AdapterResult:
    import torch
    from tqdm.auto import tqdm

    from kit.bench.providers import make_provider

    opt = options or AdapterOptions()
    rng = random.Random(opt.seed)
    torch.manual_seed(opt.seed)
    texts, rows = _load_rows(train_path, corpus_path)
    prov = provider or make_provider(provider_spec, base_url=opt.base_url, dimensions=opt.dimensions)
    provider_spec = prov.spec  # what adapter:DIR will rebuild

    # Frozen embeddings, computed once (cache-backed).
    D = prov.encode_corpus(texts)
    Q = prov.encode_queries([r["query"] for r in rows])

    held, train = _heldout_split(rows, opt.heldout_fraction, rng, by_doc=opt.heldout_by == "doc")
    held_rel = [set(rows[i]["pos"]) for i in held]

    Dt = torch.from_numpy(D)
    Qt = torch.from_numpy(Q)
    model = _build_module(D.shape[1], opt.hidden)
    optim = torch.optim.AdamW(model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)

    def heldout_mrr() -> float:
        with torch.no_grad():
            qa = torch.nn.functional.normalize(model(Qt[held]), dim=-1).numpy()
        return mrr_at_k(qa, D, held_rel)

    base_mrr = heldout_mrr()
    best, best_epoch, best_state, bad, history = base_mrr, 0, {k: v.clone() for k, v in model.state_dict().items()}, 0, []
    epochs_run = 0
    for epoch in tqdm(range(1, opt.epochs + 1), desc="adapter epochs", leave=False):
        epochs_run = epoch
        rng.shuffle(train)
        model.train()
        total = 0.0
        for s in range(0, len(train), opt.batch_size):
            b = train[s:s + opt.batch_size]
            pos = [rng.choice(rows[i]["pos"]) for i in b]
            negs = sorted({n for i in b for n in rows[i]["neg"][: opt.max_negatives]} - set(pos))
            cand = pos + negs           # in-batch positives + everyone's hard negatives
            q = torch.nn.functional.normalize(model(Qt[b]), dim=-1)
            logits = q @ Dt[cand].T / opt.temperature
            # a batch can hold two queries with the same positive: mask the duplicate column as a negative
            target = torch.arange(len(b))
            pos_t = torch.tensor(pos)
            dup = (pos_t[:, None] == pos_t[None, :]) & ~torch.eye(len(b), dtype=torch.bool)
            logits[:, : len(b)] = logits[:, : len(b)].masked_fill(dup, float("-inf"))
            loss = torch.nn.functional.cross_entropy(logits, target)
            if opt.identity_reg and opt.hidden == 0:
                # pull the map toward the identity: with a few hundred queries a free 1024x1024 map overfits the
                # training documents; staying near the base embedding space is what transfers to new documents
                eye = torch.eye(model.linear.weight.shape[0])
                loss = loss + opt.identity_reg * ((model.linear.weight - eye) ** 2).sum()
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += loss.item() * len(b)
        model.eval()
        m = heldout_mrr()
        history.append({"epoch": epoch, "loss": round(total / max(len(train), 1), 5), "heldout_mrr10": round(m, 5)})
        if m > best + 1e-6:
            best, best_epoch, bad = m, epoch, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= opt.patience:
                break

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.numpy() for k, v in best_state.items()}
    tmp = out / "adapter.npz.tmp.npz"
    np.savez(tmp, **weights)
    tmp.replace(out / "adapter.npz")
    result = AdapterResult(out_dir=str(out), base_spec=provider_spec, epochs_run=epochs_run, best_epoch=best_epoch,
                           heldout_mrr10_base=round(base_mrr, 5), heldout_mrr10_adapter=round(best, 5),
                           n_train=len(train), n_heldout=len(held), history=history)
    write_json(out / "adapter.json", {
        "base_spec": provider_spec, "base_url": opt.base_url, "dimensions": opt.dimensions, "dim": int(D.shape[1]),
        "hidden": opt.hidden, "options": dataclasses.asdict(opt), "weights": "adapter.npz",
        "metrics": {k: v for k, v in dataclasses.asdict(result).items() if k != "out_dir"}})
    return result


def load_adapter(adapter_dir):
    """Returns a function mapping (n, dim) query embeddings through the saved adapter (numpy, no torch)."""
    d = Path(adapter_dir)
    meta = read_json(d / "adapter.json")
    w = np.load(d / meta.get("weights", "adapter.npz"))
    if int(meta.get("hidden", 0)) > 0:
        W1, b1, W2, b2 = w["up.weight"], w["up.bias"], w["down.weight"], w["down.bias"]
        return lambda q: q + np.maximum(q @ W1.T + b1, 0) @ W2.T + b2
    W, b = w["linear.weight"], w["linear.bias"]
    return lambda q: (q @ W.T + b).astype(np.float32)
