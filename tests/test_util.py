"""minibert.util vs the live sentence_transformers.util (torch), plus chunking, ties and bad-input checks."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sentence_transformers import util as st_util

from minibert import util
from minibert.errors import InputError, InputTypeError, MinibertError
from minibert.testing import assert_close
from tests.helpers import ROOT

ATOL = 1e-6


def embeddings(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Random float32 embeddings at the scale of real ones (row norms around 1)."""
    return (rng.standard_normal((n, dim)) / math.sqrt(dim)).astype(np.float32)


def reference(fn, a, b) -> np.ndarray:
    """Call a sentence_transformers.util function on torch tensors, hand back NumPy."""
    return fn(torch.from_numpy(np.asarray(a)), torch.from_numpy(np.asarray(b))).numpy()


def assert_same_hits(ours: list, ref: list, *, atol: float = ATOL, what: str = "semantic_search") -> None:
    """Same number of queries and hits, same corpus_id ranking, scores within atol; on failure show pairs."""
    assert len(ours) == len(ref), f"{what}: {len(ours)} query results vs reference {len(ref)}"
    for q, (ours_hits, ref_hits) in enumerate(zip(ours, ref, strict=True)):
        ours_ids = [hit["corpus_id"] for hit in ours_hits]
        ref_ids = [hit["corpus_id"] for hit in ref_hits]
        if ours_ids != ref_ids:
            pairs = [
                (o, r)
                for o, r in zip(
                    [(h["corpus_id"], h["score"]) for h in ours_hits],
                    [(h["corpus_id"], h["score"]) for h in ref_hits],
                    strict=False,
                )
                if o[0] != r[0]
            ][:5]
            pytest.fail(
                f"{what}: query {q}: corpus_id ranking differs ({len(ours_ids)} vs {len(ref_ids)} hits); "
                f"first differing (ours, reference) (corpus_id, score) pairs: {pairs}"
            )
        assert_close(
            [hit["score"] for hit in ours_hits],
            [hit["score"] for hit in ref_hits],
            atol=atol,
            what=f"{what}: query {q} scores",
        )


def brute_force_search(queries: np.ndarray, corpus: np.ndarray, top_k: int) -> list:
    """Independent reference for exact (integer-valued) data: full float64 score matrix, sorted by
    (score descending, corpus_id ascending)."""
    scores = queries.astype(np.float64) @ corpus.astype(np.float64).T
    results = []
    for row in scores:
        order = np.lexsort((np.arange(row.size), -row))[:top_k]
        results.append([{"corpus_id": int(i), "score": float(row[i])} for i in order])
    return results


# ---------------------------------------------------------------------------------------------------------------
# Score matrices and pairwise scores vs the torch reference


@pytest.mark.parametrize(("n", "m", "dim"), [(1, 1, 4), (7, 13, 32), (64, 300, 384), (5, 3, 768)])
@pytest.mark.parametrize("name", ["dot_score", "cos_sim"])
def test_matrix_scores_match_sentence_transformers(name, n, m, dim):
    rng = np.random.default_rng(n * 1000 + m)
    a, b = embeddings(rng, n, dim), embeddings(rng, m, dim)
    ours = getattr(util, name)(a, b)
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float32 and ours.shape == (n, m)
    assert_close(ours, reference(getattr(st_util, name), a, b), atol=ATOL, what=name)


@pytest.mark.parametrize("name", ["dot_score", "cos_sim", "euclidean_sim", "manhattan_sim"])
def test_matrix_scores_of_1d_inputs_are_single_rows(name):  # ≤ 25 rows: torch.cdist takes exact differences
    rng = np.random.default_rng(1)
    a, b = embeddings(rng, 1, 16)[0], embeddings(rng, 4, 16)
    for x, y, shape in [(a, b, (1, 4)), (b, a, (4, 1)), (a, a, (1, 1))]:
        ours = getattr(util, name)(x, y)
        assert ours.shape == shape
        assert_close(ours, reference(getattr(st_util, name), x, y), atol=ATOL, what=f"{name} 1-D")


