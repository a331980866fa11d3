"""Fused bidirectional attention forward over packed variable-length sequences (inference only).

Shape letters: N = total tokens of the packed batch, B = sequences, H = heads, D = head dim,
L = one sequence's length, S = max_seqlen, W = width of the relative-bias table (2·S − 1 or more).

What it follows: the FlashAttention-2 forward (Dao, 2023) as written in Triton's fused-attention
tutorial (06): one program owns a BLOCK_M tile of queries of one (sequence, head), streams that
sequence's keys and values in BLOCK_N tiles, and keeps a running row max ``m_i``, running row sum
``l_i`` and an unnormalized fp32 accumulator (online softmax, base 2 with log2(e) folded into the
scale), dividing by ``l_i`` once at the end. No [L, L] matrix is ever materialized.

Where it differs:

* **Packed variable-length input.** Sequences are concatenated into [N, H, D] and delimited by
  ``cu_seqlens`` (as flash-attn's ``varlen`` API): a program reads its sequence's start and length,
  exits at once when its query tile starts past the end, loops over keys only up to the sequence's
  own length and masks the ragged last tiles. No padding is computed and no program touches
  another sequence's tokens.
* **Bidirectional** (encoder attention): no causal mask, so there is a single loop over key tiles
  instead of the tutorial's on-band / off-band stages.
* **Relative-position bias by offset** (MPNet): an optional fp32 table ``rel_bias[h, W]`` is gathered
  in the kernel at ``(k − q) + (W − 1) / 2`` and added to the scaled score, instead of a dense
  [B, H, L, L] additive mask.
* **Inference only**: no log-sum-exp is saved and there is no backward kernel.
* **Strided views**: q, k and v may be slices of one fused [N, 3, H, D] QKV tensor (any token and
  head strides, unit stride in D).
* **fp32 inputs** use IEEE fp32 dots (``input_precision="ieee"``), not TF32, so the fp32 path agrees
  with a float64 reference to ~1e-6. fp16 / bf16 inputs use the tensor-core dots with P cast to the
  input dtype before P·V, as FlashAttention does.

Under ``TRITON_INTERPRET=1`` (CPU CI) the interpreter cannot ``tl.dot`` bfloat16 operands (it stores
bf16 as uint16 and multiplies the bit patterns; Triton documents bf16 as unsupported there), so for
bf16 only, the interpreted kernel widens the dot operands to fp32 first: bf16×bf16 products are exact in
fp32 and the tensor cores accumulate in fp32 too, so this is the same arithmetic up to summation order.
Every other step, P's rounding to bf16 included, runs as on the GPU. One more interpreter
difference: its fp32→bf16 casts truncate where the GPU rounds to nearest even.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from minibert.errors import InputError, InputTypeError

from .checks import FLOAT_DTYPES, Segments, check_max_seqlen, check_segments, check_tensor, interpreting

LOG2E = 1.4426950408889634  # log2(e): exp(x) = exp2(x · log2(e))
HEAD_DIMS = (16, 32, 64, 128)
MAX_GRID_YZ = 65535  # CUDA limit on grid dims 1 and 2 (sequences, heads)


@triton.jit
def _attend_key_tile(
    q,  # [BLOCK_M, D] queries of this tile (input dtype, or fp32 when WIDEN_DOT)
    m_i,  # [BLOCK_M] running row max of the base-2 logits
    l_i,  # [BLOCK_M] running row sum of exp2(s − m_i)
    acc,  # [BLOCK_M, D] running unnormalized P·V, fp32
    k_base,  # K + seq_start · stride_kn + head · stride_kh
    v_base,  # V + seq_start · stride_vn + head · stride_vh
    bias_row,  # Bias + head · stride_bh + bias_center (only read when HAS_BIAS)
    stride_kn,
    stride_vn,
    start_n,  # first key position of this tile within the sequence
    offs_m,  # [BLOCK_M] query positions within the sequence
    row_ok,  # [BLOCK_M] offs_m < seq_len
    seq_len,
    qk_scale,
    HEAD_DIM: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    IEEE_FP32_DOT: tl.constexpr,
    WIDEN_DOT: tl.constexpr,
):
    """One step of the online softmax: fold key/value tile [start_n, start_n + BLOCK_N) into (m_i, l_i, acc)."""
    cols = start_n + tl.arange(0, BLOCK_N)  # [BLOCK_N] key positions within the sequence
    col_ok = cols < seq_len  # ragged last key tile
    offs_d = tl.arange(0, HEAD_DIM)
    k = tl.load(k_base + cols[:, None] * stride_kn + offs_d[None, :], mask=col_ok[:, None], other=0.0)  # [BLOCK_N, D]
    v = tl.load(v_base + cols[:, None] * stride_vn + offs_d[None, :], mask=col_ok[:, None], other=0.0)  # [BLOCK_N, D]
    if WIDEN_DOT:
        k = k.to(tl.float32)
        v = v.to(tl.float32)

    # attention_scores in base 2: s = (q·kᵀ·scale + bias)·log2(e)   [BLOCK_M, BLOCK_N]
    s = tl.dot(q, tl.trans(k), input_precision="ieee") if IEEE_FP32_DOT else tl.dot(q, tl.trans(k))
    s = s * qk_scale
    if HAS_BIAS:
        rel = cols[None, :] - offs_m[:, None]  # [BLOCK_M, BLOCK_N] relative offset k − q
        bias = tl.load(bias_row + rel, mask=row_ok[:, None] & col_ok[None, :], other=0.0)
        s = s + bias * 1.4426950408889634  # · log2(e)
    s = tl.where(col_ok[None, :], s, float("-inf"))

    # every key tile holds ≥ 1 valid column, so m_new is finite and alpha is 0 on the first tile
    m_new = tl.maximum(m_i, tl.max(s, 1))  # [BLOCK_M]
    alpha = tl.exp2(m_i - m_new)  # [BLOCK_M] rescales what was accumulated under the old max
    p = tl.exp2(s - m_new[:, None])  # [BLOCK_M, BLOCK_N] attention_probs, unnormalized
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]

    # context_layer += P·V with P in the input dtype (tensor cores), or in fp32 for fp32 inputs
    if WIDEN_DOT:
        p = p.to(tl.bfloat16).to(tl.float32)  # keep P's bf16 rounding, dot in fp32
    acc = tl.dot(p, v, acc, input_precision="ieee") if IEEE_FP32_DOT else tl.dot(p.to(v.dtype), v, acc)
    return m_new, l_i, acc


@triton.jit
def _varlen_attention_fwd_kernel(
    Q,  # [N, H, D] (strided)
    K,  # [N, H, D] (strided)
    V,  # [N, H, D] (strided)
    Out,  # [N, H, D] (strided)
    Bias,  # [H, W] fp32, or any pointer when HAS_BIAS is False (never read)
    cu_seqlens,  # [B + 1] int32
    stride_qn,
    stride_qh,
    stride_kn,
    stride_kh,
    stride_vn,
    stride_vh,
    stride_on,
    stride_oh,
    stride_bh,
    bias_center,  # column of rel_bias holding offset k − q = 0, i.e. (W − 1) / 2
    qk_scale,  # softmax scale · log2(e)
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    IEEE_FP32_DOT: tl.constexpr,  # fp32 dot operands: IEEE, not TF32
    WIDEN_DOT: tl.constexpr,  # interpreter + bf16: widen dot operands to fp32 (see module docstring)
    INTERPRETED: tl.constexpr,  # running under TRITON_INTERPRET=1 (see the key loop)
):
    pid_m = tl.program_id(0)  # query tile within the sequence
    seq = tl.program_id(1)
    head = tl.program_id(2)

    seq_start = tl.load(cu_seqlens + seq)
    seq_len = tl.load(cu_seqlens + seq + 1) - seq_start
    tile_start = pid_m * BLOCK_M
    if tile_start >= seq_len:  # the sequence is shorter than the grid's longest one: nothing to do
        return
    seq_start = seq_start.to(tl.int64)  # token offset · stride can pass 2**31 on big batches

    offs_m = tile_start + tl.arange(0, BLOCK_M)  # [BLOCK_M] query positions within the sequence
    offs_d = tl.arange(0, HEAD_DIM)  # [D]
    row_ok = offs_m < seq_len  # [BLOCK_M] ragged last query tile
    q_ptrs = Q + (seq_start + offs_m[:, None]) * stride_qn + head * stride_qh + offs_d[None, :]
    q = tl.load(q_ptrs, mask=row_ok[:, None], other=0.0)  # [BLOCK_M, D]
    if WIDEN_DOT:
        q = q.to(tl.float32)
    k_base = K + seq_start * stride_kn + head * stride_kh
    v_base = V + seq_start * stride_vn + head * stride_vh
    bias_row = Bias + head * stride_bh + bias_center

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    if INTERPRETED:
        # Same loop as below. Triton 3.6's interpreter turns a loaded scalar into a Python int with
        # int(1-element array), which NumPy ≥ 2.4 refuses (triton-lang/triton#9171), so `range`
        # cannot take seq_len there; a while loop only needs bool(), which works.
        start_n = 0
        while start_n < seq_len:
            m_i, l_i, acc = _attend_key_tile(
                q, m_i, l_i, acc, k_base, v_base, bias_row, stride_kn, stride_vn, start_n, offs_m, row_ok,
                seq_len, qk_scale, HEAD_DIM, BLOCK_N, HAS_BIAS, IEEE_FP32_DOT, WIDEN_DOT,
            )  # fmt: skip
            start_n += BLOCK_N
    else:
        for start_n in range(0, seq_len, BLOCK_N):  # a for loop, so the compiler can pipeline the loads
            m_i, l_i, acc = _attend_key_tile(
                q, m_i, l_i, acc, k_base, v_base, bias_row, stride_kn, stride_vn, start_n, offs_m, row_ok,
                seq_len, qk_scale, HEAD_DIM, BLOCK_N, HAS_BIAS, IEEE_FP32_DOT, WIDEN_DOT,
            )  # fmt: skip

    out = acc / l_i[:, None]  # [BLOCK_M, D] context_layer rows
    o_ptrs = Out + (seq_start + offs_m[:, None]) * stride_on + head * stride_oh + offs_d[None, :]
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=row_ok[:, None])


def _power_of_two(x: object, low: int, high: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and low <= x <= high and x & (x - 1) == 0


def _default_launch(dtype: torch.dtype, head_dim: int) -> tuple[int, int]:
    """(num_warps, num_stages) for a 64×64 tile that keeps within the register file (ptxas, sm_80 / sm_90).

    fp16 / bf16: 4 warps, 2 stages up to D = 64, 8 warps for D = 128. fp32 (the exact path: IEEE dots
    on the FMA units, no tensor cores) needs more registers: 8 warps, 1 stage.
    """
    if dtype == torch.float32:
        return 8, 1
    return (4, 2) if head_dim <= 64 else (8, 2)


def varlen_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor | Segments,
    max_seqlen: int | None = None,
    *,
    scale: float | None = None,
    rel_bias: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    block_m: int = 64,
    block_n: int = 64,
    num_warps: int | None = None,
    num_stages: int | None = None,
) -> torch.Tensor:
    """Bidirectional softmax attention of each packed sequence with itself: softmax(q·kᵀ·scale + bias)·v.

    Args:
        q, k, v: [N, H, D] packed queries, keys, values of B sequences laid end to end; one dtype
            (float32, float16 or bfloat16) and one device. Strided views are fine (e.g. ``qkv[:, 0]``
            of a fused [N, 3, H, D] tensor) as long as the last dim has stride 1. D must be 16, 32,
            64 or 128.
        cu_seqlens: [B + 1] int32 on the same device, offsets of the sequences in the packed dim:
            sequence b is tokens ``cu_seqlens[b] : cu_seqlens[b + 1]``; 0 first, N last, non-decreasing
            (empty sequences are allowed and produce no rows). Checked here at the cost of one device→host
            copy, or already checked: a :class:`~minibert.kernels.checks.Segments` (built once per batch, so a
            forward pass's layers do not read the offsets back each time).
        max_seqlen: S, an upper bound on the sequence lengths (checked); sets the grid's first dim. Default:
            the longest sequence.
        scale: multiplies q·kᵀ before the bias; default 1/√D.
        rel_bias: optional [H, W] float32 relative-position bias, W odd and ≥ 2·S − 1: the score of
            query position q and key position k (0-based, within their sequence) gets
            ``rel_bias[h, (k − q) + (W − 1) / 2]`` added after scaling. With W = 2·S − 1 that is
            ``rel_bias[h, (k − q) + S − 1]``; a wider table (e.g. built once for a model's longest
            sequence) is used around its centre column. Entries must be finite (−inf would mask a whole
            key tile of a row and give NaN; this is a bias, not a mask).
        out: optional [N, H, D] buffer of q's dtype and device (last-dim stride 1) to write into; it
            must not overlap q, k or v. Allocated (contiguous) when not given.
        block_m, block_n: query / key tile sizes, powers of two in 16…256.
        num_warps, num_stages: Triton launch options; default for fp16 / bf16 4 warps / 2 stages up to
            D = 64 and 8 / 2 for D = 128, for fp32 8 / 1. Ignored by the interpreter.

    Returns:
        [N, H, D] attention output (HF's ``context_layer`` before the head merge) in q's dtype:
        ``out`` when given, else a new contiguous tensor.

    Raises:
        InputTypeError: an argument that should be a tensor is not one.
        InputError: wrong dtype, device, shape or stride, malformed ``cu_seqlens``, a sequence longer
            than ``max_seqlen``, no tokens, an unsupported head dim or block size.
    """
    q = check_tensor("q", q, ndim=3, dtypes=FLOAT_DTYPES)
    device, dtype = q.device, q.dtype
    if device.type == "meta" or (device.type != "cuda" and not interpreting()):
        raise InputError(
            f"q is on {device}; the Triton kernel runs on CUDA tensors (or on CPU tensors when TRITON_INTERPRET=1 "
            "is set before triton is imported)"
        )
    k = check_tensor("k", k, ndim=3, dtypes=FLOAT_DTYPES, device=device)
    v = check_tensor("v", v, ndim=3, dtypes=FLOAT_DTYPES, device=device)
    if k.dtype != dtype or v.dtype != dtype:
        raise InputError(f"q, k and v must share one dtype, got {_name(dtype)}, {_name(k.dtype)}, {_name(v.dtype)}")
    if k.shape != q.shape or v.shape != q.shape:
        raise InputError(
            f"q, k and v must have the same shape [N, H, D], got {list(q.shape)}, {list(k.shape)}, {list(v.shape)}"
        )
    n_tokens, n_heads, head_dim = q.shape
    if head_dim not in HEAD_DIMS:
        raise InputError(f"head dim {head_dim} is not supported; the kernel needs a power of two in 16..128")
    if n_tokens == 0:
        raise InputError("q, k and v hold no tokens (N == 0); there is nothing to attend over")
    segments = check_segments(cu_seqlens, n_tokens, device)
    max_seqlen = check_max_seqlen(max_seqlen, segments)
    n_seqs = segments.batch
    if n_seqs > MAX_GRID_YZ or n_heads > MAX_GRID_YZ:
        raise InputError(f"at most {MAX_GRID_YZ} sequences and heads per call, got {n_seqs} and {n_heads}; split it")

    if scale is None:
        scale = 1.0 / math.sqrt(head_dim)
    elif isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise InputTypeError(f"scale must be a float, got {type(scale).__name__}")
    elif not math.isfinite(scale):
        raise InputError(f"scale must be finite, got {scale}")

    if rel_bias is not None:
        rel_bias = check_tensor("rel_bias", rel_bias, ndim=2, dtypes=(torch.float32,), device=device)
        width = rel_bias.shape[1]
        if rel_bias.shape[0] != n_heads or width % 2 == 0 or width < 2 * max_seqlen - 1:
            raise InputError(
                f"rel_bias must have shape [H, W] = [{n_heads}, 2·max_seqlen − 1 = {2 * max_seqlen - 1}] "
                f"(or an odd W above that), got {list(rel_bias.shape)}"
            )
        bias_arg, stride_bh, bias_center = rel_bias, rel_bias.stride(0), (width - 1) // 2
    else:
        bias_arg, stride_bh, bias_center = q, 0, 0  # never read: HAS_BIAS=False compiles the gather out

    for name, block in (("block_m", block_m), ("block_n", block_n)):
        if not _power_of_two(block, 16, 256):
            raise InputError(f"{name} must be a power of two in 16..256, got {block!r}")

    if out is None:
        out = torch.empty((n_tokens, n_heads, head_dim), dtype=dtype, device=device)
    else:
        out = check_tensor("out", out, ndim=3, dtypes=(dtype,), device=device)
        if out.shape != q.shape:
            raise InputError(f"out must have q's shape {list(q.shape)}, got {list(out.shape)}")

    default_warps, default_stages = _default_launch(dtype, head_dim)
    widen = dtype == torch.bfloat16 and interpreting()
    grid = (triton.cdiv(max_seqlen, block_m), n_seqs, n_heads)
    _varlen_attention_fwd_kernel[grid](
        q,
        k,
        v,
        out,
        bias_arg,
        segments.cu_seqlens,
        q.stride(0),
        q.stride(1),
        k.stride(0),
        k.stride(1),
        v.stride(0),
        v.stride(1),
        out.stride(0),
        out.stride(1),
        stride_bh,
        bias_center,
        float(scale) * LOG2E,
        HEAD_DIM=head_dim,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        HAS_BIAS=rel_bias is not None,
        IEEE_FP32_DOT=dtype == torch.float32 or widen,
        WIDEN_DOT=widen,
        INTERPRETED=interpreting(),
        num_warps=default_warps if num_warps is None else num_warps,
        num_stages=default_stages if num_stages is None else num_stages,
    )
    return out


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
