"""minibert.quantize_embeddings vs the live sentence_transformers.quantize_embeddings (bitwise), encode(precision=...),
and util.semantic_search_binary vs a brute-force float64 search of the same definition (and faiss, when installed).

Inputs: random embeddings (float32 / float64 / float16; awkward widths 1, 7, 9, 63, 65, 385 for the bit packing)
and real all-MiniLM-L6-v2 embeddings of the example corpus and its clauses; 1-D and 2-D; ranges given, computed
from calibration embeddings, or from the embeddings themselves; token-embedding matrices sharing one set of ranges.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import quantize_embeddings as reference_quantize

import minibert
from minibert import InputError, InputTypeError, MinibertError, util
from minibert.quantization import PRECISIONS
from tests.helpers import ROOT

PACKED = ("binary", "ubinary")
SCALAR = ("int8", "uint8")


def assert_bitwise(ours, ref, what: str) -> None:
    """Same type, dtype, shape and bits; on failure the first few differing (index, ours, reference) triples."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} vs reference {ref.dtype}"
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} vs reference {ref.shape}"
    differ = np.argwhere(ours != ref)
    if differ.size:
        pairs = [(tuple(int(i) for i in index), ours[tuple(index)], ref[tuple(index)]) for index in differ[:5]]
        pytest.fail(f"{what}: {len(differ)} of {ours.size} values differ; first (index, ours, reference): {pairs}")


