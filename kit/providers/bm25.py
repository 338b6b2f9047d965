"""``bm25``: the lexical baseline, bm25s (Lucene scoring on sparse matrices) fed jieba tokens; ``bm25:words+bigrams``
adds every pair of adjacent characters (what Lucene's CJK bigram analyzer indexes) to jieba's words."""
from __future__ import annotations

import time

import numpy as np

from ..io import KitError
from .base import Provider


def jieba_tokens(text: str) -> list[str]:
    """cut_for_search adds the sub-words of long words, so 中华人民共和国 also matches 人民; whitespace and
    punctuation-only tokens are dropped, ASCII lower-cased."""
    import jieba
    return [t.lower() for t in jieba.cut_for_search(text) if t.strip() and any(c.isalnum() for c in t)]


def char_bigrams(text: str) -> list[str]:
    """Adjacent letter/digit pairs, punctuation and spaces skipped, ASCII lower-cased: they match where jieba's
    dictionary cuts a question and a passage differently (a layperson's 辞退 against the statute's 解除, split
    compounds, traditional characters jieba's simplified dictionary does not know)."""
    chars = [c for c in text.lower() if c.isalnum()]
    return [a + b for a, b in zip(chars, chars[1:])]


TOKENIZERS = {"words": jieba_tokens, "words+bigrams": lambda t: jieba_tokens(t) + char_bigrams(t)}


class BM25Provider(Provider):
    """bm25s's own tokenizer splits on whitespace/regex, which leaves Chinese as whole sentences, so the
    texts are pre-tokenised with jieba."""

    def __init__(self, k1: float = 1.5, b: float = 0.75, tokens: str = "words"):
        super().__init__()
        if tokens not in TOKENIZERS:
            raise KitError(f"bm25:{tokens}: unknown tokens; one of {', '.join(TOKENIZERS)}")
        self.spec = "bm25" if tokens == "words" else f"bm25:{tokens}"
        self.kind = "sparse"
        self.model_name = "bm25"
        self.dim = None
        self.max_input_tokens = None
        self.k1, self.b, self.tokens = k1, b, tokens
        self.tokenize = TOKENIZERS[tokens]

    def encode_queries(self, texts):
        raise KitError("bm25 is a sparse model: it has no dense embeddings; use search()")

    encode_corpus = encode_queries

    def build(self, corpus: list[str]):
        """The inverted index of ``corpus`` (bm25s retriever + jieba vocabulary), for :meth:`query`."""
        import bm25s

        from ..logs import quiet_after_import
        quiet_after_import("bm25s")   # its import sets the logger to DEBUG
        vocab: dict[str, int] = {}
        # token ids straight from each passage as it is read (a spool streams): the words are held once, in vocab
        ids = [[vocab.setdefault(w, len(vocab)) for w in (self.tokenize(t) or ["\u2205"])] for t in corpus]
        retriever = bm25s.BM25(k1=self.k1, b=self.b)
        retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        return BM25Index(retriever, vocab, len(corpus), self.tokenize)

    def search(self, queries: list[str], corpus: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        t0 = time.perf_counter()
        index = self.build(corpus)
        k = min(k, len(corpus))
        scores = np.zeros((len(queries), k), dtype=np.float32)
        idx = np.zeros((len(queries), k), dtype=np.int64)
        for i, q in enumerate(queries):
            scores[i], idx[i] = index.query(q, k)
        self.stats["encoded"] += len(corpus) + len(queries)
        self.stats["encode_seconds"] += time.perf_counter() - t0
        return scores, idx


class BM25Index:
    """A built BM25 index: one question's top ``k`` (what a search server does per request), and its size."""

    def __init__(self, retriever, vocab: dict[str, int], n_docs: int, tokenize=jieba_tokens):
        self.retriever, self.vocab, self.n_docs, self.tokenize = retriever, vocab, n_docs, tokenize

    def query(self, text: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        qids = [self.vocab[w] for w in self.tokenize(text) if w in self.vocab]
        s = self.retriever.get_scores(qids) if qids else np.zeros(self.n_docs, dtype=np.float32)
        s = np.asarray(s, dtype=np.float32)
        top = np.argsort(-s, kind="stable")[:k]
        return s[top], top

    @property
    def nbytes(self) -> int:
        """Bytes of the score matrix bm25s keeps (CSC data + indices + pointers), vocabulary excluded."""
        return int(sum(np.asarray(v).nbytes for v in self.retriever.scores.values() if hasattr(v, "nbytes")))
