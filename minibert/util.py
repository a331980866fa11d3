"""Similarity scores and semantic search on NumPy embeddings.

This module follows ``sentence_transformers.util`` (its common subset: :func:`cos_sim`, :func:`dot_score`,
:func:`pairwise_cos_sim`, :func:`pairwise_dot_score`, :func:`normalize_embeddings`, :func:`semantic_search`)
with the same names, arguments, shapes and return formats, so code written against sentence-transformers keeps
working when it swaps the import. Where it differs:

* Inputs are anything :func:`numpy.asarray` accepts (arrays, nested lists, CPU tensors); outputs are NumPy
  arrays, never tensors. Sparse tensors are not supported.
* Scores are computed and returned in float32 whatever the input's dtype (sentence-transformers keeps float64
  inputs in float64). Integer and boolean inputs are converted to float32.
* Bad input raises :class:`~minibert.errors.InputError` (a ``ValueError``) or
  :class:`~minibert.errors.InputTypeError` (a ``TypeError``) with a message naming the problem, instead of
  whatever torch happens to raise. The pairwise functions need both inputs to have the same shape (no
  broadcasting).
* :func:`semantic_search` breaks score ties deterministically: among equal scores, the lower ``corpus_id``
  ranks first and is the one kept at the ``top_k`` boundary, so results do not depend on the chunk sizes.
  NaN scores rank below every other score.

As in sentence-transformers, a 1-D input is a single embedding: the matrix functions treat it as one row,
and the pairwise functions return a 0-d array for two 1-D inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InputError, InputTypeError, positive_int
from .pooling import normalize

__all__ = [
    "cos_sim",
    "dot_score",
    "normalize_embeddings",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "semantic_search",
]


# dtype kinds accepted as embeddings: bool, signed / unsigned int, float.
_NUMERIC_KINDS = "biuf"


def _as_array(x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)`` checked to be a numeric 1-D or 2-D array (not yet converted to float32)."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists, objects NumPy cannot read
        raise InputError(f"{name} could not be read as a numeric array: {exc}") from exc
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise InputTypeError(
            f"{name} must hold real numbers (bool, int or float), got an array of dtype {arr.dtype} "
            f"from {type(x).__name__}"
        )
    if arr.ndim not in (1, 2):
        raise InputError(
            f"{name} must be 1-D (one embedding) or 2-D (n embeddings × dim), got {arr.ndim}-D shape {arr.shape}"
        )
    return arr


def _as_rows(x: Any, name: str) -> np.ndarray:
    """Like :func:`_as_array`, with a 1-D input turned into a single row: shape [n, dim].

    A bare empty 1-D input (e.g. ``[]``) becomes shape [0, 0], meaning "no rows"; :func:`_check_dims`
    lets it match any embedding dimension.
    """
    arr = _as_array(x, name)
    if arr.ndim == 1:
        arr = arr.reshape(0, 0) if arr.size == 0 else arr[np.newaxis, :]
    return arr


def _is_bare_empty(arr: np.ndarray) -> bool:
    return arr.shape == (0, 0)


def _check_dims(a: np.ndarray, b: np.ndarray, a_name: str, b_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check that two row matrices have the same embedding dimension; fix up a bare-empty side to match."""
    if _is_bare_empty(a):
        a = a.reshape(0, b.shape[1])
    elif _is_bare_empty(b):
        b = b.reshape(0, a.shape[1])
    if a.shape[1] != b.shape[1]:
        raise InputError(
            f"embedding dimensions differ: {a_name} has shape {a.shape} (dim {a.shape[1]}) but {b_name} "
            f"has shape {b.shape} (dim {b.shape[1]})"
        )
    return a, b


def _f32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32, copy=False)


def normalize_embeddings(embeddings: Any) -> np.ndarray:
    """Scale each embedding to unit L2 length; same shape as the input ([dim] or [n, dim]), float32.

    Like ``torch.nn.functional.normalize``, a norm below 1e-12 is clamped to 1e-12, so a zero vector
    stays zero instead of becoming NaN.
    """
    return normalize(_f32(_as_array(embeddings, "embeddings")))


def dot_score(a: Any, b: Any) -> np.ndarray:
    """Dot product of every row of ``a`` with every row of ``b``: res[i, j] = a[i] · b[j].

    ``a``: [n, dim] or [dim]; ``b``: [m, dim] or [dim]. Returns float32 [n, m].
    """
    a2, b2 = _check_dims(_as_rows(a, "a"), _as_rows(b, "b"), "a", "b")
    return _f32(a2) @ _f32(b2).T  # [n, m]


def cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b``: res[i, j] = cos(a[i], b[j]).

    ``a``: [n, dim] or [dim]; ``b``: [m, dim] or [dim]. Returns float32 [n, m]. A zero vector has
    similarity 0 with everything.
    """
    a2, b2 = _check_dims(_as_rows(a, "a"), _as_rows(b, "b"), "a", "b")
    return normalize(_f32(a2)) @ normalize(_f32(b2)).T  # [n, m]


def _pairwise_inputs(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a_arr = _f32(_as_array(a, "a"))
    b_arr = _f32(_as_array(b, "b"))
    if a_arr.shape != b_arr.shape:
        raise InputError(
            f"pairwise scores need a and b of the same shape, got a with shape {a_arr.shape} and b with shape "
            f"{b_arr.shape}"
        )
    return a_arr, b_arr


def pairwise_dot_score(a: Any, b: Any) -> np.ndarray:
    """Dot product of matching rows: res[i] = a[i] · b[i].

    ``a``, ``b``: both [n, dim] (returns float32 [n]) or both [dim] (returns a 0-d float32 array).
    """
    a_arr, b_arr = _pairwise_inputs(a, b)
    return np.einsum("...d,...d->...", a_arr, b_arr)  # [n] or []


def pairwise_cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of matching rows: res[i] = cos(a[i], b[i]).

    ``a``, ``b``: both [n, dim] (returns float32 [n]) or both [dim] (returns a 0-d float32 array).
    """
    a_arr, b_arr = _pairwise_inputs(a, b)
    return np.einsum("...d,...d->...", normalize(a_arr), normalize(b_arr))  # [n] or []


