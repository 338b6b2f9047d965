"""The two signals over chunk embeddings (unit vectors): coverage and the distribution test.

Coverage asks, chunk by chunk, whether the training corpus holds something close to each new chunk. "Close" is
calibrated on the training corpus itself: for a seeded sample of its chunks, the similarity of the nearest chunk
of *another* document (a new document has no sibling chunk among the training ones, so a training chunk's own
siblings must not count either; identical texts are left out too, as new chunks are by definition texts the
training corpus lacks). A new chunk is uncovered below the ``coverage_quantile`` of those similarities, so about
that share of chunks from the same distribution are uncovered by construction; Fisher's exact test (scipy) asks
whether the new chunks have more.

The distribution test compares a seeded sample of new chunks with one of training chunks as a whole: the MMD
(RBF kernel, median-distance bandwidth) with a permutation test, run by ``scipy.stats.permutation_test`` (the
library's permutation machinery: its p-value, resampling and batching are tested code, and it takes a vectorised
statistic, so 1,000 permutations of 1,000 chunks cost a second). Its effect size is the cross-validated AUC of a
logistic-regression domain classifier (scikit-learn: the standard, tested implementation of the model, the folds
and the AUC), reported and used as a floor: a significant but tiny difference is no reason to retrain.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Coverage:
    threshold: float                 # similarity below which a chunk is uncovered (calibrated)
    quantile: float
    calibration_chunks: int
    calibration_share: float         # share of calibration chunks below the threshold (about `quantile`)
    new_chunks: int
    uncovered: int
    share: float
    p_value: float
    nearest: list[float] = field(default_factory=list)      # per new chunk: similarity of its nearest training chunk
    nearest_index: list[int] = field(default_factory=list)  # per new chunk: index of that training chunk


@dataclass
class Distribution:
    new_sample: int
    training_sample: int
    mmd2: float
    p_value: float
    permutations: int
    auc: float | None                # cross-validated domain-classifier AUC (None: too few chunks for the folds)
    bandwidth: float


def nearest(queries: np.ndarray, refs: np.ndarray, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """Similarity and index of each query's nearest reference vector; ``exclude(rows, block_scores)`` may mask
    (set to -inf) what must not count, e.g. the query itself and its document's other chunks. Queries go in
    blocks of at most ~20M scores (80 MB), whatever the corpus size."""
    block = max(16, min(1024, 20_000_000 // max(1, len(refs))))
    sims = np.empty(len(queries), dtype=np.float32)
    idx = np.empty(len(queries), dtype=np.int64)
    for i in range(0, len(queries), block):
        s = queries[i:i + block] @ refs.T
        if exclude is not None:
            exclude(np.arange(i, min(i + block, len(queries))), s)
        idx[i:i + block] = s.argmax(1)
        sims[i:i + block] = s[np.arange(len(s)), idx[i:i + block]]
    return sims, idx


def calibrate(refs: np.ndarray, docs, keys, sample: int, rng: np.random.Generator) -> np.ndarray:
    """Nearest-neighbour similarity of a seeded sample of training chunks to the chunks of other documents
    (identical texts excluded)."""
    docs = np.unique(np.asarray(docs, dtype=str), return_inverse=True)[1]      # integer codes: fast comparisons
    keys = np.unique(np.asarray(keys, dtype=str), return_inverse=True)[1]
    pick = np.sort(rng.choice(len(refs), size=min(sample, len(refs)), replace=False))

    def exclude(rows, s):
        chosen = pick[rows]
        s[(docs[None, :] == docs[chosen][:, None]) | (keys[None, :] == keys[chosen][:, None])] = -np.inf

    sims, _ = nearest(refs[pick], refs, exclude)
    return sims[np.isfinite(sims)]


def coverage(refs: np.ndarray, docs, keys, new: np.ndarray, quantile: float, sample: int, seed: int) -> Coverage:
    """How many new chunks lie further from the training corpus than its own chunks lie from each other."""
    from scipy.stats import fisher_exact

    calib = calibrate(refs, docs, keys, sample, np.random.default_rng(seed))
    if len(calib) == 0:
        calib = np.array([1.0], dtype=np.float32)    # a corpus of one document: nothing to calibrate against
    threshold = float(np.quantile(calib, quantile))
    sims, idx = nearest(new, refs) if len(new) else (np.zeros(0), np.zeros(0, dtype=np.int64))
    below, cal_below = int((sims < threshold).sum()), int((calib < threshold).sum())
    p = 1.0
    if len(new):
        # Fisher's exact test on (new vs calibration) x (below vs above): both sample sizes are accounted for.
        p = float(fisher_exact([[below, len(new) - below], [cal_below, len(calib) - cal_below]],
                               alternative="greater")[1])
    return Coverage(threshold=round(threshold, 4), quantile=quantile, calibration_chunks=len(calib),
                    calibration_share=round(cal_below / len(calib), 4), new_chunks=len(new), uncovered=below,
                    share=round(below / max(1, len(new)), 4), p_value=p, nearest=[round(float(x), 4) for x in sims],
                    nearest_index=[int(x) for x in idx])


def _mmd_statistic(kernel: np.ndarray):
    """Unbiased MMD^2 from a precomputed kernel matrix, for index samples x, y (vectorised over a batch of
    permutations: the last axis holds the indices)."""
    n_all = len(kernel)

    def stat(x, y, axis=-1):
        single = np.ndim(x) == 1
        x, y = np.atleast_2d(np.asarray(x, dtype=np.int64)), np.atleast_2d(np.asarray(y, dtype=np.int64))
        out = []
        for ix, iy in ((x, x), (y, y), (x, y)):
            a = np.zeros((len(ix), n_all))
            b = np.zeros((len(iy), n_all))
            np.put_along_axis(a, ix, 1.0, axis=1)
            np.put_along_axis(b, iy, 1.0, axis=1)
            out.append(((a @ kernel) * b).sum(1))
        n, m = x.shape[1], y.shape[1]
        value = (out[0] - n) / (n * (n - 1)) + (out[1] - m) / (m * (m - 1)) - 2 * out[2] / (n * m)
        return value[0] if single else value
    return stat


def domain_auc(a: np.ndarray, b: np.ndarray, folds: int, seed: int) -> float | None:
    """Cross-validated ROC AUC of a logistic regression telling ``a`` (label 1) from ``b``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if min(len(a), len(b)) < folds:
        return None
    x = np.concatenate([a, b])
    y = np.r_[np.ones(len(a)), np.zeros(len(b))]
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(LogisticRegression(max_iter=2000), x, y, cv=cv, scoring="roc_auc")
    return round(float(scores.mean()), 4)


