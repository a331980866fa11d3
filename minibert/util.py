"""Similarity scores and semantic search on NumPy embeddings.

This module follows ``sentence_transformers.util`` (its common subset: :func:`cos_sim`, :func:`dot_score`,
:func:`euclidean_sim`, :func:`manhattan_sim`, their ``pairwise_`` forms, :func:`normalize_embeddings`,
:func:`semantic_search`, :func:`quantize_embeddings`) with the same names, arguments, shapes and return formats, so
code written against sentence-transformers keeps working when it swaps the import. :func:`semantic_search_binary`
follows ``sentence_transformers.util.quantization.semantic_search_faiss`` on a binary corpus, without faiss.
Where it differs:

* Inputs are anything :func:`numpy.asarray` accepts (arrays, nested lists, CPU tensors); outputs are NumPy
  arrays, never tensors. Sparse tensors are not supported.
* Scores are computed and returned in float32 whatever the input's dtype (sentence-transformers keeps float64
  inputs in float64). Integer and boolean inputs are converted to float32. :func:`euclidean_sim` expands
  ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b in float64 before the square root, so nearly equal rows get distances near 0
  (``torch.cdist``, which sentence-transformers calls, expands in float32 beyond 25 rows and can be off by ~1e-3
  there).
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

from .encoder.pooling import normalize
from .errors import InputError, InputTypeError, positive_int
from .quantization import BINARY_DTYPES, quantize_embeddings, unpack_bits

__all__ = [
    "PAIRWISE_SIMILARITY_FUNCTIONS",
    "SIMILARITY_FUNCTIONS",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "normalize_embeddings",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "quantize_embeddings",
    "semantic_search",
    "semantic_search_binary",
]


Hits = list[list[dict[str, int | float]]]  # per query, {"corpus_id": int, "score": float} dicts, best first

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


def euclidean_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Euclidean distance of every row of ``a`` to every row of ``b``: res[i, j] = −‖a[i] − b[j]‖.

    ``a``: [n, dim] or [dim]; ``b``: [m, dim] or [dim]. Returns float32 [n, m]. ‖a‖² + ‖b‖² − 2 a·b is taken in
    float64 (exact products of the float32 inputs), clamped at 0 and square-rooted.
    """
    a2, b2 = _check_dims(_as_rows(a, "a"), _as_rows(b, "b"), "a", "b")
    a64, b64 = _f32(a2).astype(np.float64), _f32(b2).astype(np.float64)
    squared = np.einsum("nd,nd->n", a64, a64)[:, None] + np.einsum("md,md->m", b64, b64) - 2 * (a64 @ b64.T)  # [n, m]
    return -np.sqrt(np.maximum(squared, 0)).astype(np.float32)


_BLOCK_ELEMENTS = 1 << 22  # manhattan_sim's [rows, cols, dim] difference blocks: at most 16 MiB of float32


def manhattan_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Manhattan (L1) distance of every row of ``a`` to every row of ``b``: res[i, j] = −Σ |a[i] − b[j]|.

    ``a``: [n, dim] or [dim]; ``b``: [m, dim] or [dim]. Returns float32 [n, m], computed over blocks of rows so that
    the [rows, cols, dim] differences stay small.
    """
    a2, b2 = _check_dims(_as_rows(a, "a"), _as_rows(b, "b"), "a", "b")
    a2, b2 = _f32(a2), _f32(b2)
    (n, dim), m = a2.shape, b2.shape[0]
    cols = max(1, min(m, _BLOCK_ELEMENTS // max(dim, 1)))
    rows = max(1, _BLOCK_ELEMENTS // (cols * max(dim, 1)))
    distances = np.empty((n, m), dtype=np.float32)
    for i in range(0, n, rows):
        for j in range(0, m, cols):
            difference = a2[i : i + rows, None, :] - b2[None, j : j + cols, :]  # [rows, cols, dim]
            distances[i : i + rows, j : j + cols] = np.abs(difference).sum(axis=-1)
    return -distances


def pairwise_euclidean_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Euclidean distance of matching rows: res[i] = −‖a[i] − b[i]‖.

    ``a``, ``b``: both [n, dim] (returns float32 [n]) or both [dim] (returns a 0-d float32 array).
    """
    a_arr, b_arr = _pairwise_inputs(a, b)
    difference = a_arr - b_arr  # [n, dim] or [dim]
    return -np.sqrt(np.einsum("...d,...d->...", difference, difference))  # [n] or []


