"""The NumPy building blocks vs independent references: math.erf, torch's GELU / LayerNorm / softmax."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from minibert.encoder.activations import erf, gelu
from minibert.encoder.reference import layer_norm, softmax
from minibert.testing import assert_close

pytestmark = pytest.mark.numeric  # also run with NumPy's AVX-512 / AVX2 kernels switched off (Makefile)


def test_erf_is_accurate_to_float32_rounding():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            np.linspace(-7, 7, 40001),
            np.logspace(-38, 1.2, 4000),
            -np.logspace(-38, 1.2, 4000),
            rng.normal(scale=3, size=20000),
            [0.0, -0.0, 1.0, -1.0, np.nextafter(1.0, 0), np.nextafter(1.0, 2)],
        ]
    ).astype(np.float32)
    reference = np.array([math.erf(float(v)) for v in x])  # float64
    ours = erf(x)
    assert ours.dtype == np.float32 and ours.shape == x.shape
    ulps = np.abs(ours.astype(np.float64) - reference) / np.spacing(np.abs(reference).astype(np.float32))
    worst = int(np.argmax(ulps))
    assert ulps.max() <= 1.0, (
        f"erf({x[worst]!r}) = {ours[worst]!r}, reference {reference[worst]!r}: {ulps.max():.2f} ulp"
    )
    assert np.array_equal(np.signbit(ours[x == 0]), np.signbit(x[x == 0]))


def test_erf_keeps_shape_and_handles_extremes():
    x = np.array([[np.inf, -np.inf], [100.0, -100.0]], dtype=np.float32)
    np.testing.assert_array_equal(erf(x), [[1, -1], [1, -1]])


def test_gelu_matches_torch_exact_gelu():
    x = np.random.default_rng(1).normal(scale=4, size=(64, 257)).astype(np.float32)
    reference = torch.nn.functional.gelu(torch.from_numpy(x).double(), approximate="none").numpy()
    assert_close(gelu(x), reference, atol=1e-6, rtol=2e-7, what="gelu vs torch float64")


def test_layer_norm_and_softmax_match_torch():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 48)).astype(np.float32) * 10 + 3
    w, b = rng.normal(size=48).astype(np.float32), rng.normal(size=48).astype(np.float32)
    ref = torch.nn.functional.layer_norm(
        torch.from_numpy(x).double(), (48,), torch.from_numpy(w).double(), torch.from_numpy(b).double(), eps=1e-12
    ).numpy()
    assert_close(layer_norm(x, w, b, 1e-12), ref, atol=1e-5, rtol=1e-5, what="layer_norm")
    scores = rng.normal(scale=20, size=(2, 3, 7, 7)).astype(np.float32)
    assert_close(
        softmax(scores),
        torch.softmax(torch.from_numpy(scores).double(), -1).numpy(),
        atol=1e-7,
        rtol=1e-6,
        what="softmax",
    )