def distribution(refs: np.ndarray, new: np.ndarray, sample: int, permutations: int, folds: int,
                 seed: int) -> Distribution:
    """MMD permutation test and classifier AUC between a sample of new chunks and one of training chunks."""
    from scipy.stats import permutation_test

    rng = np.random.default_rng(seed)
    a = new[np.sort(rng.choice(len(new), size=min(sample, len(new)), replace=False))]
    b = refs[np.sort(rng.choice(len(refs), size=min(sample, len(refs)), replace=False))]
    pooled = np.concatenate([a, b]).astype(np.float64)
    sq = np.maximum(2.0 - 2.0 * pooled @ pooled.T, 0.0)            # squared distances of unit vectors
    bandwidth = float(np.median(sq[np.triu_indices(len(pooled), 1)])) or 1.0
    kernel = np.exp(-sq / bandwidth)
    res = permutation_test((np.arange(len(a)), np.arange(len(a), len(pooled))), _mmd_statistic(kernel),
                           permutation_type="independent", vectorized=True, n_resamples=permutations,
                           alternative="greater", batch=64, random_state=seed)
    return Distribution(new_sample=len(a), training_sample=len(b), mmd2=round(float(res.statistic), 6),
                        p_value=float(res.pvalue), permutations=permutations,
                        auc=domain_auc(a, b, folds, seed), bandwidth=round(bandwidth, 4))
