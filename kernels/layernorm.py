"""Fused residual + bias + LayerNorm over the last dimension (Triton, inference only): LN(x + bias + residual).

Follows ``torch.nn.functional.layer_norm`` as BERT, DistilBERT and MPNet call it after each sub-layer
(HF's ``BertSelfOutput`` / ``BertOutput``: ``LayerNorm(dropout(dense(h)) + input_tensor)``, with the dense
layer's bias inside ``dense``): mean and biased variance over the C features of each row, then
``(v − mean) / sqrt(var + eps) · weight + bias``. The structure — one pass over a row held in registers,
statistics in fp32, the result cast back to the input dtype — is the one of Triton's tutorial 05
(layer-norm) and Liger-Kernel's ``ops/layer_norm.py``; the code is our own.

Where it differs:

* **Fused adds.** The value normalized is ``v = x + input_bias + residual`` (each optional): the output of
  the bias-less GEMM ``context @ W``, the GEMM's bias, and the sub-layer's input, so the forward needs no
  ``addmm`` epilogue and no separate add (one read of x and of the residual, one write). The sum is formed
  in fp32 and never rounded to the input dtype; torch rounds ``x + bias`` and ``… + residual`` to it.
* **Several rows per program** (``BLOCK_R``), so a narrow row (C = 384) still gives each program a few
  thousand elements to move; a row is never split, so its statistics need no second pass or atomics.
* **In place is allowed**: every program reads all of its rows before it writes any, so ``out`` may be
  ``x`` or ``residual`` itself.
* **Inference only**: mean and rstd are not saved, there is no backward kernel.

Shape letters: N = rows (packed tokens), C = features (hidden size).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from minibert.errors import InputError, InputTypeError

from .checks import FLOAT_DTYPES, check_kernel_device, check_like, check_rows_apart, check_tensor

__all__ = ["layer_norm"]

MAX_BLOCK_C = 1 << 16  # a whole row lives in registers
TILE = 4096  # elements per program: BLOCK_R rows × BLOCK_C columns


@triton.jit
def _layer_norm_kernel(
    x_ptr,  # [N, C] float32 / float16 / bfloat16, row stride stride_xn, column stride 1
    residual_ptr,  # [N, C] x's dtype, row stride stride_rn (read only when HAS_RESIDUAL)
    input_bias_ptr,  # [C] x's dtype (read only when HAS_INPUT_BIAS)
    weight_ptr,  # [C] x's dtype: LayerNorm's γ
    bias_ptr,  # [C] x's dtype: LayerNorm's β
    out_ptr,  # [N, C] x's dtype, row stride stride_on (may be x or residual)
    N,
    C,
    stride_xn,
    stride_rn,
    stride_on,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    HAS_INPUT_BIAS: tl.constexpr,
    BLOCK_R: tl.constexpr,  # rows per program
    BLOCK_C: tl.constexpr,  # ≥ C: one block holds a whole row
):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # [BLOCK_R]
    cols = tl.arange(0, BLOCK_C)  # [BLOCK_C]
    col_ok = cols < C
    mask = (rows < N)[:, None] & col_ok[None, :]  # [BLOCK_R, BLOCK_C]
    rows = rows.to(tl.int64)  # row · stride can pass 2**31
    v = tl.load(x_ptr + rows[:, None] * stride_xn + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    if HAS_INPUT_BIAS:
        v += tl.load(input_bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    if HAS_RESIDUAL:
        v += tl.load(residual_ptr + rows[:, None] * stride_rn + cols[None, :], mask=mask, other=0.0).to(tl.float32)

    mean = tl.sum(v, axis=1) / C  # [BLOCK_R]; masked columns hold 0
    centered = tl.where(mask, v - mean[:, None], 0.0)  # [BLOCK_R, BLOCK_C]
    var = tl.sum(centered * centered, axis=1) / C  # [BLOCK_R], biased, as torch
    rstd = 1.0 / tl.sqrt_rn(var + eps)  # [BLOCK_R]
    weight = tl.load(weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)  # [BLOCK_C]
    bias = tl.load(bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)  # [BLOCK_C]
    y = centered * rstd[:, None] * weight[None, :] + bias[None, :]  # [BLOCK_R, BLOCK_C]
    tl.store(out_ptr + rows[:, None] * stride_on + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


def _check_eps(eps: object) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise InputTypeError(f"eps must be a float, got {type(eps).__name__}")
    if not math.isfinite(eps) or eps <= 0:
        raise InputError(f"eps must be a positive finite number, got {eps}")
    return float(eps)


def _launch_settings(hidden_size: int) -> tuple[int, int, int]:
    """(BLOCK_R, BLOCK_C, num_warps): a whole row per block, rows stacked up to TILE elements per program."""
    block_c = triton.next_power_of_2(hidden_size)
    block_r = max(1, TILE // block_c)
    tile = block_r * block_c
    num_warps = 4 if tile < 2048 else 8 if tile < 8192 else 16  # ~8–16 fp32 values per thread
    return block_r, block_c, num_warps


def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    eps: float,
    residual: torch.Tensor | None = None,
    input_bias: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """LayerNorm of ``x + input_bias + residual`` over the last dimension, fused: [N, C] -> [N, C].

    ``v = x + input_bias + residual`` (the terms given) in float32, then
    ``out = (v − mean(v)) / sqrt(var(v) + eps) · weight + bias`` per row, with the biased variance (as
    ``torch.nn.functional.layer_norm``), stored in x's dtype.

    Args:
        x: [N, C] float32 / float16 / bfloat16 (e.g. the output of a bias-less GEMM). Last-dim stride 1; any
            row stride.
        weight: [C] LayerNorm scale γ, x's dtype and device, contiguous.
        bias: [C] LayerNorm shift β, x's dtype and device, contiguous.
        eps: added to the variance, a positive finite float (the model's ``layer_norm_eps``).
        residual: optional [N, C] of x's dtype and device added before the norm (the sub-layer's input);
            last-dim stride 1, any row stride.
        input_bias: optional [C] of x's dtype and device added before the norm (the preceding linear layer's
            bias), contiguous.
        out: optional [N, C] of x's dtype and device (last-dim stride 1) to write into. It may be ``x`` or
            ``residual`` itself (in place); it must not otherwise overlap the inputs.

    Returns:
        [N, C] in x's dtype: ``out`` when given, else a new contiguous tensor.

    Raises:
        InputTypeError: a tensor argument is not a ``torch.Tensor``, or eps is not a number.
        InputError: wrong dtype (all tensors share x's, one of float32 / float16 / bfloat16), ndim, shape,
            device or last-dim stride; ``out`` rows that overlap; C = 0 or C > 65,536; eps not positive and
            finite; CPU tensors without TRITON_INTERPRET=1.
    """
    x = check_tensor("x", x, ndim=2, dtypes=FLOAT_DTYPES)
    check_kernel_device("x", x)
    n_rows, hidden_size = x.shape
    if hidden_size == 0:
        raise InputError("x has 0 columns (C = 0); there is nothing to normalize")
    if hidden_size > MAX_BLOCK_C:
        raise InputError(f"x has {hidden_size} columns; the kernel holds a row in registers, at most {MAX_BLOCK_C}")
    weight = check_like("weight", weight, x, (hidden_size,))
    bias = check_like("bias", bias, x, (hidden_size,))
    if input_bias is not None:
        input_bias = check_like("input_bias", input_bias, x, (hidden_size,))
    if residual is not None:
        residual = check_like("residual", residual, x, (n_rows, hidden_size))
    eps = _check_eps(eps)
    if out is None:
        out = torch.empty((n_rows, hidden_size), dtype=x.dtype, device=x.device)
    else:
        out = check_like("out", out, x, (n_rows, hidden_size))
        check_rows_apart("out", out)
    if n_rows == 0:
        return out

    block_r, block_c, num_warps = _launch_settings(hidden_size)
    _layer_norm_kernel[(triton.cdiv(n_rows, block_r),)](
        x,
        x if residual is None else residual,  # never read when HAS_RESIDUAL is False
        weight if input_bias is None else input_bias,  # never read when HAS_INPUT_BIAS is False
        weight,
        bias,
        out,
        n_rows,
        hidden_size,
        x.stride(0),
        0 if residual is None else residual.stride(0),
        out.stride(0),
        eps,
        HAS_RESIDUAL=residual is not None,
        HAS_INPUT_BIAS=input_bias is not None,
        BLOCK_R=block_r,
        BLOCK_C=block_c,
        num_warps=num_warps,
    )
    return out
