"""The bias + exact GELU kernel (minibert.kernels.gelu) in Triton's interpreter on CPU tensors.

Every case: fresh seeded random inputs in the tested dtype, compared element by element with a float64 reference
``0.5 · v · (1 + erf(v / √2))``, ``v = x + bias``, computed with ``math.erf`` from the same, already rounded,
input values. Written into a NaN-poisoned ``out`` buffer (every element must be written), or in place (the
default: an element left unwritten would still hold x, which is not gelu(x + bias)).

Bounds (testing.tables.KERNEL_TOLERANCES): |Δ| ≤ tol + tol·|ref|, tol = 1e-5 for fp32, 2e-3 for fp16, 1e-2 for bf16.
Where they come from: the kernel adds and evaluates in fp32 (erf to a few ulp, a relative error ~1e-7; for
v ≪ 0, 1 + erf(v/√2) cancels, but there the output is below 1e-6 in magnitude and the absolute term holds) and
rounds once, at the store: half an ulp, 2^-11 ≈ 4.9e-4 relative for fp16, 2^-8 ≈ 3.9e-3 for bf16 on a GPU;
the interpreter's fp32 → bf16 cast truncates, up to 2^-7 ≈ 7.8e-3. The tanh approximation misses the erf
form by up to ~4.7e-4 (measured below), 47× the fp32 bound, so these tests tell the two apart.

Widths 1, 37, 384, 768, 1023, 3072 and row counts 1 and non-powers of two (few rows for the wide ones: the
interpreter pays per element). With ``TRITON_INTERPRET=0`` on a machine with a GPU the same tests run the
compiled kernel on CUDA tensors.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import numpy as np
import pytest
import torch

from minibert.errors import InputError, InputTypeError
from minibert.kernels.gelu import bias_gelu_
from minibert.testing import assert_close
from minibert.testing.tables import ROWS_BY_WIDTH
from tests.kernels.helpers import (
    DEVICE,
    DTYPE_TOL,
    check_bad_input,
    check_cpu_tensors_refused_when_compiled,
    check_result,
    meta_like,
    randn,
    skip_module_without_device,
    zeros,
)

skip_module_without_device()

_erf = np.vectorize(math.erf, otypes=[np.float64])


def reference_gelu(x: torch.Tensor, bias: torch.Tensor | None) -> np.ndarray:
    """float64 NumPy: 0.5 · v · (1 + erf(v / √2)), v = x + bias (bias broadcast over rows)."""
    v = x.double().cpu().numpy()  # [N, F]
    if bias is not None:
        v = v + bias.double().cpu().numpy()
    return 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)))


@pytest.mark.parametrize("width", list(ROWS_BY_WIDTH))
@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
def test_matches_float64_reference(dtype, tol, width):
    """Into a NaN-poisoned out buffer (x is left as it was), then in place on x."""
    for rows in ROWS_BY_WIDTH[width]:
        what = f"bias_gelu_ {dtype} N={rows} F={width}"
        x = randn(rows, width, dtype=dtype, seed=width + rows, scale=2.0)
        bias = randn(width, dtype=dtype, seed=width + rows + 1)
        expected = reference_gelu(x, bias)
        x_before = x.clone()
        out = torch.full_like(x, float("nan"))
        assert bias_gelu_(x, bias, out=out) is out
        check_result(out, expected, tol=tol, what=f"{what}, out=")
        assert torch.equal(x, x_before), f"{what}: x changed although out= was given"
        assert bias_gelu_(x, bias) is x
        check_result(x, expected, tol=tol, what=f"{what}, in place")


@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
def test_without_bias(dtype, tol):
    x = randn(11, 1536, dtype=dtype, seed=2, scale=3.0)
    expected = reference_gelu(x, None)
    check_result(bias_gelu_(x), expected, tol=tol, what=f"gelu {dtype} without bias")


def test_wide_range_of_values():
    """v from −12 to 12 and exactly 0: the tails (GELU → 0 and → v) and the middle, fp32."""
    x = torch.linspace(-12.0, 12.0, 2001, device=DEVICE).reshape(3, 667)
    x[1, 333] = 0.0
    expected = reference_gelu(x, None)
    result = bias_gelu_(x.clone())
    check_result(result, expected, tol=1e-5, what="wide range")
    assert result[1, 333] == 0.0
    assert ((result[0, :5] <= 0) & (result[0, :5] > -1e-20)).all()  # gelu(v) → −0 for v ≪ 0
    assert torch.equal(result[2, -5:], x[2, -5:])  # gelu(v) = v in fp32 for v ≥ 11.6


def test_exact_erf_not_tanh():
    """The tanh approximation is off by ~4.7e-4 near v = ±2: our result matches torch's exact GELU to 1e-6 and is
    told apart from the tanh form at the fp32 bound."""
    x = torch.linspace(-4.0, 4.0, 801, device=DEVICE).reshape(1, 801)
    ours = bias_gelu_(x.clone())
    exact = torch.nn.functional.gelu(x, approximate="none")
    tanh = torch.nn.functional.gelu(x, approximate="tanh")
    assert_close(ours.cpu().numpy(), exact.cpu().numpy(), atol=1e-6, what="vs torch exact GELU")
    gap = float((tanh - exact).abs().max())
    assert 4e-4 < gap < 5e-4, gap
    assert float((ours - tanh).abs().max()) > 100 * 1e-6


def test_strided_rows_in_place_touch_only_the_view():
    """In place on a column slice of a wider tensor (row stride 1600): the other columns are left as they were."""
    wide = randn(9, 1600, dtype=torch.float16, seed=4)
    before = wide.clone()
    view = wide[:, 32:1568]  # [9, 1536], stride (1600, 1)
    bias = randn(1536, dtype=torch.float16, seed=5)
    expected = reference_gelu(view, bias)
    assert bias_gelu_(view, bias) is view
    check_result(view, expected, tol=2e-3, what="strided in place")
    assert torch.equal(wide[:, :32], before[:, :32]) and torch.equal(wide[:, 1568:], before[:, 1568:])


def test_strided_out():
    x = randn(5, 37, dtype=torch.bfloat16, seed=6)
    bias = randn(37, dtype=torch.bfloat16, seed=7)
    buffer = torch.zeros(5, 2, 37, dtype=torch.bfloat16, device=DEVICE)
    out = buffer[:, 1].fill_(float("nan"))
    bias_gelu_(x, bias, out=out)
    check_result(out, reference_gelu(x, bias), tol=1e-2, what="strided out")
    assert (buffer[:, 0] == 0).all(), "wrote outside the out= view"


def test_empty():
    x = torch.empty(0, 37, device=DEVICE)
    assert bias_gelu_(x, torch.zeros(37, device=DEVICE)) is x
    assert bias_gelu_(torch.empty(3, 0, device=DEVICE)).shape == (3, 0)


# -- bad inputs: each raises the documented type with a message that says what is wrong ------------------------

N, F = 4, 8


def good_args() -> dict:
    return dict(x=zeros(N, F), bias=zeros(F), out=None)


BAD_INPUTS = {  # name: (change to the good arguments, exception type, message fragment)
    "x not a tensor": (lambda a: a.update(x=np.zeros((N, F))), InputTypeError, "x must be a torch.Tensor"),
    "bias not a tensor": (lambda a: a.update(bias=[0.0] * F), InputTypeError, "bias must be a torch.Tensor"),
    "x float64": (lambda a: a.update(x=a["x"].double()), InputError, "x has dtype float64"),
    "x int": (lambda a: a.update(x=a["x"].long()), InputError, "expected one of float32, float16, bfloat16"),
    "bias other dtype": (lambda a: a.update(bias=a["bias"].half()), InputError, "bias has dtype float16"),
    "out other dtype": (lambda a: a.update(out=zeros(N, F).bfloat16()), InputError, "out has dtype bfloat16"),
    "x 1-d": (lambda a: a.update(x=zeros(F)), InputError, "x must have 2 dimensions"),
    "x 3-d": (lambda a: a.update(x=zeros(2, N, F)), InputError, "x must have 2 dimensions"),
    "bias wrong length": (lambda a: a.update(bias=zeros(F + 1)), InputError, "bias must have shape [8]"),
    "bias 2-d": (lambda a: a.update(bias=zeros(1, F)), InputError, "bias must have 1 dimensions"),
    "out wrong shape": (lambda a: a.update(out=zeros(N + 1, F)), InputError, "out must have shape [4, 8]"),
    "x last dim strided": (lambda a: a.update(x=zeros(F, N).t()), InputError, "contiguous in its last"),
    "bias strided": (lambda a: a.update(bias=zeros(2 * F)[::2]), InputError, "contiguous in its last"),
    "x rows overlap (in place)": (
        lambda a: a.update(x=zeros(F).expand(N, F)),
        InputError,
        "x's rows overlap",
    ),
    "out rows overlap": (lambda a: a.update(out=zeros(F).expand(N, F)), InputError, "out's rows overlap"),
    "x on meta": (lambda a: a.update(x=meta_like(a["x"])), InputError, "x is on meta"),
    "bias on other device": (
        lambda a: a.update(bias=meta_like(a["bias"])),
        InputError,
        "bias is on meta, but the other inputs are on",
    ),
    "out on other device": (lambda a: a.update(out=meta_like(a["x"])), InputError, "out is on meta"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(case):
    check_bad_input(bias_gelu_, good_args(), *BAD_INPUTS[case], case=case)


def test_good_args_run():
    """The base of the bad-input cases is itself valid (so each case fails for its own reason)."""
    assert torch.equal(bias_gelu_(**good_args()), zeros(N, F))


def test_errors_are_value_and_type_errors():
    with pytest.raises(ValueError):
        bias_gelu_(zeros(N, F, dtype=torch.float64))
    with pytest.raises(TypeError):
        bias_gelu_("x")


def test_cpu_tensor_without_interpreter(monkeypatch):
    """Compiled kernels need CUDA tensors; a CPU tensor is refused before any launch."""
    check_cpu_tensors_refused_when_compiled(monkeypatch, bias_gelu_, good_args())