def random_embeddings(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """Embeddings at the scale of real ones, some exactly 0 (the sign bit's boundary), some repeated per column
    (a zero-width range)."""
    x = rng.standard_normal(shape) / math.sqrt(shape[-1])
    x[..., ::5] = np.where(rng.random(x[..., ::5].shape) < 0.2, 0.0, x[..., ::5])
    if x.ndim == 2 and shape[-1] > 3:
        x[:, 3] = 0.25  # one column with min == max
    return x.astype(dtype)


@pytest.fixture(scope="module")
def model(real_model_dir):
    return minibert.SentenceTransformer(real_model_dir)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """The example corpus, its passages and their clauses: ~150 varied real texts."""
    lines = (ROOT / "examples" / "corpus.txt").read_text(encoding="utf-8").splitlines()
    clauses = [c for line in lines for c in re.split(r"[,;] ", line) if c]
    return [*lines, *clauses]


@pytest.fixture(scope="module")
def real_embeddings(model, texts) -> np.ndarray:
    return model.encode(texts)  # [n, 384] float32, normalized


# ------------------------------------------------------------------------------- quantize_embeddings, bitwise


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("dim", [1, 7, 9, 63, 65, 384, 385])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_random_2d_embeddings_quantize_bitwise_as_sentence_transformers(precision, dim, dtype):
    rng = np.random.default_rng(dim)
    x = random_embeddings(rng, (150, dim), dtype)
    assert_bitwise(minibert.quantize_embeddings(x, precision), reference_quantize(x, precision), f"{precision} d={dim}")


@pytest.mark.parametrize("dim", [7, 65, 384])
@pytest.mark.parametrize("precision", SCALAR)
def test_ranges_and_calibration_quantize_bitwise_as_sentence_transformers(precision, dim):
    rng = np.random.default_rng(100 + dim)
    x = random_embeddings(rng, (40, dim))
    calibration = random_embeddings(rng, (300, dim), np.float64)  # narrower than x in places: codes clip to 0 / 255
    ranges = np.stack([calibration.min(axis=0), calibration.max(axis=0)])
    ranges_f32 = ranges.astype(np.float32)
    cases = {
        "ranges float64": dict(ranges=ranges),
        "ranges float32": dict(ranges=ranges_f32),
        "ranges as lists": dict(ranges=ranges_f32.tolist()),
        "calibration": dict(calibration_embeddings=calibration),
        "narrower ranges beat calibration": dict(ranges=ranges_f32 / 4, calibration_embeddings=calibration),
    }
    for case, kwargs in cases.items():
        ref_kwargs = {**kwargs, "ranges": None if "ranges" not in kwargs else np.asarray(kwargs["ranges"])}
        ours = minibert.quantize_embeddings(x, precision, **kwargs)
        assert_bitwise(ours, reference_quantize(x, precision, **ref_kwargs), f"{precision} d={dim} {case}")
    codes = ours.astype(np.int16) + (128 if precision == "int8" else 0)  # the narrower ranges' codes
    assert codes.min() == 0 and codes.max() == 255, "the clipping to 0 … 255 is exercised"


@pytest.mark.parametrize("precision", PRECISIONS)
def test_1d_embeddings_quantize_bitwise_as_sentence_transformers(precision):
    rng = np.random.default_rng(5)
    x = random_embeddings(rng, (37,))
    kwargs = {"calibration_embeddings": random_embeddings(rng, (20, 37))} if precision in SCALAR else {}
    ours = minibert.quantize_embeddings(x, precision, **kwargs)
    assert_bitwise(ours, reference_quantize(x, precision, **kwargs), f"1-D {precision}")
    assert ours.shape == ((5,) if precision in PACKED else (37,))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_real_minilm_embeddings_quantize_bitwise_as_sentence_transformers(real_embeddings, precision):
    assert real_embeddings.shape[0] >= 100
    ours = minibert.quantize_embeddings(real_embeddings, precision)
    assert_bitwise(ours, reference_quantize(real_embeddings, precision), f"all-MiniLM-L6-v2 {precision}")
    queries, corpus = real_embeddings[:10], real_embeddings[10:]
    if precision in SCALAR:  # the queries quantized with the corpus' ranges, as a search would
        ours = minibert.quantize_embeddings(queries, precision, calibration_embeddings=corpus)
        ref = reference_quantize(queries, precision, calibration_embeddings=corpus)
        assert_bitwise(ours, ref, f"all-MiniLM-L6-v2 queries {precision}, corpus-calibrated")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_token_embedding_matrices_share_one_set_of_ranges(precision):
    rng = np.random.default_rng(9)
    matrices = [random_embeddings(rng, (length, 24)) for length in (5, 1, 17, 0, 3)]
    ours = minibert.quantize_embeddings(matrices, precision)
    ref = reference_quantize(matrices, precision)
    assert isinstance(ours, list) and len(ours) == len(ref) == len(matrices)
    for i, (o, r) in enumerate(zip(ours, ref, strict=True)):
        assert_bitwise(o, r, f"matrix {i} {precision}")
    if precision in SCALAR:
        alone = minibert.quantize_embeddings(matrices[0], precision)  # its own ranges: other codes
        assert not np.array_equal(alone, ours[0])


def test_empty_inputs_keep_their_width(model):
    for precision in PRECISIONS:
        ours = minibert.quantize_embeddings(np.zeros((0, 13), np.float32), precision)
        assert_bitwise(ours, reference_quantize(np.zeros((0, 13), np.float32), precision), f"empty {precision}")
        assert minibert.quantize_embeddings([], precision) == []
        encoded = model.encode([], precision=precision)
        assert encoded.shape == ((0, 48) if precision in PACKED else (0, 384))


def test_quantize_is_exported_where_sentence_transformers_has_it():
    assert minibert.quantize_embeddings is util.quantize_embeddings


# ------------------------------------------------------------------------------------ encode(precision=...)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_encode_precision_quantizes_the_float_embeddings_of_the_call(model, real_model_dir, texts, precision):
    """Bitwise sentence-transformers' quantize_embeddings of minibert's float32 embeddings; against sentence-
    transformers' own encode(precision=...) at most one int8 step apart, and a bit differs only where the float
    value is within the float32 parity bound (1e-5) of 0."""
    floats = model.encode(texts)
    ours = model.encode(texts, precision=precision)
    assert_bitwise(ours, reference_quantize(floats, precision), f"encode(precision={precision!r})")
    from sentence_transformers import SentenceTransformer as Reference

    ref = Reference(str(real_model_dir), device="cpu").encode(texts, precision=precision)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    if precision in SCALAR:
        steps = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
        assert steps.max() <= 1 and steps.mean() < 0.01, (steps.max(), steps.mean())
    elif precision in PACKED:
        bits_ours = minibert.quantization.unpack_bits(ours, precision, 384)
        bits_ref = minibert.quantization.unpack_bits(ref, precision, 384)
        assert (np.abs(floats[bits_ours != bits_ref]) <= 1e-5).all()
    as_list = model.encode(texts[:3], precision=precision, convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == 3
    assert_bitwise(np.stack(as_list), model.encode(texts[:3], precision=precision), "convert_to_numpy=False")


def test_encode_precision_of_one_text(model):
    """binary needs no ranges; int8 ranges from one embedding are refused, as in sentence-transformers."""
    one = model.encode("bake bread", precision="ubinary")
    assert one.shape == (48,) and one.dtype == np.uint8
    assert_bitwise(one, reference_quantize(model.encode("bake bread"), "ubinary"), "one text ubinary")
    with pytest.raises(InputError, match=r"int8 quantization cannot compute its ranges from a single embedding"):
        model.encode("bake bread", precision="int8")


# --------------------------------------------------------------------------------------- semantic_search_binary


def brute_force_binary_search(queries, corpus_bits, top_k: int, multiplier: int, rescore: bool) -> list:
    """The definition, written plainly in float64: Hamming distances on the unpacked bits, the top_k · multiplier
    nearest (ties: lower id), rescored as query · bits (0 / 1), sorted by (score descending, id ascending)."""
    dim = queries.shape[1]
    query_bits = (queries > 0).astype(np.int64)  # [n, dim]
    hamming = (query_bits[:, None, :] != corpus_bits[None, :, :dim]).sum(axis=-1)  # [n, m]
    ids = np.arange(corpus_bits.shape[0])
    results = []
    for query, row in zip(queries.astype(np.float64), hamming, strict=True):
        candidates = np.lexsort((ids, row))[: top_k * multiplier if rescore else top_k]
        if not rescore:
            results.append([{"corpus_id": int(i), "score": float(row[i])} for i in candidates])
            continue
        scores = corpus_bits[candidates, :dim].astype(np.float64) @ query
        order = np.lexsort((candidates, -scores))[:top_k]
        results.append([{"corpus_id": int(candidates[i]), "score": float(scores[i])} for i in order])
    return results


def assert_same_search(ours: list, ref: list, what: str, atol: float = 1e-12) -> None:
    assert len(ours) == len(ref), what
    for q, (o, r) in enumerate(zip(ours, ref, strict=True)):
        assert [h["corpus_id"] for h in o] == [h["corpus_id"] for h in r], f"{what}: query {q}: {o[:4]} vs {r[:4]}"
        assert np.allclose([h["score"] for h in o], [h["score"] for h in r], rtol=0, atol=atol), f"{what}: query {q}"


SEARCH_CASES = [
    # (n_queries, n_corpus, dim, top_k, rescore_multiplier, query_chunk_size, corpus_chunk_size)
    (1, 1, 8, 1, 1, 100, 50000),
    (5, 300, 37, 10, 2, 2, 64),  # odd width: padding bits; many Hamming ties
    (40, 3000, 384, 10, 4, 100, 700),
    (3, 20, 16, 50, 2, 100, 7),  # top_k beyond the corpus: every entry comes back
    (130, 500, 65, 5, 3, 100, 500),  # more queries than one chunk
]


@pytest.mark.parametrize("rescore", [True, False])
@pytest.mark.parametrize("corpus_precision", PACKED)
@pytest.mark.parametrize(("n_queries", "n_corpus", "dim", "top_k", "multiplier", "q_chunk", "c_chunk"), SEARCH_CASES)
def test_binary_search_equals_brute_force(n_queries, n_corpus, dim, top_k, multiplier, q_chunk, c_chunk,
                                          corpus_precision, rescore):  # fmt: skip
    rng = np.random.default_rng(n_corpus + dim)
    corpus = random_embeddings(rng, (n_corpus, dim))
    queries = random_embeddings(rng, (n_queries, dim))
    packed = minibert.quantize_embeddings(corpus, corpus_precision)
    ours = util.semantic_search_binary(
        queries, packed, corpus_precision, top_k=top_k, rescore=rescore, rescore_multiplier=multiplier,
        query_chunk_size=q_chunk, corpus_chunk_size=c_chunk,
    )  # fmt: skip
    expected = brute_force_binary_search(queries, (corpus > 0).astype(np.int64), top_k, multiplier, rescore)
    assert_same_search(ours, expected, f"{corpus_precision} rescore={rescore}")
    assert all(len(hits) == min(top_k, n_corpus) for hits in ours)


def test_binary_search_without_rescoring_takes_packed_queries_too(real_embeddings):
    corpus = minibert.quantize_embeddings(real_embeddings, "ubinary")
    from_floats = util.semantic_search_binary(real_embeddings[:5], corpus, rescore=False)
    from_packed = util.semantic_search_binary(corpus[:5], corpus, rescore=False)
    assert from_floats == from_packed
    assert all(hits[0] == {"corpus_id": q, "score": 0.0} for q, hits in enumerate(from_packed))  # itself, distance 0


def test_binary_search_result_format_is_semantic_search_s(real_embeddings):
    queries, corpus = real_embeddings[:4], real_embeddings[4:]
    ours = util.semantic_search_binary(queries, minibert.quantize_embeddings(corpus, "ubinary"), top_k=5)
    plain = util.semantic_search(queries, corpus, top_k=5)
    assert type(ours) is type(plain) is list and len(ours) == len(plain)
    for hits, plain_hits in zip(ours, plain, strict=True):
        assert len(hits) == len(plain_hits) == 5
        for hit, plain_hit in zip(hits, plain_hits, strict=True):
            assert hit.keys() == plain_hit.keys() == {"corpus_id", "score"}
            assert type(hit["corpus_id"]) is type(plain_hit["corpus_id"]) is int
            assert type(hit["score"]) is type(plain_hit["score"]) is float
        scores = [hit["score"] for hit in hits]
        assert scores == sorted(scores, reverse=True)
    one = util.semantic_search_binary(queries[0], minibert.quantize_embeddings(corpus, "ubinary"), top_k=5)
    assert one == ours[:1]  # a 1-D query is one query
    assert (
        util.semantic_search_binary(np.zeros((0, 384), np.float32), minibert.quantize_embeddings(corpus, "ubinary"))
        == []
    )


def test_binary_search_with_rescoring_finds_what_float_search_finds(real_embeddings):
    """On real embeddings, binary search with rescoring keeps most of float32 search's top 10 (a sanity bound)."""
    queries, corpus = real_embeddings[:30], real_embeddings[30:]
    exact = util.semantic_search(queries, corpus, top_k=10)
    binary = util.semantic_search_binary(queries, minibert.quantize_embeddings(corpus, "binary"), "binary", top_k=10,
                                         rescore_multiplier=4)  # fmt: skip
    overlap = np.mean([len({h["corpus_id"] for h in a} & {h["corpus_id"] for h in b}) / 10
                       for a, b in zip(exact, binary, strict=True)])  # fmt: skip
    assert overlap >= 0.7, overlap


@pytest.mark.parametrize("rescore", [True, False])
@pytest.mark.parametrize("multiplier", [1, 4])
def test_binary_search_matches_sentence_transformers_faiss(real_embeddings, rescore, multiplier):
    """sentence-transformers' semantic_search_faiss with an exact ubinary index, live (when faiss is installed)."""
    pytest.importorskip("faiss")
    from sentence_transformers.util.quantization import semantic_search_faiss

    queries, corpus = real_embeddings[:20], minibert.quantize_embeddings(real_embeddings[20:], "ubinary")
    ours = util.semantic_search_binary(queries, corpus, top_k=10, rescore=rescore, rescore_multiplier=multiplier)
    ref, _ = semantic_search_faiss(queries, corpus_embeddings=corpus, corpus_precision="ubinary", top_k=10,
                                   rescore=rescore, rescore_multiplier=multiplier)  # fmt: skip
    assert_same_search(ours, ref, f"vs semantic_search_faiss rescore={rescore}")


# ------------------------------------------------------------------------------------------------ bad input

GOOD = random_embeddings(np.random.default_rng(0), (4, 10))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        (dict(precision="int4"), InputError, r"precision 'int4' is not supported; pass one of 'float32', 'int8'"),
        (dict(precision=None), InputTypeError, r"precision must be a str, one of 'float32'"),
        (dict(embeddings=GOOD.astype(np.int8)), InputTypeError, r"float embeddings.*look quantized already"),
        (dict(embeddings=["a", "b"]), InputTypeError, r"embeddings must hold float embeddings"),
        (dict(embeddings=np.ones((2, 3, 4))), InputError, r"embeddings must be 1-D \[d\] or 2-D \[n, d\], got 3-D"),
        (dict(embeddings=[[1.0, 2.0], [3.0]]), InputError, r"embeddings could not be read as an array"),
        (dict(ranges=np.ones((2, 9))), InputError, r"ranges must have shape \(2, 10\).*got shape \(2, 9\)"),
        (dict(ranges=np.ones(10)), InputError, r"ranges must have shape \(2, 10\)"),
        (dict(ranges=np.stack([np.ones(10), np.zeros(10)])), InputError, r"ranges\[0\] \(minimum\) exceeds"),
        (dict(ranges=np.full((2, 10), np.nan)), InputError, r"ranges must be finite"),
        (dict(ranges=np.full((2, 10), "x")), InputTypeError, r"ranges must hold numbers"),
        (dict(calibration_embeddings=np.ones((5, 9))), InputError, r"calibration_embeddings must have shape \(m, 10\)"),
        (dict(calibration_embeddings=np.ones(10)), InputError, r"calibration_embeddings must be 2-D"),
        (dict(calibration_embeddings=np.ones((3, 10), int)), InputTypeError, r"calibration_embeddings must hold float"),
        (dict(embeddings=GOOD[0]), InputError, r"cannot compute its ranges from a single embedding.*ranges="),
        (dict(embeddings=np.where(GOOD > 0, np.nan, GOOD)), InputError, r"embeddings hold NaN"),
        (dict(calibration_embeddings=np.full((3, 10), np.inf)), InputError, r"calibration_embeddings hold NaN or inf"),
        (dict(embeddings=[GOOD, GOOD[:, :3]]), InputError, r"embeddings\[1\] has shape \(4, 3\).*same width"),
    ],
)
def test_bad_quantize_arguments_say_what_to_pass(kwargs, error, pattern):
    arguments = {"embeddings": GOOD, "precision": "int8", **kwargs}
    with pytest.raises(error, match=pattern) as info:
        minibert.quantize_embeddings(**arguments)
    assert isinstance(info.value, MinibertError) and "\n" not in str(info.value)