def pairwise_manhattan_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Manhattan (L1) distance of matching rows: res[i] = −Σ |a[i] − b[i]|.

    ``a``, ``b``: both [n, dim] (returns float32 [n]) or both [dim] (returns a 0-d float32 array).
    """
    a_arr, b_arr = _pairwise_inputs(a, b)
    return -np.abs(a_arr - b_arr).sum(axis=-1)  # [n] or []


# sentence-transformers' similarity_fn_name values -> the score functions (SimilarityFunction.to_similarity_fn).
SIMILARITY_FUNCTIONS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "cosine": cos_sim,
    "dot": dot_score,
    "euclidean": euclidean_sim,
    "manhattan": manhattan_sim,
}
PAIRWISE_SIMILARITY_FUNCTIONS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "cosine": pairwise_cos_sim,
    "dot": pairwise_dot_score,
    "euclidean": pairwise_euclidean_sim,
    "manhattan": pairwise_manhattan_sim,
}


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


def _chunked_top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    top_k: int,
    query_chunk_size: int,
    corpus_chunk_size: int,
    prepare: Callable[[np.ndarray], np.ndarray],
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The ``top_k`` best scores of every query over the corpus, chunk by chunk: (scores, corpus ids), both
    [n_queries, min(top_k, n_corpus)], the ids increasing along each row (ties at the boundary keep the lower id).

    ``prepare(corpus rows [c, ...])`` readies one corpus chunk, once; ``score(query rows [q, ...], chunk)`` gives
    its [q, c] scores (higher is better). At most a [query_chunk_size, corpus_chunk_size] score matrix exists.
    """
    n_queries, n_corpus = queries.shape[0], corpus.shape[0]
    query_starts = range(0, n_queries, query_chunk_size)
    # Running top-k per query chunk. Per row, ids increase left to right (earlier chunks hold lower ids and
    # _select keeps column order), which is what the tie-break relies on.
    best = []
    for query_start in query_starts:
        rows = min(query_chunk_size, n_queries - query_start)
        best.append((np.empty((rows, 0), np.float32), np.empty((rows, 0), np.intp)))  # [q, 0] each
    for corpus_start in range(0, n_corpus, corpus_chunk_size):
        corpus_chunk = prepare(corpus[corpus_start : corpus_start + corpus_chunk_size])
        chunk_ids = np.arange(corpus_start, corpus_start + corpus_chunk.shape[0])  # [c]
        for chunk_index, query_start in enumerate(query_starts):
            scores = score(queries[query_start : query_start + query_chunk_size], corpus_chunk)  # [q, c]
            scores, ids = _select(scores, np.broadcast_to(chunk_ids, scores.shape), top_k)  # [q, <= top_k]
            previous_scores, previous_ids = best[chunk_index]
            best[chunk_index] = _select(
                np.concatenate([previous_scores, scores], axis=1),  # [q, <= 2 * top_k]
                np.concatenate([previous_ids, ids], axis=1),
                top_k,
            )
    return np.concatenate([scores for scores, _ in best]), np.concatenate([ids for _, ids in best])


