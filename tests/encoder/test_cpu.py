"""The fast NumPy forward's building blocks vs float64 references (the whole forward is checked against the
live reference in test_parity_*.py and test_architectures.py, for both NumPy implementations)."""

from __future__ import annotations

import importlib.util
import itertools
import threading

import numpy as np
import pytest
import torch

import minibert
from minibert.cli import THREADS_ENV, threads_from_env
from minibert.encoder import blas, cpu, threads
from minibert.encoder.head import logits as head_logits
from minibert.encoder.reference import layer_norm
from minibert.testing import RAGGED, assert_close, reference_hidden_states
from tests.helpers import ROOT

pytestmark = pytest.mark.numeric  # also run with NumPy's AVX-512 / AVX2 kernels switched off (Makefile)


# The fast GELU's error bound, derived in minibert.encoder.cpu.bias_gelu_: |Δ| ≤ GELU_ULPS · ulp(GELU(x)) + GELU_FLOOR.
GELU_ULPS = 8
GELU_FLOOR = 2e-7


def _float32_spread(high: float, stride: int = 1021) -> np.ndarray:
    """Every `stride`-th float32 bit pattern in [0, high], and their negatives: all binades, subnormals included."""
    top = int(np.float32(high).view(np.uint32))
    magnitudes = np.arange(0, top + 1, stride, dtype=np.uint32).view(np.float32)
    return np.concatenate([magnitudes, -magnitudes])


def test_fast_gelu_is_within_its_derived_bound_of_the_exact_gelu():
    x = _float32_spread(12.0)
    x = x[: x.size // 64 * 64]
    exact = torch.nn.functional.gelu(torch.from_numpy(x).double()).numpy()
    ours = cpu.bias_gelu_(x.reshape(64, -1).copy(), np.zeros(64, dtype=np.float32)).reshape(-1)
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    error = np.abs(ours.astype(np.float64) - exact)
    bound = GELU_ULPS * ulp + GELU_FLOOR
    worst = int(np.argmax(error / bound))
    assert (error <= bound).all(), (
        f"fast GELU({x[worst]!r}) = {ours[worst]!r}, exact {exact[worst]!r}: |Δ| {error[worst]:.3g} = "
        f"{error[worst] / ulp[worst]:.1f} ulp, over the bound {GELU_ULPS} ulp + {GELU_FLOOR:g}"
    )
    assert not ours[x < -6].any()  # x·Φ(x) < 1e-8 there: exactly 0, not a residue that grows with |x|
    np.testing.assert_array_equal(ours[x > 6], x[x > 6])  # GELU(x) = x once Φ(x) rounds to 1


def test_numpys_float32_exp_is_within_what_the_gelu_bound_assumes():
    """The bound's one CPU-dependent input: NumPy's float32 exp within 3 ulp (2.45 measured with its AVX2 kernel)
    over the arguments the fast GELU gives it (|g| ≤ 30 covers |x| ≤ 4√2), on whatever SIMD level this run uses."""
    x = _float32_spread(30.0, stride=4099)
    exact = np.exp(x.astype(np.float64))
    ulps = np.abs(np.exp(x).astype(np.float64) - exact) / np.spacing(exact.astype(np.float32))
    assert ulps.max() <= 3, f"np.exp(float32({x[np.argmax(ulps)]!r})) is {ulps.max():.2f} ulp off"


def test_gelu_coefficients_are_the_fit_that_tools_fit_gelu_produces():
    spec = importlib.util.spec_from_file_location("fit_gelu", ROOT / "tools" / "fit_gelu.py")
    fit_gelu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit_gelu)
    coefficients, error = fit_gelu.fit()
    assert error < 1e-7
    np.testing.assert_allclose(np.array(cpu.GELU_S, dtype=np.float64), coefficients, rtol=1e-6)  # float32 rounding


def test_bias_gelu_adds_the_bias_in_every_row_block():
    rng = np.random.default_rng(1)
    h = rng.normal(size=(300, 517)).astype(np.float32)  # [F, N]: 3 blocks of rows, the last one short
    bias = rng.normal(size=300).astype(np.float32)
    expected = torch.nn.functional.gelu(torch.from_numpy(h).double() + torch.from_numpy(bias[:, None]).double())
    expected = expected.numpy()
    assert_close(cpu.bias_gelu_(h.copy(), bias), expected, atol=2e-6, rtol=1e-6, what="bias + GELU")


