"""The fused residual + bias + LayerNorm kernel (minibert.kernels.layernorm) in Triton's interpreter on CPU tensors.

Every case: fresh seeded random inputs in the tested dtype, the output buffer poisoned with NaN before the call
(so an element the kernel never writes fails), every element compared with a float64 NumPy reference computed
from the same, already rounded, input values: ``v = x + input_bias + residual``, then
``(v − mean) / sqrt(var + eps) · weight + bias`` with the biased variance.

Bounds (testing.tables.KERNEL_TOLERANCES): |Δ| ≤ tol + tol·|ref|, tol = 1e-5 for fp32, 2e-3 for fp16, 1e-2 for bf16.
Where they come from: the kernel computes in fp32 (sum, two-pass statistics, scale and shift: a relative error of
a few 2^-24 ≈ 6e-8 per step, far inside 1e-5) and rounds once, at the store, to the output dtype — half an ulp,
2^-11 ≈ 4.9e-4 relative for fp16 and 2^-8 ≈ 3.9e-3 for bf16 on a GPU (round to nearest); the interpreter's
fp32 → bf16 cast truncates, up to 2^-7 ≈ 7.8e-3, still inside 1e-2. The outputs are O(1) (γ ~ N(1, 0.5²),
β ~ N(0, 1)), so the absolute term is the same size as the relative one and covers outputs near zero.

Widths 1, 37, 384, 768, 1023, 3072 (one element, primes, MiniLM's and BERT-base's hidden sizes, one short of a
power of two, BERT-base's FFN size) and row counts 1 and non-powers of two, kept small for the wide rows:
the interpreter pays per element. With ``TRITON_INTERPRET=0`` on a machine with a GPU the same tests run the
compiled kernel on CUDA tensors.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import numpy as np
import pytest
import torch

from minibert.errors import InputError, InputTypeError
from minibert.kernels.layernorm import layer_norm
from minibert.testing import assert_close
from minibert.testing.tables import ROWS_BY_WIDTH
from tests.kernels.helpers import (
    DEVICE,
    DTYPE_TOL,
    check_bad_input,
    check_cpu_tensors_refused_when_compiled,
    check_result,
    meta_like,
    ones,
    randn,
    skip_module_without_device,
    zeros,
)

skip_module_without_device()

EPS = 1e-12  # BERT's layer_norm_eps; large enough to matter only for a constant row


def make_inputs(rows: int, width: int, dtype: torch.dtype, seed: int) -> dict[str, torch.Tensor]:
    """x, residual [N, C]; input_bias, weight (γ around 1), bias (β) [C]: all of `dtype`."""
    return dict(
        x=randn(rows, width, dtype=dtype, seed=seed),
        residual=randn(rows, width, dtype=dtype, seed=seed + 1, scale=2.0),
        input_bias=randn(width, dtype=dtype, seed=seed + 2, scale=0.5),
        weight=randn(width, dtype=dtype, seed=seed + 3, scale=0.5, offset=1.0),
        bias=randn(width, dtype=dtype, seed=seed + 4),
    )


def reference_layer_norm(x, weight, bias, *, eps, residual=None, input_bias=None) -> np.ndarray:
    """float64 NumPy: LayerNorm(x + input_bias + residual) · weight + bias over the last dim, biased variance."""
    v = x.double().cpu().numpy()  # [N, C]
    if input_bias is not None:
        v = v + input_bias.double().cpu().numpy()
    if residual is not None:
        v = v + residual.double().cpu().numpy()
    mean = v.mean(axis=1, keepdims=True)  # [N, 1]
    var = ((v - mean) ** 2).mean(axis=1, keepdims=True)  # [N, 1]
    return (v - mean) / np.sqrt(var + eps) * weight.double().cpu().numpy() + bias.double().cpu().numpy()


def poisoned_like(x: torch.Tensor) -> torch.Tensor:
    return torch.full(x.shape, float("nan"), dtype=x.dtype, device=x.device)


def run_and_check(inputs: dict, *, tol: float, what: str, eps: float = EPS) -> torch.Tensor:
    """layer_norm into a NaN-poisoned buffer; every element finite and within tol of the float64 reference."""
    inputs = dict(inputs)
    out = inputs.pop("out", None)  # given: an input itself (in place), or a view poisoned by the caller
    expected = reference_layer_norm(**inputs, eps=eps)  # before the call, which may overwrite an input
    if out is None:
        out = poisoned_like(inputs["x"])
    result = layer_norm(**inputs, eps=eps, out=out)
    assert result is out, "the launcher must return the out buffer it was given"
    assert result.dtype == inputs["x"].dtype and result.shape == inputs["x"].shape
    check_result(result, expected, tol=tol, what=what)
    return result


@pytest.mark.parametrize("width", list(ROWS_BY_WIDTH))
@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
def test_matches_float64_reference(dtype, tol, width):
    for rows in ROWS_BY_WIDTH[width]:
        inputs = make_inputs(rows, width, dtype, seed=width + rows)
        run_and_check(inputs, tol=tol, what=f"layer_norm {dtype} N={rows} C={width}")


@pytest.mark.parametrize(("with_residual", "with_input_bias"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
def test_optional_terms(dtype, tol, with_residual, with_input_bias):
    """Without the residual and / or the input bias: plain LayerNorm (the embeddings' and torch's case)."""
    inputs = make_inputs(19, 384, dtype, seed=3)
    if not with_residual:
        del inputs["residual"]
    if not with_input_bias:
        del inputs["input_bias"]
    run_and_check(inputs, tol=tol, what=f"residual={with_residual} input_bias={with_input_bias}")


def test_matches_the_torch_expression_it_replaces():
    """fp32: F.layer_norm(addmm-style x + bias, then + residual) — what minibert.encoder.gpu ran before this kernel."""
    inputs = make_inputs(33, 384, torch.float32, seed=5)
    expected = torch.nn.functional.layer_norm(
        inputs["x"] + inputs["input_bias"] + inputs["residual"], (384,), inputs["weight"], inputs["bias"], EPS
    )
    ours = layer_norm(**inputs, eps=EPS)
    assert_close(ours.cpu().numpy(), expected.cpu().numpy(), atol=1e-5, rtol=1e-5, what="vs torch layer_norm")


@pytest.mark.parametrize("target", ["x", "residual"])
@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
def test_in_place(dtype, tol, target):
    """out may be x or the residual itself: each program reads its rows before it writes them."""
    inputs = make_inputs(45, 768, dtype, seed=7)
    inputs["out"] = inputs[target]
    run_and_check(inputs, tol=tol, what=f"in place into {target}")


def test_strided_rows_and_output_view():
    """x, residual and out as column slices of wider tensors (row strides 400, 500, 2·384): the kernel reads and
    writes only its view."""
    inputs = make_inputs(21, 384, torch.float16, seed=9)
    wide_x = randn(21, 400, dtype=torch.float16, seed=10)
    wide_x[:, 7:391] = inputs["x"]
    wide_residual = randn(21, 500, dtype=torch.float16, seed=11)
    wide_residual[:, 100:484] = inputs["residual"]
    inputs["x"], inputs["residual"] = wide_x[:, 7:391], wide_residual[:, 100:484]
    buffer = torch.zeros(21, 2, 384, dtype=torch.float16, device=DEVICE)
    inputs["out"] = buffer[:, 1]
    inputs["out"].fill_(float("nan"))
    assert not inputs["x"].is_contiguous() and inputs["out"].stride() == (768, 1)
    run_and_check(inputs, tol=2e-3, what="strided")
    assert (buffer[:, 0] == 0).all(), "wrote outside the out= view"


def test_large_mean_and_constant_rows():
    """fp32 rows offset by 50 (a one-pass E[v²] − E[v]² would lose the variance's digits), a constant row
    (variance 0: rstd = 1/sqrt(eps), output = β exactly, no NaN) and a row of one huge value."""
    inputs = make_inputs(6, 37, torch.float32, seed=12)
    inputs["x"] = randn(6, 37, dtype=torch.float32, seed=13, offset=50.0)
    inputs["x"][2] = 3.0
    inputs["residual"][2] = -1.0
    inputs["input_bias"].zero_()
    inputs["x"][4, 5] = 1e4
    result = run_and_check(inputs, tol=1e-5, what="offset / constant rows")
    assert torch.equal(result[2], inputs["bias"]), "a constant row must normalize to β"


def test_eps_is_used():
    """A row of variance 1e-4 with eps 1e-2 (as if the model's eps were large): eps changes the result."""
    inputs = make_inputs(3, 37, torch.float32, seed=14)
    inputs["x"] = inputs["x"] * 0.01
    del inputs["residual"], inputs["input_bias"]
    big = run_and_check(inputs, tol=1e-5, what="eps 1e-2", eps=1e-2)
    small = run_and_check(inputs, tol=1e-5, what="eps 1e-12", eps=1e-12)
    assert (big - small).abs().max() > 0.1


def test_no_rows():
    x = torch.empty(0, 37, device=DEVICE)
    weight, bias = torch.ones(37, device=DEVICE), torch.zeros(37, device=DEVICE)
    out = layer_norm(x, weight, bias, eps=EPS)
    assert out.shape == (0, 37)


# -- bad inputs: each raises the documented type with a message that says what is wrong ------------------------

N, C = 5, 8


def good_args() -> dict:
    return dict(
        x=zeros(N, C),
        weight=ones(C),
        bias=zeros(C),
        eps=1e-5,
        residual=zeros(N, C),
        input_bias=zeros(C),
        out=zeros(N, C),
    )


BAD_INPUTS = {  # name: (change to the good arguments, exception type, message fragment)
    "x not a tensor": (lambda a: a.update(x=a["x"].tolist()), InputTypeError, "x must be a torch.Tensor"),
    "weight not a tensor": (lambda a: a.update(weight=None), InputTypeError, "weight must be a torch.Tensor"),
    "x float64": (lambda a: a.update(x=a["x"].double()), InputError, "x has dtype float64"),
    "x int": (lambda a: a.update(x=a["x"].int()), InputError, "expected one of float32, float16, bfloat16"),
    "weight other dtype": (lambda a: a.update(weight=a["weight"].half()), InputError, "weight has dtype float16"),
    "residual other dtype": (
        lambda a: a.update(residual=a["residual"].bfloat16()),
        InputError,
        "residual has dtype bfloat16",
    ),
    "out other dtype": (lambda a: a.update(out=a["out"].half()), InputError, "out has dtype float16"),
    "x 3-d": (lambda a: a.update(x=a["x"].view(N, 2, 4)), InputError, "x must have 2 dimensions"),
    "x 1-d": (lambda a: a.update(x=a["x"].flatten()), InputError, "x must have 2 dimensions"),
    "bias 2-d": (lambda a: a.update(bias=a["bias"].view(1, C)), InputError, "bias must have 1 dimensions"),
    "weight wrong length": (lambda a: a.update(weight=ones(C + 1)), InputError, "weight must have shape [8]"),
    "input_bias wrong length": (
        lambda a: a.update(input_bias=ones(C - 1)),
        InputError,
        "input_bias must have shape [8]",
    ),
    "residual wrong shape": (
        lambda a: a.update(residual=zeros(N + 1, C)),
        InputError,
        "residual must have shape [5, 8]",
    ),
    "out wrong shape": (lambda a: a.update(out=zeros(N, C + 2)), InputError, "out must have shape [5, 8]"),
    "x last dim strided": (lambda a: a.update(x=zeros(C, N).t()), InputError, "contiguous in its last"),
    "weight strided": (lambda a: a.update(weight=ones(2 * C)[::2]), InputError, "contiguous in its last"),
    "out rows overlap": (lambda a: a.update(out=zeros(C).expand(N, C)), InputError, "out's rows overlap"),
    "x on meta": (lambda a: a.update(x=meta_like(a["x"])), InputError, "x is on meta"),
    "residual on other device": (
        lambda a: a.update(residual=meta_like(a["residual"])),
        InputError,
        "residual is on meta, but the other inputs are on",
    ),
    "weight on other device": (lambda a: a.update(weight=meta_like(a["weight"])), InputError, "weight is on meta"),
    "out on other device": (lambda a: a.update(out=meta_like(a["out"])), InputError, "out is on meta"),
    "zero columns": (
        lambda a: a.update(x=zeros(N, 0), weight=ones(0), bias=zeros(0), residual=None, out=None),
        InputError,
        "0 columns",
    ),
    "too wide": (
        lambda a: a.update(x=zeros(1, 70000), residual=None, out=None),
        InputError,
        "at most 65536",
    ),
    "eps zero": (lambda a: a.update(eps=0.0), InputError, "eps must be a positive finite number"),
    "eps nan": (lambda a: a.update(eps=float("nan")), InputError, "eps must be a positive finite number"),
    "eps string": (lambda a: a.update(eps="1e-5"), InputTypeError, "eps must be a float"),
    "eps bool": (lambda a: a.update(eps=True), InputTypeError, "eps must be a float"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(case):
    check_bad_input(layer_norm, good_args(), *BAD_INPUTS[case], case=case)


def test_good_args_run():
    """The base of the bad-input cases is itself valid (so each case fails for its own reason)."""
    assert torch.equal(layer_norm(**good_args()), zeros(N, C))


def test_errors_are_value_and_type_errors():
    args = good_args()
    with pytest.raises(ValueError):
        layer_norm(**{**args, "eps": -1.0})
    with pytest.raises(TypeError):
        layer_norm(**{**args, "x": "x"})


def test_cpu_tensor_without_interpreter(monkeypatch):
    """Compiled kernels need CUDA tensors; a CPU tensor is refused before any launch."""
    check_cpu_tensors_refused_when_compiled(monkeypatch, layer_norm, good_args())