def _hits(scores: np.ndarray, ids: np.ndarray, reported: np.ndarray | None = None) -> Hits:
    """[q, k] scores and corpus ids (increasing along each row) -> per query, ``{"corpus_id", "score"}`` dicts by
    decreasing score; equal scores keep the lower id first, NaN sorts last. ``reported`` (default ``scores``) gives
    each hit's "score"."""
    order = np.argsort(-scores, axis=1, kind="stable")  # stable: ascending ids among equal scores
    sorted_ids = np.take_along_axis(ids, order, axis=1).tolist()
    sorted_scores = np.take_along_axis(scores if reported is None else reported, order, axis=1).tolist()
    return [
        [{"corpus_id": corpus_id, "score": value} for corpus_id, value in zip(row_ids, row_scores, strict=True)]
        for row_ids, row_scores in zip(sorted_ids, sorted_scores, strict=True)
    ]


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: Callable[[Any, Any], Any] = cos_sim,
) -> Hits:
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
            :func:`cos_sim` (default), :func:`dot_score` or :func:`euclidean_sim`. May return anything
            ``np.asarray`` reads.

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
    if queries.shape[0] == 0:
        return []

    # cos_sim renormalizes both inputs on every call; normalizing each corpus chunk once (as sentence-transformers
    # does) and taking dot products gives the same scores.
    normalized = score_function is cos_sim

    def prepare(corpus_rows: np.ndarray) -> np.ndarray:  # [c, dim] -> float32 [c, dim]
        return normalize(_f32(corpus_rows)) if normalized else _f32(corpus_rows)

    def score(query_rows: np.ndarray, corpus_chunk: np.ndarray) -> np.ndarray:  # -> [q, c]
        return _scores(score_function, _f32(query_rows), corpus_chunk, normalized)

    return _hits(*_chunked_top_k(queries, corpus, top_k, query_chunk_size, corpus_chunk_size, prepare, score))


def _packed(x: Any, name: str, precision: str) -> np.ndarray:
    """Packed binary embeddings as rows [n, B], of the dtype ``quantize_embeddings(..., precision)`` gives."""
    rows = _as_rows(x, name)
    expected = BINARY_DTYPES[precision]
    if rows.dtype != expected:
        raise InputTypeError(
            f"{name} must be packed bits of dtype {expected} (what quantize_embeddings(embeddings, {precision!r}) "
            f"returns), got dtype {rows.dtype}"
        )
    return rows


def _signs(packed: np.ndarray, precision: str) -> np.ndarray:
    """Packed bits [n, B] -> one ±1 per bit [n, 8·B] float32 (padding bits are 0 in every row: they agree)."""
    return unpack_bits(packed, precision).astype(np.float32) * 2 - 1