def _top_k_columns(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask [rows, cols] selecting exactly ``k`` columns per row: the ``k`` largest values, ties at
    the boundary going to the leftmost columns, NaN counted as the smallest value. ``0 < k < cols``."""
    key = values
    if np.isnan(values).any():
        key = np.where(np.isnan(values), -np.inf, values)
    cols = key.shape[1]
    threshold = np.partition(key, cols - k, axis=1)[:, cols - k, np.newaxis]  # [rows, 1], the k-th largest
    mask = key >= threshold  # [rows, cols]; has ≥ k per row, more only where the threshold is tied
    counts = mask.sum(axis=1)
    tied_rows = np.flatnonzero(counts > k)
    if tied_rows.size:
        sub = key[tied_rows]
        sub_threshold = threshold[tied_rows]
        above = sub > sub_threshold
        equal = sub == sub_threshold
        room = k - above.sum(axis=1, keepdims=True)  # how many tied entries each row still takes
        rank = np.cumsum(equal, axis=1, dtype=np.int32)  # 1-based rank among the tied entries, left to right
        mask[tied_rows] = above | (equal & (rank <= room))
    return mask


def _select(values: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the top ``k`` of each row of ``values`` / ``ids`` ([rows, cols] each), preserving column order.

    ``ids`` must increase along each row, so that "leftmost" in :func:`_top_k_columns` means "lowest id".
    """
    rows, cols = values.shape
    if cols <= k:
        return values, ids
    mask = _top_k_columns(values, k)
    return values[mask].reshape(rows, k), ids[mask].reshape(rows, k)


def _scores(
    score_function: Callable[[Any, Any], Any], queries: np.ndarray, corpus: np.ndarray, normalized: bool
) -> np.ndarray:
    """The [q, c] score matrix of one query chunk against one corpus chunk."""
    # When score_function is cos_sim, the corpus chunk arrives already normalized.
    result = dot_score(normalize(queries), corpus) if normalized else score_function(queries, corpus)
    try:
        scores = np.asarray(result)
    except (ValueError, TypeError) as exc:
        raise InputError(f"score_function returned something that is not an array: {exc}") from exc
    expected = (queries.shape[0], corpus.shape[0])
    if scores.dtype.kind not in _NUMERIC_KINDS:
        raise InputTypeError(f"score_function must return numbers, got an array of dtype {scores.dtype}")
    if scores.shape != expected:
        raise InputError(
            f"score_function returned shape {scores.shape} for {queries.shape[0]} queries × {corpus.shape[0]} "
            f"corpus entries; expected {expected}"
        )
    if scores.dtype.kind != "f" or scores.dtype.itemsize < 4:
        scores = scores.astype(np.float32)
    return scores


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: Callable[[Any, Any], Any] = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """The ``top_k`` best-scoring corpus entries of each query, like ``sentence_transformers.util.semantic_search``.

    Args:
        query_embeddings: [n_queries, dim], or [dim] for a single query.
        corpus_embeddings: [n_corpus, dim], or [dim] for a single entry.
        query_chunk_size: queries scored at once. Must be positive.
        corpus_chunk_size: corpus entries scored at once. Must be positive. At most a
            [query_chunk_size, corpus_chunk_size] score matrix exists at any time; the full
            [n_queries, n_corpus] matrix is never built.
        top_k: hits kept per query (all corpus entries when the corpus is smaller). Must be positive.
        score_function: ``f(queries [q, dim], corpus [c, dim]) -> scores [q, c]``, higher is better; e.g.
            :func:`cos_sim` (default) or :func:`dot_score`. May return anything ``np.asarray`` reads.

    Returns:
        One list per query, of ``{"corpus_id": int, "score": float}`` dicts sorted by decreasing score
        (ties: lower ``corpus_id`` first). Empty queries give ``[]``; an empty corpus gives ``[]`` per query.

    Raises:
        InputError: embedding dimensions differ, inputs are not 1-D / 2-D, a size argument is not positive,
            or ``score_function`` returned the wrong shape.
        InputTypeError: inputs are not numeric, a size argument is not an int, or ``score_function`` is not
            callable.
    """
    query_chunk_size = positive_int("query_chunk_size", query_chunk_size)
    corpus_chunk_size = positive_int("corpus_chunk_size", corpus_chunk_size)
    top_k = positive_int("top_k", top_k)
    if not callable(score_function):
        raise InputTypeError(f"score_function must be callable, got {type(score_function).__name__}")
    queries, corpus = _check_dims(
        _as_rows(query_embeddings, "query_embeddings"),
        _as_rows(corpus_embeddings, "corpus_embeddings"),
        "query_embeddings",
        "corpus_embeddings",
    )  # [n_queries, dim], [n_corpus, dim]; still in the caller's dtype, converted chunk by chunk
    n_queries, n_corpus = queries.shape[0], corpus.shape[0]
    if n_queries == 0:
        return []

    # Running top-k of every query over the corpus chunks seen so far, one entry per query chunk. Per row, ids
    # increase left to right (earlier chunks hold lower ids and _select keeps column order), which is what the
    # tie-break relies on.
    query_starts = range(0, n_queries, query_chunk_size)
    best_scores: list[np.ndarray | None] = [None] * len(query_starts)  # [q, <= top_k] each
    best_ids: list[np.ndarray | None] = [None] * len(query_starts)

    # cos_sim renormalizes both inputs on every call; normalizing each corpus chunk once (as sentence-transformers
    # does) and taking dot products gives the same scores.
    normalized = score_function is cos_sim

    for corpus_start in range(0, n_corpus, corpus_chunk_size):
        corpus_chunk = _f32(corpus[corpus_start : corpus_start + corpus_chunk_size])  # [c, dim]
        if normalized:
            corpus_chunk = normalize(corpus_chunk)
        chunk_ids = np.arange(corpus_start, corpus_start + corpus_chunk.shape[0])  # [c]
        for chunk_index, query_start in enumerate(query_starts):
            query_chunk = _f32(queries[query_start : query_start + query_chunk_size])  # [q, dim]
            scores = _scores(score_function, query_chunk, corpus_chunk, normalized)  # [q, c]
            ids = np.broadcast_to(chunk_ids, scores.shape)  # [q, c]
            scores, ids = _select(scores, ids, top_k)  # [q, <= top_k]
            previous_scores = best_scores[chunk_index]
            if previous_scores is not None:
                scores = np.concatenate([previous_scores, scores], axis=1)  # [q, <= 2 * top_k]
                ids = np.concatenate([best_ids[chunk_index], ids], axis=1)
                scores, ids = _select(scores, ids, top_k)
            best_scores[chunk_index], best_ids[chunk_index] = scores, ids

    results: list[list[dict[str, int | float]]] = []
    for chunk_index, query_start in enumerate(query_starts):
        scores, ids = best_scores[chunk_index], best_ids[chunk_index]
        n_in_chunk = min(query_chunk_size, n_queries - query_start)
        if scores is None:  # empty corpus
            results.extend([] for _ in range(n_in_chunk))
            continue
        # Decreasing score; the stable sort keeps ascending ids among equal scores. NaN sorts last.
        order = np.argsort(-scores, axis=1, kind="stable")
        sorted_scores = np.take_along_axis(scores, order, axis=1).tolist()
        sorted_ids = np.take_along_axis(ids, order, axis=1).tolist()
        for row_scores, row_ids in zip(sorted_scores, sorted_ids, strict=True):
            results.append(
                [{"corpus_id": corpus_id, "score": score} for corpus_id, score in zip(row_ids, row_scores, strict=True)]
            )
    return results