def test_residual_layernorm_matches_the_reference_layer_norm():
    rng = np.random.default_rng(2)
    h = (rng.normal(size=(301, 384)) * 5 + 2).astype(np.float32)
    residual = rng.normal(size=(301, 384)).astype(np.float32)
    bias, weight, ln_bias = (rng.normal(size=384).astype(np.float32) for _ in range(3))
    expected = layer_norm((h.astype(np.float64) + residual + bias), weight, ln_bias, 1e-12)  # [N, C]
    got = cpu.residual_layernorm_(h.T.copy(), residual.T, bias, weight, ln_bias, 1e-12).T  # as [C, N] columns
    assert_close(got, expected, atol=1e-5, rtol=1e-5, what="residual + bias + LayerNorm")


def test_every_gemm_multiplies_by_the_checkpoints_own_rows_as_mapped(real_model_dir):
    """The forward's one layout rule (module docstring, "Features × tokens"): each GEMM is W·X with W = ``.T`` of the
    weight tree's [in, out] matrices, which must then be C-contiguous [out, in] rows — the memory-mapped
    checkpoint's own (read-only: no private copy, so processes share them in the page cache), or the fused QKV."""
    layer = minibert.SentenceTransformer(real_model_dir).weights.layers[0]
    for name in ("qkv_weight", "attention_output_weight", "intermediate_weight", "output_weight"):
        rows = getattr(layer, name).T
        assert rows.flags.c_contiguous, f"{name}.T is not C-contiguous: the GEMMs would take a strided operand"
        assert rows.flags.writeable == (name == "qkv_weight"), f"{name}: a private copy, or the mapping changed"


@pytest.mark.parametrize("chunk_tokens", [cpu.ATTENTION_CHUNK_TOKENS, 8])  # 8: about one sequence per chunk
@pytest.mark.parametrize("n_threads", [2, 3, 4])
def test_sequences_split_across_threads_match_transformers(make_bert_dir, monkeypatch, n_threads, chunk_tokens):
    monkeypatch.setattr(threads, "MIN_GROUP_TOKENS", 1)  # split even this small batch into one group per thread
    monkeypatch.setattr(cpu, "ATTENTION_CHUNK_TOKENS", chunk_tokens)
    model = minibert.SentenceTransformer(make_bert_dir("tiny"))
    batch = model.tokenize(RAGGED)
    assert len(threads.thread_plan(batch.lengths, n_threads)[0]) > 1
    ours = cpu.forward(batch, model.weights, model.config, threads=n_threads)  # [N, C]
    ref = reference_hidden_states(model.model_dir, batch)
    assert_close(ours, ref, atol=1e-4, rtol=1e-5, what=f"last_hidden_state on {n_threads} threads")


@pytest.mark.parametrize("chunk_tokens", [cpu.ATTENTION_CHUNK_TOKENS, 8])  # 8: about one sequence per chunk
@pytest.mark.parametrize("arch", ["bert", "distilbert", "mpnet"])
def test_first_token_states_are_transformers_last_hidden_state_at_each_first_token(
    request, monkeypatch, arch, chunk_tokens
):
    """The last layer run for the [CLS] rows alone (CLS pooling, cross-encoders), split over threads and into
    attention chunks, with lengths held by several sequences and a one-token text."""
    monkeypatch.setattr(threads, "MIN_GROUP_TOKENS", 1)
    monkeypatch.setattr(cpu, "ATTENTION_CHUNK_TOKENS", chunk_tokens)
    model = minibert.SentenceTransformer(request.getfixturevalue(f"make_{arch}_dir")("tiny"))
    batch = model.tokenize([*RAGGED, "short", RAGGED[1]])
    encoder = cpu.NumpyEncoder(model.config, model.weights, threads=2)
    ours = encoder.first_token_states(batch)  # [B, C]
    ref = reference_hidden_states(model.model_dir, batch)[batch.cu_seqlens[:-1]]
    assert ours.shape == (len(batch.lengths), model.config.hidden_size)
    assert_close(ours, ref, atol=1e-4, rtol=1e-5, what=f"{arch} first-token states")


