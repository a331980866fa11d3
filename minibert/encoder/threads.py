"""The NumPy forward's threading rule: how many threads a forward may use, and how a batch is split among them.

A forward runs the sequences of a batch in contiguous groups of about equal token counts, one group per thread,
each with one BLAS thread (threads inside threads oversubscribed the cores); a batch too small for two groups — one
short query — runs as one group whose GEMMs BLAS splits over the cores instead (at a few rows they stream the
weights from memory, which one core does not saturate). :func:`thread_plan` is that one rule; the BLAS count it
asks for is taken in turns by :func:`minibert.encoder.blas.blas_threads`.

The thread count is the encoder's constructor argument (``SentenceTransformer(..., threads=N)``); this module reads
no environment. By default it is :func:`default_threads`: the cores this process may run on, at most
:data:`MAX_THREADS`.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

MAX_THREADS = 8  # more groups than this gain nothing on the batch sizes encode() makes
MIN_GROUP_TOKENS = 64  # fewer tokens per thread than this: one thread (thread start-up would dominate)


def usable_cores() -> int:
    """Cores this process may run on (affinity and cgroup-pinned CPUs included)."""
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) or 1


def default_threads() -> int:
    """The forward's threads when none are given: :func:`usable_cores`, at most :data:`MAX_THREADS`."""
    return min(usable_cores(), MAX_THREADS)


def balanced_groups(lengths: np.ndarray, n_groups: int) -> list[tuple[int, int]]:
    """Split sequences 0..S into ≤ n_groups contiguous, non-empty ranges of about equal token counts: each cut
    goes before or after the sequence that straddles its share of the tokens, whichever lands nearer."""
    starts = np.concatenate([[0], np.cumsum(lengths)])  # [S + 1]: tokens before sequence i
    targets = starts[-1] * np.arange(1, n_groups) / n_groups
    straddling = np.searchsorted(starts, targets, side="right") - 1  # the sequence each target falls inside
    after = np.minimum(straddling + 1, len(lengths))
    cuts = np.where(starts[after] - targets < targets - starts[straddling], after, straddling)
    bounds = np.unique(np.concatenate([[0], cuts, [len(lengths)]]))
    return list(itertools.pairwise(bounds.tolist()))


def thread_plan(lengths: np.ndarray, threads: int) -> tuple[list[tuple[int, int]], int]:
    """The sequences' groups, each run on its own thread, and the BLAS threads each group's GEMMs get: up to
    `threads` groups of at least MIN_GROUP_TOKENS tokens with one BLAS thread each, or — a batch too small for two
    groups — one group on `threads` BLAS threads (module docstring)."""
    groups = balanced_groups(lengths, min(threads, max(1, int(lengths.sum()) // MIN_GROUP_TOKENS)))
    return groups, threads if len(groups) == 1 else 1
