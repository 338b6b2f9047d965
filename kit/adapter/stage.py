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

from ..formats import read_corpus, read_training_rows
from ..io import KitError, ReadReport, atomic_open, write_json
from ..providers import load_adapter, make_provider
from ..search import mrr_at_k
from ..secrets import redact_obj, redact_url
from ..logs import note
from .options import AdapterFiles, AdapterOptions  # noqa: F401

__all__ = ["AdapterFiles", "AdapterOptions", "AdapterResult", "load_adapter", "mrr_at_k", "train_adapter"]


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


def heldout_split(rows: list[dict], fraction: float, rng: random.Random,
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


def load_rows(train_path, corpus_path) -> tuple[list[str], list[dict]]:
    """(corpus texts, rows with positive/negative corpus indices). Both files are validated line by line
    (kit.formats); a row whose positive is not in the corpus is reported with its line and skipped."""
    report = ReadReport()
    corpus = read_corpus(corpus_path, report)
    texts = [c["text"] for c in corpus]
    by_id = {str(c["id"]): n for n, c in enumerate(corpus)}
    by_text = {t: n for n, t in enumerate(texts)}
    rows = []
    for line, r in read_training_rows(train_path, report):
        pos = [by_id[p] for p in r.get("pos_ids") or [] if p in by_id]
        if not pos:  # no ids (or unknown ids): fall back to matching the positive texts
            pos = [by_text[t] for t in r["pos"] if t in by_text]
        if not pos:
            report.add(train_path, line, f"positive not in {corpus_path}; skipped")
            continue
        neg = [by_id[n] for n in r.get("neg_ids") or [] if n in by_id] or \
              [by_text[t] for t in r.get("neg") or [] if t in by_text]
        rows.append({"query": r["query"], "pos": pos, "neg": [n for n in neg if n not in pos],
                     "doc": str(r.get("doc") or "")})
    if report:   # one line per bad row (file:line: what is wrong); the rest of the batch goes on
        note(f"{len(report.errors)} bad line(s) skipped:\n{report.summary()}")
    if len(rows) < 4:
        raise KitError(f"{train_path}: only {len(rows)} usable training rows")
    return texts, rows


class Trainer:
    """The query map and its optimisation on frozen query (Q) and document (D) vectors."""

    def __init__(self, Q: np.ndarray, D: np.ndarray, rows: list[dict], opt: AdapterOptions, rng: random.Random):
        import torch

        self.torch, self.opt, self.rng, self.rows = torch, opt, rng, rows
        self.Qt, self.Dt, self.D = torch.from_numpy(Q), torch.from_numpy(D), D
        self.model = _build_module(D.shape[1], opt.hidden)
        self.optim = torch.optim.AdamW(self.model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)

    def heldout_mrr(self, held: list[int]) -> float:
        with self.torch.no_grad():
            qa = self.torch.nn.functional.normalize(self.model(self.Qt[held]), dim=-1).numpy()
        return mrr_at_k(qa, self.D, [set(self.rows[i]["pos"]) for i in held])

    def step(self, b: list[int]) -> float:
        torch, opt, rows = self.torch, self.opt, self.rows
        pos = [self.rng.choice(rows[i]["pos"]) for i in b]
        negs = sorted({n for i in b for n in rows[i]["neg"][: opt.max_negatives]} - set(pos))
        cand = pos + negs           # in-batch positives + everyone's hard negatives
        q = torch.nn.functional.normalize(self.model(self.Qt[b]), dim=-1)
        logits = q @ self.Dt[cand].T / opt.temperature
        # a batch can hold two queries with the same positive: mask the duplicate column as a negative
        pos_t = torch.tensor(pos)
        dup = (pos_t[:, None] == pos_t[None, :]) & ~torch.eye(len(b), dtype=torch.bool)
        logits[:, : len(b)] = logits[:, : len(b)].masked_fill(dup, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(b)))
        if opt.identity_reg and opt.hidden == 0:
            # pull the map toward the identity: with a few hundred queries a free 1024x1024 map overfits the
            # training documents; staying near the base embedding space is what transfers to new documents
            eye = torch.eye(self.model.linear.weight.shape[0])
            loss = loss + opt.identity_reg * ((self.model.linear.weight - eye) ** 2).sum()
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        return loss.item() * len(b)

    def epoch(self, train: list[int]) -> float:
        self.rng.shuffle(train)
        self.model.train()
        total = sum(self.step(train[s:s + self.opt.batch_size]) for s in range(0, len(train), self.opt.batch_size))
        self.model.eval()
        return total / max(len(train), 1)

    def state(self) -> dict:
        return {k: v.clone() for k, v in self.model.state_dict().items()}