@pytest.mark.parametrize(
    "lengths, n_groups",
    [([5], 4), ([3, 3, 3, 3], 2), ([100, 1, 1, 1, 1], 2), ([7, 9, 2, 2, 30, 4, 4, 1], 3), ([1] * 10, 8)],
)
def test_balanced_groups_cover_every_sequence_once_in_order(lengths, n_groups):
    groups = threads.balanced_groups(np.array(lengths), n_groups)
    assert 1 <= len(groups) <= n_groups
    assert groups[0][0] == 0 and groups[-1][1] == len(lengths)
    assert all(lo < hi for lo, hi in groups) and all(a[1] == b[0] for a, b in itertools.pairwise(groups))
    tokens = [sum(lengths[lo:hi]) for lo, hi in groups]
    assert max(tokens) <= sum(lengths) / n_groups + max(lengths)  # no group holds more than its share + one sequence


def _blas_controls():
    controls = blas.find_controls()
    if controls is None:
        pytest.skip("NumPy here does not use OpenBLAS (the forward then leaves BLAS threads alone)")
    return controls


def test_a_cross_encoders_head_runs_with_its_forwards_blas_count(make_cross_encoder_dir, monkeypatch):
    """A grouped forward's GEMMs each run on one BLAS thread, the head's too: a GEMM on more threads between
    forwards wakes OpenBLAS's workers, which spin on the cores the next forward's groups need."""
    set_threads, get_threads = _blas_controls()
    monkeypatch.setattr(threads, "MIN_GROUP_TOKENS", 1)
    model = minibert.CrossEncoder(make_cross_encoder_dir("bert", "tiny"), threads=2)
    batch = model.pack([("a query", f"passage {i} about it") for i in range(4)])
    assert len(threads.thread_plan(batch.lengths, 2)[0]) == 2
    counts: list[int] = []

    def head(*args):
        counts.append(get_threads())
        return head_logits(*args)

    monkeypatch.setattr(cpu, "logits", head)
    before = get_threads()
    set_threads(2)
    try:
        model.logits(batch)
    finally:
        set_threads(before)
    assert counts == [1, 1]  # one head per group, each inside the forward's one-thread BLAS count


def test_blas_threads_runs_each_forward_with_its_count_and_restores_the_count_found_before():
    set_threads, get_threads = _blas_controls()
    before = get_threads()
    set_threads(2)
    try:
        with blas.blas_threads(2):
            assert get_threads() == 2
        with blas.blas_threads(8):
            assert get_threads() == 2  # capped by the count found before (OPENBLAS_NUM_THREADS is kept)
        set_threads(1)
        with blas.blas_threads(2):
            assert get_threads() == 1
        set_threads(2)

        seen: list[tuple[str, int]] = []
        ones_inside, release_ones = threading.Barrier(3), threading.Event()

        def one_thread_forward(name: str) -> None:
            with blas.blas_threads(1):
                ones_inside.wait()
                release_ones.wait()
                seen.append((name, get_threads()))

        def two_thread_forward() -> None:
            with blas.blas_threads(2):
                seen.append(("two", get_threads()))

        ones = [threading.Thread(target=one_thread_forward, args=(f"one{i}",)) for i in range(2)]
        for t in ones:
            t.start()
        ones_inside.wait()  # both one-thread forwards inside, together, at count 1
        assert get_threads() == 1
        two = threading.Thread(target=two_thread_forward)
        two.start()
        two.join(0.5)
        assert two.is_alive() and seen == []  # the two-thread forward waits its turn
        release_ones.set()
        for t in [*ones, two]:
            t.join(10)
        assert sorted(seen[:2]) == [("one0", 1), ("one1", 1)] and seen[2] == ("two", 2)
        assert get_threads() == 2  # the count found before, once nobody is inside
    finally:
        set_threads(before)