def test_nan_is_refused_only_where_it_has_no_code():
    x = np.array([[np.nan, 1.0], [0.5, -1.0]], np.float32)
    assert_bitwise(minibert.quantize_embeddings(x, "ubinary"), reference_quantize(x, "ubinary"), "NaN → bit 0")
    with pytest.raises(InputError, match="NaN"):
        minibert.quantize_embeddings(x, "uint8", ranges=np.array([[0.0, 0.0], [1.0, 1.0]]))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        (dict(corpus_precision="int8"), InputError, r"corpus_precision must be 'ubinary' or 'binary'"),
        (dict(corpus_embeddings=GOOD), InputTypeError, r"corpus_embeddings must be packed bits of dtype uint8"),
        (dict(corpus_precision="binary"), InputTypeError, r"packed bits of dtype int8.*'binary'"),
        (dict(query_embeddings=np.ones((2, 17), np.float32)), InputError, r"\(2, 3\).*\(4, 2\)"),
        (dict(query_embeddings=np.zeros((2, 2), np.uint8)), InputError, r"rescore=True needs the float query"),
        (dict(query_embeddings=np.zeros((2, 2), np.int8), rescore=False), InputTypeError, r"query_embeddings must"),
        (dict(top_k=0), InputError, r"top_k must be a positive integer"),
        (dict(rescore_multiplier=1.5), InputTypeError, r"rescore_multiplier must be a positive integer"),
        (dict(corpus_chunk_size=-1), InputError, r"corpus_chunk_size must be a positive integer"),
    ],
)
def test_bad_binary_search_arguments_say_what_to_pass(kwargs, error, pattern):
    arguments = {"query_embeddings": GOOD, "corpus_embeddings": minibert.quantize_embeddings(GOOD, "ubinary"), **kwargs}
    with pytest.raises(error, match=pattern) as info:
        util.semantic_search_binary(**arguments)
    assert isinstance(info.value, MinibertError) and "\n" not in str(info.value)


def test_quantization_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, minibert; "
        "minibert.quantize_embeddings(np.ones((3, 9), np.float32), 'int8'); "
        "corpus = minibert.quantize_embeddings(np.ones((3, 9)), 'ubinary'); "
        "minibert.util.semantic_search_binary(np.ones((2, 9)), corpus); "
        "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(ROOT))