def semantic_search_binary(
    query_embeddings: Any,
    corpus_embeddings: Any,
    corpus_precision: str = "ubinary",
    top_k: int = 10,
    rescore: bool = True,
    rescore_multiplier: int = 2,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 50000,
) -> Hits:
    """Exact search over a binary-quantized corpus by Hamming distance, then rescoring with the float queries.

    Follows ``sentence_transformers.util.quantization.semantic_search_faiss`` with ``corpus_precision="ubinary"``
    and ``exact=True`` (faiss' ``IndexBinaryFlat``), and ``semantic_search_usearch`` with "binary", without an index
    library:

    1. Float queries are packed like the corpus (:func:`quantize_embeddings`), and each query keeps the
       ``top_k * rescore_multiplier`` corpus entries nearest in Hamming distance (ties: lower ``corpus_id``).
    2. Rescoring: a candidate's score is the float query · the candidate's bits, each 0 or 1 (unpacked, cut to the
       query's dimension, in float64) — sentence-transformers' rescoring. It ranks as ±1 bits would, since
       q·(2b − 1) = 2 q·b − Σq. The ``top_k`` best are kept.

    Without rescoring (``rescore=False``) each hit's score is its Hamming distance, and hits come nearest first, as
    sentence-transformers returns them. Differs: packed queries with ``rescore=True`` are an InputError (there is
    nothing to rescore with; sentence-transformers logs a warning and skips rescoring), and ties in Hamming distance
    or rescored score go to the lower ``corpus_id`` (faiss keeps the lower id at the candidate boundary too).

    Args:
        query_embeddings: float [n_queries, dim] (or [dim]); or packed bits like the corpus (then ``rescore=False``).
        corpus_embeddings: ``quantize_embeddings(corpus, corpus_precision)``: [n_corpus, ⌈dim / 8⌉] uint8
            ("ubinary") or int8 ("binary").
        corpus_precision: ``"ubinary"`` (default) or ``"binary"``.
        top_k: hits kept per query. rescore_multiplier: candidates per hit fetched for rescoring.
        query_chunk_size, corpus_chunk_size: as in :func:`semantic_search`; a corpus chunk is unpacked to
            [corpus_chunk_size, 8 · ⌈dim / 8⌉] float32 for the Hamming distances.

    Returns:
        :func:`semantic_search`'s format: one list per query of ``{"corpus_id": int, "score": float}`` dicts.

    Raises:
        InputError / InputTypeError: an unknown corpus precision, embeddings of the wrong dtype or width,
            ``rescore=True`` with packed queries, or a size argument that is not a positive integer.
    """
    top_k = positive_int("top_k", top_k)
    rescore_multiplier = positive_int("rescore_multiplier", rescore_multiplier)
    query_chunk_size = positive_int("query_chunk_size", query_chunk_size)
    corpus_chunk_size = positive_int("corpus_chunk_size", corpus_chunk_size)
    if not isinstance(corpus_precision, str) or corpus_precision not in BINARY_DTYPES:
        raise InputError(
            f"corpus_precision must be 'ubinary' or 'binary' (how the corpus was quantized), got {corpus_precision!r}"
        )
    corpus = _packed(corpus_embeddings, "corpus_embeddings", corpus_precision)  # [n_corpus, B]
    queries = _as_rows(query_embeddings, "query_embeddings")  # float [n_queries, dim] or packed [n_queries, B]
    if queries.dtype.kind == "f":
        float_queries, queries = queries, quantize_embeddings(queries, corpus_precision)  # packed [n_queries, B]
    elif rescore:
        raise InputError(
            "rescore=True needs the float query embeddings (rescoring multiplies them with the candidates' bits); "
            "pass the unquantized queries, or rescore=False"
        )
    else:
        queries = _packed(queries, "query_embeddings", corpus_precision)
    queries, corpus = _check_dims(queries, corpus, "query_embeddings (packed)", "corpus_embeddings")
    if queries.shape[0] == 0:
        return []

    def hamming_scores(query_signs: np.ndarray, corpus_signs: np.ndarray) -> np.ndarray:  # -> [q, c]
        # agreements − disagreements = n_bits − 2·Hamming: −Hamming exactly (whole numbers < 2²⁴ in float32)
        return (query_signs @ corpus_signs.T - corpus_signs.shape[1]) / 2

    candidates = top_k * rescore_multiplier if rescore else top_k
    negative_hamming, ids = _chunked_top_k(
        _signs(queries, corpus_precision),
        corpus,
        candidates,
        query_chunk_size,
        corpus_chunk_size,
        lambda corpus_rows: _signs(corpus_rows, corpus_precision),
        hamming_scores,
    )  # [n_queries, <= candidates] each
    if not rescore:
        return _hits(negative_hamming, ids, reported=np.abs(negative_hamming))  # nearest first, scores ≥ 0

    dim = float_queries.shape[1]
    results: Hits = []
    for start in range(0, queries.shape[0], query_chunk_size):
        rows = slice(start, start + query_chunk_size)
        bits = unpack_bits(corpus[ids[rows]], corpus_precision, dim).astype(np.float64)  # [q, K, dim], 0 or 1
        rescored = np.einsum("qd,qkd->qk", float_queries[rows].astype(np.float64), bits)  # [q, K]
        results += _hits(*_select(rescored, ids[rows], top_k))
    return results