def test_thread_plan_is_one_group_on_every_core_for_a_short_query_else_one_group_per_core():
    assert threads.thread_plan(np.array([9]), 2) == ([(0, 1)], 2)  # one query: BLAS splits its GEMMs over both cores
    groups, blas_count = threads.thread_plan(np.array([10] * 32), 2)
    assert groups == [(0, 16), (16, 32)] and blas_count == 1  # 32 queries: a group per core, one BLAS thread each
    assert threads.thread_plan(np.array([10] * 32), 1) == ([(0, 32)], 1)  # threads=1: one thread in all


def _attention_float64(mixed_qkv, qkv_bias, H):
    L, C3 = mixed_qkv.shape
    D = C3 // 3 // H
    q, k, v = (mixed_qkv.astype(np.float64).reshape(L, 3, H, D) + qkv_bias).transpose(1, 2, 0, 3)  # [H, L, D] each
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(D)
    probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    return (probs @ v).transpose(1, 0, 2).reshape(L, H * D)


@pytest.mark.parametrize("first_only", [False, True])
@pytest.mark.parametrize("query_scale", [1.0, 30.0])
def test_self_attention_matches_float64_softmax_attention(query_scale, first_only):
    # query_scale 30: in head 0, token 0's query and key are 30·u, so its score is ≈ 900·|u|²/√D ≈ 2500 while the
    # other rows' scores stay below 1: a shift by the sequence's maximum alone would underflow those rows to 0/0,
    # and the per-row fallback must catch it.
    rng = np.random.default_rng(3)
    # the short lengths go through as one padded stack, 40 and 37 as stacks of their own (40 held twice)
    H, D, lengths = 2, 8, [5, 3, 1, 3, 5, 0, 3, 40, 37, 40]
    C = H * D
    mixed_qkv = (rng.normal(size=(sum(lengths), 3 * C)) * 0.1).astype(np.float32)
    u = np.ones(D, dtype=np.float32)
    mixed_qkv[0, :D] = query_scale * u  # query of token 0, head 0
    mixed_qkv[0, C : C + D] = query_scale * u  # its key
    qkv_bias = (rng.normal(size=(3, H, D)) * 0.1).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    scratch = cpu.AttentionScratch(offsets, H, D)
    poisoned = np.full((H * D, len(lengths) if first_only else sum(lengths)), np.nan, np.float32)  # [C, tokens]
    context = cpu.self_attention(np.ascontiguousarray(mixed_qkv.T), qkv_bias, scratch, None, poisoned, first_only).T
    per_sequence = [_attention_float64(mixed_qkv[a:b], qkv_bias, H) for a, b in itertools.pairwise(offsets) if b > a]
    if first_only:  # one row per sequence: its first token's; the empty sequence's row is not written
        expected = np.stack([rows[0] for rows in per_sequence])
        assert np.isnan(context[lengths.index(0)]).all()
        context = context[np.array(lengths) > 0]
    else:
        expected = np.concatenate(per_sequence)
    assert_close(context, expected, atol=1e-5, rtol=1e-5, what=f"attention (query scale {query_scale})")


def test_thread_limit_from_the_environment(monkeypatch):
    """MINIBERT_NUM_THREADS caps the forward's threads of every command (read once, by the CLI); a bad value says
    which variable; the encoder runs on what it is given."""
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert threads_from_env() is None  # unset: the encoder's default, the usable cores up to 8
    monkeypatch.setenv(THREADS_ENV, "1")
    assert threads_from_env() == 1
    monkeypatch.setenv(THREADS_ENV, "64")
    assert threads_from_env() == threads.default_threads()  # a cap, never more than the cores (and 8)
    for bad, error in (("0", minibert.InputError), ("two", minibert.InputTypeError)):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(error, match=THREADS_ENV):
            threads_from_env()
    assert cpu.NumpyEncoder(*_config_and_weights(), threads=1).threads == 1
    assert cpu.NumpyEncoder(*_config_and_weights()).threads == threads.default_threads()


def _config_and_weights():
    from minibert.loading.config import load_config
    from minibert.loading.download import download
    from minibert.loading.weights import load_weights

    config = load_config(download())
    return config, load_weights(config)
