"""Bias + exact GELU, in place on the FFN's intermediate activation (Triton, inference only).

Follows ``torch.nn.functional.gelu(v, approximate="none")``, which is BERT's, DistilBERT's and MPNet's
``hidden_act="gelu"``: ``gelu(v) = v · Φ(v) = 0.5 · v · (1 + erf(v / √2))`` — the erf form, not the tanh
approximation (``gelu_new`` / ``gelu_pytorch_tanh``), which differs by up to ~1e-3 and would break parity.
v is the intermediate GEMM's output plus its bias, ``x + bias``, so the forward runs the GEMM without an
``addmm`` epilogue and this kernel adds the bias and applies GELU in one read and one write of [N, F]. The
elementwise-kernel layout (2-D tiles, masks on the ragged edges) is the usual one of Triton's tutorials and
Liger-Kernel's ``ops/geglu.py``; the code is our own.

Where it differs from torch: the value is computed in float32 whatever the storage dtype and rounded once
at the store (torch on an fp16 tensor also computes in fp32, but rounds ``x + bias`` to fp16 first).

Shape letters: N = rows (packed tokens), F = features (FFN size).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .checks import FLOAT_DTYPES, check_kernel_device, check_like, check_rows_apart, check_tensor

__all__ = ["bias_gelu_"]

MAX_BLOCK_C = 512  # columns per program
TILE = 4096  # elements per program: BLOCK_R rows × BLOCK_C columns


@triton.jit
def _bias_gelu_kernel(
    x_ptr,  # [N, F] float32 / float16 / bfloat16, row stride stride_xn, column stride 1
    bias_ptr,  # [F] x's dtype (read only when HAS_BIAS)
    out_ptr,  # [N, F] x's dtype, row stride stride_on (may be x)
    N,
    F,
    stride_xn,
    stride_on,
    HAS_BIAS: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # [BLOCK_R]
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)  # [BLOCK_C]
    col_ok = cols < F
    mask = (rows < N)[:, None] & col_ok[None, :]  # [BLOCK_R, BLOCK_C]
    rows = rows.to(tl.int64)  # row · stride can pass 2**31
    v = tl.load(x_ptr + rows[:, None] * stride_xn + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        v += tl.load(bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    y = 0.5 * v * (1.0 + tl.math.erf(v * 0.7071067811865476))  # v · Φ(v), 0.707… = 1/√2
    tl.store(out_ptr + rows[:, None] * stride_on + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


def bias_gelu_(x: torch.Tensor, bias: torch.Tensor | None = None, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """Exact (erf) GELU of ``x + bias``, in place by default: [N, F] -> [N, F].

    ``out = 0.5 · v · (1 + erf(v / √2))`` with ``v = x + bias`` (bias broadcast over rows), computed in
    float32 and stored in x's dtype.

    Args:
        x: [N, F] float32 / float16 / bfloat16 (the intermediate GEMM's output, without its bias). Last-dim
            stride 1; any row stride. Overwritten with the result unless ``out`` is given.
        bias: optional [F] of x's dtype and device (the intermediate layer's bias), contiguous.
        out: optional [N, F] of x's dtype and device (last-dim stride 1, rows not overlapping) to write into
            instead of x; it must not partly overlap x.

    Returns:
        [N, F] in x's dtype: ``out`` when given, else ``x`` itself.

    Raises:
        InputTypeError: a tensor argument is not a ``torch.Tensor``.
        InputError: wrong dtype (bias and out share x's, one of float32 / float16 / bfloat16), ndim, shape,
            device or last-dim stride; an output (x itself, or out) whose rows overlap; CPU tensors without
            TRITON_INTERPRET=1.
    """
    x = check_tensor("x", x, ndim=2, dtypes=FLOAT_DTYPES)
    check_kernel_device("x", x)
    n_rows, width = x.shape
    if bias is not None:
        bias = check_like("bias", bias, x, (width,))
    out = x if out is None else check_like("out", out, x, (n_rows, width))
    check_rows_apart("x" if out is x else "out", out)
    if out.numel() == 0:
        return out

    block_c = min(MAX_BLOCK_C, triton.next_power_of_2(width))
    block_r = TILE // block_c
    grid = (triton.cdiv(n_rows, block_r), triton.cdiv(width, block_c))
    _bias_gelu_kernel[grid](
        x,
        x if bias is None else bias,  # never read when HAS_BIAS is False
        out,
        n_rows,
        width,
        x.stride(0),
        out.stride(0),
        HAS_BIAS=bias is not None,
        BLOCK_R=block_r,
        BLOCK_C=block_c,
        num_warps=8,
    )
    return out
