"""The fast NumPy forward's building blocks vs float64 references (the whole forward is checked against the
live reference in test_parity_*.py and test_architectures.py, for both NumPy implementations)."""

from __future__ import annotations

import numpy as np
import torch

from minibert import fast
from minibert.forward import layer_norm
from tests.conftest import assert_close


def test_fast_gelu_is_as_close_to_float64_as_torchs_float32_gelu():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-12, 12, 200_000), rng.normal(scale=3, size=200_000)]).astype(np.float32)
    exact = torch.nn.functional.gelu(torch.from_numpy(x).double()).numpy()
    torch32 = torch.nn.functional.gelu(torch.from_numpy(x)).double().numpy()
    ours = fast.bias_gelu_(x.reshape(400, -1).copy(), np.zeros(x.size // 400, dtype=np.float32)).reshape(-1)
    ours_error = np.abs(ours - exact).max()
    torch_error = np.abs(torch32 - exact).max()
    assert ours_error <= 1.5 * torch_error, f"fast GELU max |Δ| {ours_error:.3g}, torch float32 {torch_error:.3g}"
    assert not ours[x < -6].any()  # x·Φ(x) < 1e-8 there: exactly 0, not a residue that grows with |x|
    np.testing.assert_array_equal(ours[x > 6], x[x > 6])  # GELU(x) = x once Φ(x) rounds to 1


def test_bias_gelu_adds_the_bias_in_every_row_block():
    rng = np.random.default_rng(1)
    h = rng.normal(size=(517, 96)).astype(np.float32)  # rows not a multiple of the block or thread split
    bias = rng.normal(size=96).astype(np.float32)
    expected = torch.nn.functional.gelu(torch.from_numpy(h).double() + torch.from_numpy(bias).double()).numpy()
    assert_close(fast.bias_gelu_(h.copy(), bias), expected, atol=2e-6, rtol=1e-6, what="bias + GELU")


def test_residual_layernorm_matches_the_reference_layer_norm():
    rng = np.random.default_rng(2)
    h = (rng.normal(size=(301, 384)) * 5 + 2).astype(np.float32)
    residual = rng.normal(size=(301, 384)).astype(np.float32)
    bias, weight, ln_bias = (rng.normal(size=384).astype(np.float32) for _ in range(3))
    expected = layer_norm((h.astype(np.float64) + residual + bias), weight, ln_bias, 1e-12)
    got = fast.residual_layernorm_(h.copy(), residual, bias, weight, ln_bias, 1e-12)
    assert_close(got, expected, atol=1e-5, rtol=1e-5, what="residual + bias + LayerNorm")