def fit(trainer: Trainer, held: list[int], train: list[int], opt: AdapterOptions):
    """Epochs with early stopping on the held-out MRR@10: (base, best, best epoch, best state, epochs, history)."""
    from tqdm.auto import tqdm

    base_mrr = trainer.heldout_mrr(held)
    best, best_epoch, best_state, bad, history, epochs_run = base_mrr, 0, trainer.state(), 0, [], 0
    for epoch in tqdm(range(1, opt.epochs + 1), desc="adapter epochs", leave=False):
        epochs_run = epoch
        loss = trainer.epoch(train)
        m = trainer.heldout_mrr(held)
        history.append({"epoch": epoch, "loss": round(loss, 5), "heldout_mrr10": round(m, 5)})
        if m > best + 1e-6:
            best, best_epoch, bad, best_state = m, epoch, 0, trainer.state()
        else:
            bad += 1
            if bad >= opt.patience:
                break
    return base_mrr, best, best_epoch, best_state, epochs_run, history


def provider_entries(opts: AdapterOptions) -> dict[str, tuple[str, dict]]:
    """{name: (spec, own settings)} of ``adapter.providers``, each entry validated like bench.models."""
    from ..providers.settings import parse_model_entry

    return {name: parse_model_entry(name, value, "adapter.providers") for name, value in opts.providers.items()}


def frozen_vectors(prov, texts: list[str], queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(Q, D): the frozen embeddings, computed once (cache-backed). A local model with ``encode`` options encodes
    the documents through the layer (torchrun ranks or Ray actors into shard files); they are then read into one
    matrix, because every step scores its queries against documents anywhere in it."""
    try:
        D = prov.encode_corpus(texts)
        D = D if isinstance(D, np.ndarray) else D.to_array()
        return prov.encode_queries(queries), D
    finally:
        prov.close()


def train_adapter(provider_spec: str, train_path, corpus_path, out_dir, options: AdapterOptions | None = None,
                  *, provider=None, settings: dict | None = None, encode=None) -> AdapterResult:
    """``encode`` (kit.encode.EncodeOptions): how a local provider encodes the training corpus (see
    :func:`frozen_vectors`); API providers ignore it (their calls are batched and cached)."""
    import torch

    opt = options or AdapterOptions()
    rng = random.Random(opt.seed)
    torch.manual_seed(opt.seed)
    texts, rows = load_rows(train_path, corpus_path)
    layer = {"encode_options": encode} if encode is not None and provider_spec.startswith(("local:", "adapter:")) \
        else {}
    prov = provider or make_provider(provider_spec, base_url=opt.base_url, dimensions=opt.dimensions,
                                     settings=settings, **layer)
    Q, D = frozen_vectors(prov, texts, [r["query"] for r in rows])
    held, train = heldout_split(rows, opt.heldout_fraction, rng, by_doc=opt.heldout_by == "doc")
    base_mrr, best, best_epoch, best_state, epochs_run, history = fit(Trainer(Q, D, rows, opt, rng), held, train, opt)
    out = Path(out_dir)
    with atomic_open(out / "adapter.npz", "wb") as f:
        np.savez(f, **{k: v.numpy() for k, v in best_state.items()})
    result = AdapterResult(out_dir=str(out), base_spec=prov.spec, epochs_run=epochs_run, best_epoch=best_epoch,
                           heldout_mrr10_base=round(base_mrr, 5), heldout_mrr10_adapter=round(best, 5),
                           n_train=len(train), n_heldout=len(held), history=history)
    options = {k: v for k, v in dataclasses.asdict(opt).items() if k != "providers"}
    write_json(out / "adapter.json", {   # the endpoint without credentials: a key is never stored
        "base_spec": prov.spec, "base_url": redact_url((settings or {}).get("base_url") or opt.base_url),
        "base_settings": {k: v for k, v in (settings or {}).items() if k != "base_url"},
        "dimensions": opt.dimensions,
        "dim": int(D.shape[1]), "hidden": opt.hidden, "options": redact_obj(options), "weights": "adapter.npz",
        "metrics": {k: v for k, v in dataclasses.asdict(result).items() if k != "out_dir"}})
    return result