@pytest.mark.parametrize(("n", "dim"), [(1, 4), (9, 32), (200, 384)])
@pytest.mark.parametrize("name", ["pairwise_dot_score", "pairwise_cos_sim"])
def test_pairwise_scores_match_sentence_transformers(name, n, dim):
    rng = np.random.default_rng(n + dim)
    a, b = embeddings(rng, n, dim), embeddings(rng, n, dim)
    ours = getattr(util, name)(a, b)
    assert ours.dtype == np.float32 and ours.shape == (n,)
    assert_close(ours, reference(getattr(st_util, name), a, b), atol=ATOL, what=name)
    # 1-D inputs give a 0-d result, as in sentence-transformers.
    ours_1d = getattr(util, name)(a[0], b[0])
    ref_1d = reference(getattr(st_util, name), a[0], b[0])
    assert ours_1d.shape == ref_1d.shape == ()
    assert_close(ours_1d, ref_1d, atol=ATOL, what=f"{name} 1-D")


def exact_distances(a: np.ndarray, b: np.ndarray, name: str) -> np.ndarray:
    """The negative distances of euclidean_sim / manhattan_sim (or their pairwise forms), from float64 differences."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    difference = a64 - b64 if name.startswith("pairwise") else a64[:, None, :] - b64[None, :, :]
    if "euclidean" in name:
        return -np.sqrt((difference**2).sum(axis=-1))
    return -np.abs(difference).sum(axis=-1)


def assert_distances_match(ours, ref, exact, what: str) -> None:
    """Ours within float32 rounding of the exact value (1e-6 abs + rel), and within the reference's own error of it.
    torch.cdist (sentence-transformers' euclidean_sim) expands ‖a − b‖² in float32 beyond 25 rows: off by ~1e-3 at
    nearly equal rows; its p=1 sums in float32 (~3e-5 at dim 384)."""
    assert_close(ours, exact, atol=1e-6, rtol=1e-6, what=f"{what} vs float64")
    reference_error = float(np.abs(np.asarray(ref, np.float64) - exact).max(initial=0))
    assert_close(ours, ref, atol=reference_error + 2e-6, rtol=1e-6, what=f"{what} vs sentence-transformers")


@pytest.mark.parametrize(("n", "m", "dim"), [(1, 1, 4), (7, 13, 32), (64, 300, 384), (5, 3, 768), (3, 70000, 64)])
@pytest.mark.parametrize("name", ["euclidean_sim", "manhattan_sim"])
def test_distance_scores_match_sentence_transformers(name, n, m, dim):
    rng = np.random.default_rng(n * 1000 + m)
    a, b = embeddings(rng, n, dim), embeddings(rng, m, dim)
    b[: min(n, m)] = a[: min(n, m)]  # equal rows: distance 0, where the float32 expansion is worst
    ours = getattr(util, name)(a, b)  # (3, 70000, 64): manhattan_sim over several [rows, cols, dim] blocks
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float32 and ours.shape == (n, m)
    assert (ours <= 0).all()
    assert_distances_match(ours, reference(getattr(st_util, name), a, b), exact_distances(a, b, name), name)


@pytest.mark.parametrize(("n", "dim"), [(1, 4), (9, 32), (200, 384)])
@pytest.mark.parametrize("name", ["pairwise_euclidean_sim", "pairwise_manhattan_sim"])
def test_pairwise_distances_match_sentence_transformers(name, n, dim):
    rng = np.random.default_rng(n + dim)
    a, b = embeddings(rng, n, dim), embeddings(rng, n, dim)
    b[0] = a[0]
    ours = getattr(util, name)(a, b)
    assert ours.dtype == np.float32 and ours.shape == (n,) and ours[0] == 0  # a − a is exactly 0
    assert_distances_match(ours, reference(getattr(st_util, name), a, b), exact_distances(a, b, name), name)
    ours_1d = getattr(util, name)(a[-1], b[-1])
    ref_1d = reference(getattr(st_util, name), a[-1], b[-1])
    assert ours_1d.shape == ref_1d.shape == ()
    assert_distances_match(ours_1d, ref_1d, exact_distances(a[-1], b[-1], name), f"{name} 1-D")


def test_similarity_function_tables_name_sentence_transformers_functions():
    from sentence_transformers import SimilarityFunction

    from minibert.loading.config import SIMILARITY_FN_NAMES

    assert tuple(util.SIMILARITY_FUNCTIONS) == tuple(util.PAIRWISE_SIMILARITY_FUNCTIONS) == SIMILARITY_FN_NAMES
    for name, fn in util.SIMILARITY_FUNCTIONS.items():
        assert fn.__name__ == SimilarityFunction.to_similarity_fn(name).__name__
        pairwise = util.PAIRWISE_SIMILARITY_FUNCTIONS[name]
        assert pairwise.__name__ == SimilarityFunction.to_similarity_pairwise_fn(name).__name__


def test_euclidean_search_matches_sentence_transformers():
    rng = np.random.default_rng(11)
    queries, corpus = embeddings(rng, 9, 32), embeddings(rng, 120, 32)
    ours = util.semantic_search(queries, corpus, top_k=7, corpus_chunk_size=50, score_function=util.euclidean_sim)
    ref = st_util.semantic_search(
        torch.from_numpy(queries), torch.from_numpy(corpus), top_k=7, score_function=st_util.euclidean_sim
    )
    assert_same_hits(ours, ref, atol=1e-6, what="semantic_search by euclidean_sim")


@pytest.mark.parametrize("shape", [(5,), (1, 5), (40, 384)])
def test_normalize_embeddings_matches_sentence_transformers(shape):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    ours = util.normalize_embeddings(x)
    assert ours.dtype == np.float32 and ours.shape == x.shape
    ref = st_util.normalize_embeddings(torch.from_numpy(x)).numpy()
    assert_close(ours, ref, atol=ATOL, what="normalize_embeddings")
    assert_close(np.linalg.norm(ours, axis=-1), np.ones(shape[:-1]), atol=1e-6, what="row norms")


def test_zero_vectors_give_finite_zero_similarity():
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    b = np.array([[0.0, 0.0, 0.0], [3.0, -1.0, 0.5], [1e-30, 0.0, 0.0]], dtype=np.float32)
    ours = util.cos_sim(a, b)
    assert np.isfinite(ours).all(), ours
    assert (ours[0] == 0).all() and (ours[:, 0] == 0).all()
    assert_close(ours, reference(st_util.cos_sim, a, b), atol=ATOL, what="cos_sim with zero rows")
    pair = util.pairwise_cos_sim(a, b[:2])
    assert np.isfinite(pair).all() and pair[0] == 0
    assert_close(pair, reference(st_util.pairwise_cos_sim, a, b[:2]), atol=ATOL, what="pairwise_cos_sim zero")
    normalized = util.normalize_embeddings(np.zeros((2, 4)))
    assert np.isfinite(normalized).all() and (normalized == 0).all()


def test_lists_and_other_dtypes_are_accepted_and_give_float32():
    rng = np.random.default_rng(4)
    a64 = rng.standard_normal((3, 8))
    b64 = rng.standard_normal((5, 8))
    expected = reference(st_util.cos_sim, a64.astype(np.float32), b64.astype(np.float32))
    for a, b in [(a64, b64), (a64.tolist(), b64.tolist()), (a64.astype(np.float16), b64)]:
        ours = util.cos_sim(a, b)
        assert ours.dtype == np.float32
        atol = 2e-3 if np.asarray(a).dtype == np.float16 else ATOL
        assert_close(ours, expected, atol=atol, what="cos_sim on converted input")
    ints = np.arange(12).reshape(3, 4)
    ours = util.dot_score(ints, ints)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, (ints @ ints.T).astype(np.float32))


# ---------------------------------------------------------------------------------------------------------------
# semantic_search vs sentence_transformers.util.semantic_search

SEARCH_CASES = [
    # (n_queries, n_corpus, dim, top_k)
    (1, 1, 8, 1),
    (1, 50, 16, 10),
    (5, 50, 32, 10),
    (17, 200, 64, 5),
    (3, 20, 16, 50),  # top_k > corpus size: every entry comes back
    (30, 1000, 384, 1),
    (8, 64, 32, 64),  # top_k == corpus size
    (250, 300, 32, 7),  # more queries than the default query_chunk_size
]


@pytest.mark.parametrize(("n_queries", "n_corpus", "dim", "top_k"), SEARCH_CASES)
@pytest.mark.parametrize("score", ["cos_sim", "dot_score"])
def test_semantic_search_matches_sentence_transformers(score, n_queries, n_corpus, dim, top_k):
    rng = np.random.default_rng(n_queries * 7919 + n_corpus)
    queries, corpus = embeddings(rng, n_queries, dim), embeddings(rng, n_corpus, dim)
    ours = util.semantic_search(queries, corpus, top_k=top_k, score_function=getattr(util, score))
    ref = st_util.semantic_search(
        torch.from_numpy(queries), torch.from_numpy(corpus), top_k=top_k, score_function=getattr(st_util, score)
    )
    assert_same_hits(ours, ref, what=f"semantic_search[{score}]")
    assert all(len(hits) == min(top_k, n_corpus) for hits in ours)


@pytest.mark.parametrize(
    ("query_chunk_size", "corpus_chunk_size"), [(3, 7), (1, 1), (2, 1000), (1000, 5), (4, 13), (100, 500000)]
)
@pytest.mark.parametrize("score", ["cos_sim", "dot_score"])
def test_chunked_search_equals_unchunked_and_reference(score, query_chunk_size, corpus_chunk_size):
    rng = np.random.default_rng(11)
    queries, corpus = embeddings(rng, 23, 32), embeddings(rng, 101, 32)
    for top_k in (1, 6, 40, 500):
        ours = util.semantic_search(
            queries,
            corpus,
            query_chunk_size=query_chunk_size,
            corpus_chunk_size=corpus_chunk_size,
            top_k=top_k,
            score_function=getattr(util, score),
        )
        unchunked = util.semantic_search(
            queries, corpus, query_chunk_size=10**6, corpus_chunk_size=10**6, top_k=top_k,
            score_function=getattr(util, score),
        )  # fmt: skip
        assert_same_hits(ours, unchunked, what=f"chunked vs unchunked (top_k={top_k})")
        ref = st_util.semantic_search(
            torch.from_numpy(queries),
            torch.from_numpy(corpus),
            query_chunk_size=query_chunk_size,
            corpus_chunk_size=corpus_chunk_size,
            top_k=top_k,
            score_function=getattr(st_util, score),
        )
        assert_same_hits(ours, ref, what=f"chunked vs sentence-transformers (top_k={top_k})")


def test_custom_score_function_matches_reference_equivalent():
    """A user-supplied NumPy score function (negative euclidean distance) vs st_util.euclidean_sim."""
    rng = np.random.default_rng(5)
    queries, corpus = embeddings(rng, 6, 24), embeddings(rng, 80, 24)

    def neg_euclidean(a, b):
        return -np.sqrt(((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1))

    ours = util.semantic_search(queries, corpus, corpus_chunk_size=9, top_k=12, score_function=neg_euclidean)
    ref = st_util.semantic_search(
        torch.from_numpy(queries), torch.from_numpy(corpus), top_k=12, score_function=st_util.euclidean_sim
    )
    assert_same_hits(ours, ref, atol=1e-5, what="semantic_search[neg euclidean]")


@pytest.mark.parametrize(("query_chunk_size", "corpus_chunk_size"), [(3, 7), (1, 50), (8, 1), (64, 64)])
def test_chunking_bounds_the_score_matrix(monkeypatch, query_chunk_size, corpus_chunk_size):
    rng = np.random.default_rng(6)
    n_queries, n_corpus = 20, 45
    queries, corpus = embeddings(rng, n_queries, 16), embeddings(rng, n_corpus, 16)
    expected_calls = math.ceil(n_queries / query_chunk_size) * math.ceil(n_corpus / corpus_chunk_size)
    limit = (min(query_chunk_size, n_queries), min(corpus_chunk_size, n_corpus))

    # A custom score function is called once per (query chunk, corpus chunk) pair, never on more.
    shapes: list[tuple[int, int]] = []

    def recording_dot(a, b):
        shapes.append((len(a), len(b)))
        return util.dot_score(a, b)

    ours = util.semantic_search(
        queries, corpus, query_chunk_size, corpus_chunk_size, top_k=5, score_function=recording_dot
    )
    assert len(shapes) == expected_calls, shapes
    assert all(q <= limit[0] and c <= limit[1] for q, c in shapes), f"score matrices {shapes} exceed {limit}"
    assert sum(q * c for q, c in shapes) == n_queries * n_corpus  # every pair scored exactly once
    assert_same_hits(ours, util.semantic_search(queries, corpus, top_k=5, score_function=util.dot_score))

    # The default cos_sim path takes a shortcut through dot_score on pre-normalized chunks: same bound.
    shapes.clear()
    original_dot = util.dot_score

    def recording_module_dot(a, b):
        shapes.append((len(a), len(b)))
        return original_dot(a, b)

    monkeypatch.setattr(util, "dot_score", recording_module_dot)
    ours = util.semantic_search(queries, corpus, query_chunk_size, corpus_chunk_size, top_k=5)
    assert len(shapes) == expected_calls, shapes
    assert all(q <= limit[0] and c <= limit[1] for q, c in shapes), f"score matrices {shapes} exceed {limit}"
    ref = st_util.semantic_search(torch.from_numpy(queries), torch.from_numpy(corpus), top_k=5)
    assert_same_hits(ours, ref, what="cos_sim path under recording")


def test_result_format_is_plain_python():
    rng = np.random.default_rng(7)
    hits = util.semantic_search(embeddings(rng, 3, 8), embeddings(rng, 30, 8), top_k=4, corpus_chunk_size=7)
    assert isinstance(hits, list) and len(hits) == 3
    for query_hits in hits:
        assert isinstance(query_hits, list) and len(query_hits) == 4
        for hit in query_hits:
            assert set(hit) == {"corpus_id", "score"}
            assert type(hit["corpus_id"]) is int and type(hit["score"]) is float
        scores = [hit["score"] for hit in query_hits]
        assert scores == sorted(scores, reverse=True)


def test_single_1d_query_and_1d_corpus_entry():
    rng = np.random.default_rng(8)
    query, corpus = embeddings(rng, 1, 8)[0], embeddings(rng, 12, 8)
    ours = util.semantic_search(query, corpus, top_k=3)
    ref = st_util.semantic_search(torch.from_numpy(query), torch.from_numpy(corpus), top_k=3)
    assert len(ours) == 1
    assert_same_hits(ours, ref)
    single = util.semantic_search(corpus[:4], corpus[2], top_k=3)  # 1-D corpus: one entry
    assert [[hit["corpus_id"] for hit in hits] for hits in single] == [[0]] * 4


def test_empty_queries_and_empty_corpus():
    rng = np.random.default_rng(9)
    queries, corpus = embeddings(rng, 4, 8), embeddings(rng, 10, 8)
    assert util.semantic_search(np.zeros((0, 8), np.float32), corpus) == []
    assert util.semantic_search([], corpus) == []
    assert util.semantic_search(queries, np.zeros((0, 8), np.float32)) == [[], [], [], []]
    assert util.semantic_search(queries, []) == [[], [], [], []]
    assert util.semantic_search([], []) == []
    assert util.dot_score(np.zeros((0, 8)), corpus).shape == (0, 10)
    assert util.cos_sim(queries, np.zeros((0, 8))).shape == (4, 0)


def test_exact_ties_prefer_lower_corpus_ids_whatever_the_chunking():
    # Corpus rows repeat, so dot scores tie exactly (integers are exact in float32).
    base = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float32)
    corpus = np.tile(base, (5, 1))  # ids i, i+4, i+8, ... share a row
    query = np.array([[2, 1, 0]], dtype=np.float32)  # scores: base rows 0..3 -> 2, 1, 3, 0
    expected = brute_force_search(query, corpus, 7)[0]
    assert [hit["corpus_id"] for hit in expected] == [2, 6, 10, 14, 18, 0, 4]
    for corpus_chunk_size in (1, 2, 3, 4, 5, 7, 20):
        ours = util.semantic_search(
            query, corpus, corpus_chunk_size=corpus_chunk_size, top_k=7, score_function=util.dot_score
        )
        assert ours[0] == expected, f"corpus_chunk_size={corpus_chunk_size}: {ours[0]} vs {expected}"


@settings(max_examples=150, deadline=None)
@given(
    n_queries=st.integers(0, 9),
    n_corpus=st.integers(0, 40),
    dim=st.integers(1, 4),
    top_k=st.integers(1, 50),
    query_chunk_size=st.integers(1, 12),
    corpus_chunk_size=st.integers(1, 45),
    seed=st.integers(0, 2**32 - 1),
)
def test_chunked_search_equals_brute_force_on_exact_data(
    n_queries, n_corpus, dim, top_k, query_chunk_size, corpus_chunk_size, seed
):
    """Small integer embeddings: every score is exact and ties are frequent, so any chunking must give
    exactly the brute-force (score desc, corpus_id asc) ranking."""
    rng = np.random.default_rng(seed)
    queries = rng.integers(-2, 3, size=(n_queries, dim)).astype(np.float32)
    corpus = rng.integers(-2, 3, size=(n_corpus, dim)).astype(np.float32)
    ours = util.semantic_search(
        queries,
        corpus,
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
        top_k=top_k,
        score_function=util.dot_score,
    )
    assert ours == brute_force_search(queries, corpus, top_k)


def test_nan_scores_rank_last():
    corpus = np.eye(4, dtype=np.float32)

    def with_nan(a, b):
        scores = util.dot_score(a, b)
        scores[:, 1] = np.nan
        return scores

    hits = util.semantic_search(np.array([[0.1, 0.9, 0.5, 0.2]]), corpus, top_k=4, score_function=with_nan)[0]
    assert [hit["corpus_id"] for hit in hits[:3]] == [2, 3, 0]
    assert hits[3]["corpus_id"] == 1 and math.isnan(hits[3]["score"])
    hits = util.semantic_search(np.array([[0.1, 0.9, 0.5, 0.2]]), corpus, top_k=2, score_function=with_nan)[0]
    assert [hit["corpus_id"] for hit in hits] == [2, 3]


# ---------------------------------------------------------------------------------------------------------------
# Bad input

GOOD = np.ones((2, 4), dtype=np.float32)
MATRIX_FUNCTIONS = [
    *util.SIMILARITY_FUNCTIONS.values(),
    *util.PAIRWISE_SIMILARITY_FUNCTIONS.values(),
]


@pytest.mark.parametrize("fn", [*MATRIX_FUNCTIONS, util.semantic_search])
def test_mismatched_dimensions_name_both_shapes(fn):
    with pytest.raises(InputError) as excinfo:
        fn(GOOD, np.ones((2, 5)))
    message = str(excinfo.value)
    assert "(2, 4)" in message and "(2, 5)" in message, message
    assert isinstance(excinfo.value, ValueError) and isinstance(excinfo.value, MinibertError)


@pytest.mark.parametrize("fn", util.PAIRWISE_SIMILARITY_FUNCTIONS.values())
def test_pairwise_needs_equal_row_counts(fn):
    with pytest.raises(InputError, match=r"\(2, 4\).*\(3, 4\)"):
        fn(GOOD, np.ones((3, 4)))


@pytest.mark.parametrize("fn", [*MATRIX_FUNCTIONS, util.semantic_search])
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (np.ones((2, 3, 4)), InputError),  # 3-D
        (np.float32(1.0), InputError),  # 0-d
        ([[1.0, 2.0], [3.0]], InputError),  # ragged
        (np.array([["a", "b", "c", "d"]]), InputTypeError),  # strings
        ("text", InputTypeError),
        (np.array([[1 + 2j, 0, 0, 0]]), InputTypeError),  # complex
        ([[None, 1.0, 2.0, 3.0]], InputTypeError),  # object
    ],
)
def test_bad_embeddings_raise(fn, bad, error):
    with pytest.raises(error):
        fn(bad, GOOD)
    with pytest.raises(error):
        fn(GOOD, bad)


def test_normalize_embeddings_bad_input():
    with pytest.raises(InputError, match="3-D"):
        util.normalize_embeddings(np.ones((1, 2, 3)))
    with pytest.raises(InputTypeError):
        util.normalize_embeddings(["a", "b"])


@pytest.mark.parametrize("name", ["top_k", "query_chunk_size", "corpus_chunk_size"])
@pytest.mark.parametrize(
    ("value", "error"),
    [(0, InputError), (-3, InputError), (2.5, InputTypeError), ("5", InputTypeError), (True, InputTypeError)],
)
def test_bad_search_sizes_raise(name, value, error):
    with pytest.raises(error, match=name):
        util.semantic_search(GOOD, GOOD, **{name: value})


def test_numpy_integer_sizes_are_accepted():
    hits = util.semantic_search(
        GOOD, GOOD, query_chunk_size=np.int64(1), corpus_chunk_size=np.int32(1), top_k=np.int8(1)
    )
    assert [len(h) for h in hits] == [1, 1]


def test_bad_score_function_raises():
    with pytest.raises(InputTypeError, match="callable"):
        util.semantic_search(GOOD, GOOD, score_function="cosine")
    with pytest.raises(InputError, match="shape"):
        util.semantic_search(GOOD, GOOD, score_function=lambda a, b: np.zeros((len(a), len(b) + 1)))
    with pytest.raises(InputTypeError, match="numbers"):
        util.semantic_search(GOOD, GOOD, score_function=lambda a, b: np.full((len(a), len(b)), "x"))


def test_util_does_not_import_torch():
    code = (
        "import sys, numpy as np; import minibert.util as u; "
        "u.semantic_search(np.ones((2, 3)), np.ones((4, 3)), top_k=2); "
        "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
