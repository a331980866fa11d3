"""Mean / CLS pooling of packed hidden states, with optional fused L2 normalization (Triton).

Follows sentence-transformers' ``Pooling`` module (``pooling_mode_mean_tokens``: the sum of a sequence's
token vectors divided by its token count clamped at 1e-9, so an empty sequence pools to zeros, not NaN;
``pooling_mode_cls_token``: the first token's vector) and ``torch.nn.functional.normalize``
(``x / max(‖x‖₂, 1e-12)``), which is what sentence-transformers' ``Normalize`` module calls.

Where it differs:

* the input is *packed*: all sequences' tokens concatenated into one [N, C] matrix, sequence b owning
  rows ``cu_seqlens[b] : cu_seqlens[b + 1]`` (the layout of flash-attention's varlen kernels), instead of
  a right-padded [B, T, C] batch with an attention mask. No padding rows are read.
* sums run in float32 whatever the input dtype (fp32 / fp16 / bf16), and the output is always float32
  [B, C]; sentence-transformers on an fp16 model sums and divides in fp16.
* the normalization is fused into the pooling kernel (one launch), not a separate module.

Shape letters: N = tokens of all sequences (packed), B = sequences (segments), C = hidden size.

Kernel design: one program per (segment, block of ``BLOCK_C`` columns). It walks the segment's rows in
``BLOCK_T``-row tiles, accumulating a [BLOCK_T, BLOCK_C] float32 tile, and reduces it over rows once at
the end. With ``NORMALIZE`` the whole row is needed for the norm, so one program covers all of C: a
first pass writes the un-normalized mean of each column block to ``out`` and sums its squares, a
barrier makes those writes visible to every thread of the program, and a second pass rescales ``out``
in place (B·C·4 extra bytes each way, small next to the N·C hidden states). CLS pooling is the same
kernel reading only the first row of each segment (divisor 1).

The row loop is a ``while`` loop on offsets loaded from ``cu_seqlens``: Triton's interpreter
(``TRITON_INTERPRET=1``) cannot use a loaded value as a ``range`` bound with NumPy ≥ 2.4, and a while
loop compiles and interprets alike.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from minibert.errors import InputError, InputTypeError

from .checks import FLOAT_DTYPES, Segments, check_segments, check_tensor, interpreting

__all__ = ["cls_pool", "mean_pool"]

MAX_TILE = 1 << 16  # elements of the [BLOCK_T, BLOCK_C] float32 accumulator, which lives in registers


@triton.jit
def _pool_kernel(
    hidden_ptr,  # [N, C] float32 / float16 / bfloat16, row stride stride_hn, column stride 1
    cu_seqlens_ptr,  # [B + 1] int32, segment b = rows cu_seqlens[b] : cu_seqlens[b + 1]
    out_ptr,  # [B, C] float32, contiguous
    C,
    stride_hn,
    FIRST_TOKEN: tl.constexpr,  # CLS pooling: read only the segment's first row (the launcher checks it exists)
    NORMALIZE: tl.constexpr,  # fused x / max(‖x‖₂, 1e-12); needs C_BLOCKS covering all of C
    C_BLOCKS: tl.constexpr,  # column blocks per program: 1, or cdiv(C, BLOCK_C) when NORMALIZE
    BLOCK_T: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    pid_b = tl.program_id(0)  # segment
    pid_c = tl.program_id(1)  # group of C_BLOCKS column blocks
    start = tl.load(cu_seqlens_ptr + pid_b)
    end = tl.load(cu_seqlens_ptr + pid_b + 1)
    if FIRST_TOKEN:
        end = start + 1
    count = tl.maximum((end - start).to(tl.float32), 1e-9)  # sentence-transformers' clamp(mask.sum, 1e-9)
    out_row_ptr = out_ptr + pid_b.to(tl.int64) * C
    t_offsets = tl.arange(0, BLOCK_T)  # [BLOCK_T]
    sum_sq = 0.0
    for i in range(C_BLOCKS):
        cols = (pid_c * C_BLOCKS + i) * BLOCK_C + tl.arange(0, BLOCK_C)  # [BLOCK_C]
        col_mask = cols < C
        acc = tl.zeros([BLOCK_T, BLOCK_C], dtype=tl.float32)
        t0 = start
        while t0 < end:
            rows = t0 + t_offsets  # [BLOCK_T]
            ptrs = hidden_ptr + rows.to(tl.int64)[:, None] * stride_hn + cols[None, :]  # [BLOCK_T, BLOCK_C]
            tile = tl.load(ptrs, mask=(rows < end)[:, None] & col_mask[None, :], other=0.0)
            acc += tile.to(tl.float32)
            t0 += BLOCK_T
        mean = tl.div_rn(tl.sum(acc, axis=0), count)  # [BLOCK_T, BLOCK_C] -> [BLOCK_C]
        tl.store(out_row_ptr + cols, mean, mask=col_mask)
        if NORMALIZE:
            sum_sq += tl.sum(mean * mean, axis=0)  # masked columns hold 0
    if NORMALIZE:
        norm = tl.maximum(tl.sqrt_rn(sum_sq), 1e-12)  # torch.nn.functional.normalize's eps
        tl.debug_barrier()  # pass 1's stores are visible to all of this program's threads
        for i in range(C_BLOCKS):  # pid_c == 0 here: one program covers all of C
            cols = i * BLOCK_C + tl.arange(0, BLOCK_C)
            col_mask = cols < C
            mean = tl.load(out_row_ptr + cols, mask=col_mask, other=0.0)
            tl.store(out_row_ptr + cols, tl.div_rn(mean, norm), mask=col_mask)


def _check_block(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{name} must be an int (a power of two), got {type(value).__name__}")
    if value < 1 or value & (value - 1):
        raise InputError(f"{name} must be a power of two ≥ 1 (tl.arange needs one), got {value}")
    return value


def _check_inputs(hidden: object, cu_seqlens: object) -> tuple[torch.Tensor, Segments]:
    """Checked hidden [N, C] and its checked segments (cu_seqlens [B + 1])."""
    hidden = check_tensor("hidden", hidden, ndim=2, dtypes=FLOAT_DTYPES)
    if not interpreting() and hidden.device.type != "cuda":
        raise InputError(
            f"hidden is on {hidden.device}, but Triton kernels need CUDA tensors "
            "(CPU tensors only under TRITON_INTERPRET=1, set before triton is imported)"
        )
    if hidden.shape[1] == 0:
        raise InputError("hidden has 0 columns (hidden size C = 0); there is nothing to pool")
    return hidden, check_segments(cu_seqlens, hidden.shape[0], hidden.device)


def _output(out: object, batch: int, hidden: torch.Tensor) -> torch.Tensor:
    """`out` checked to be a contiguous float32 [B, C] tensor on hidden's device, or a new one."""
    shape = (batch, hidden.shape[1])
    if out is None:
        return torch.empty(shape, dtype=torch.float32, device=hidden.device)
    out = check_tensor("out", out, ndim=2, dtypes=(torch.float32,), device=hidden.device)
    if tuple(out.shape) != shape:
        raise InputError(f"out must have shape [B, C] = {list(shape)}, got {list(out.shape)}")
    if not out.is_contiguous():
        raise InputError(f"out must be contiguous (strides {out.stride()}); pass a fresh torch.empty buffer")
    return out


def _launch(
    hidden: torch.Tensor,
    cu_seqlens: torch.Tensor,  # [B + 1] int32, checked
    out: torch.Tensor,
    *,
    first_token: bool,
    normalize: bool,
    block_t: int,
    block_c: int,
) -> torch.Tensor:
    n_tokens, hidden_size = hidden.shape
    if n_tokens == 0:  # every segment is empty (mean pooling only): zeros, as the kernel would write
        return out.zero_()
    c_blocks = triton.cdiv(hidden_size, block_c)
    c_blocks_per_program = c_blocks if normalize else 1
    grid = (out.shape[0], c_blocks // c_blocks_per_program)
    num_warps = min(8, max(1, triton.next_power_of_2(block_t * block_c // 512)))  # ~16 accumulators per thread
    _pool_kernel[grid](
        hidden,
        cu_seqlens,
        out,
        hidden_size,
        hidden.stride(0),
        FIRST_TOKEN=first_token,
        NORMALIZE=normalize,
        C_BLOCKS=c_blocks_per_program,
        BLOCK_T=block_t,
        BLOCK_C=block_c,
        num_warps=num_warps,
    )
    return out


def _default_block_c(hidden_size: int, block_c: int | None) -> int:
    if block_c is None:
        return min(128, triton.next_power_of_2(hidden_size))
    return _check_block("block_c", block_c)


def mean_pool(
    hidden: torch.Tensor,
    cu_seqlens: torch.Tensor | Segments,
    *,
    normalize: bool = False,
    block_t: int = 16,
    block_c: int | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of each packed segment's token vectors, optionally L2-normalized: [N, C] -> float32 [B, C].

    ``out[b] = Σ hidden[cu_seqlens[b] : cu_seqlens[b + 1]] / max(length_b, 1e-9)`` summed in float32, so an
    empty segment (length 0) gives a row of zeros; with ``normalize``, each row is then divided by
    ``max(‖row‖₂, 1e-12)`` (zeros stay zeros).

    Args:
        hidden: [N, C] float32 / float16 / bfloat16 token vectors of all segments, concatenated. Its last
            dimension must have stride 1; the row stride may be anything (e.g. a column slice).
        cu_seqlens: [B + 1] int32 offsets on hidden's device: 0, …, N, non-decreasing; or the same already
            checked, as :class:`~minibert.kernels.checks.Segments` (no device→host copy).
        normalize: divide each pooled row by its L2 norm (``torch.nn.functional.normalize``), fused.
        block_t: rows per tile (a power of two).
        block_c: columns per tile (a power of two); default min(128, next power of two ≥ C).
        out: optional float32 [B, C] contiguous buffer on hidden's device to write into (must not overlap
            hidden).

    Returns:
        float32 [B, C]: ``out`` when given, else a new tensor.

    Raises:
        InputTypeError: a tensor argument is not a ``torch.Tensor``, or a block size is not an int.
        InputError: wrong dtype / ndim / device, non-unit last-dim stride, malformed or empty
            ``cu_seqlens``, ``out`` of the wrong shape / dtype / device / layout, a block size that is not a
            power of two, or a tile larger than 65,536 elements.
    """
    hidden, segments = _check_inputs(hidden, cu_seqlens)
    block_t = _check_block("block_t", block_t)
    block_c = _default_block_c(hidden.shape[1], block_c)
    if block_t * block_c > MAX_TILE:
        raise InputError(
            f"block_t × block_c = {block_t * block_c} is more than {MAX_TILE} elements "
            "(the float32 accumulator tile lives in registers); use smaller blocks"
        )
    out = _output(out, segments.batch, hidden)
    return _launch(
        hidden, segments.cu_seqlens, out, first_token=False, normalize=bool(normalize), block_t=block_t, block_c=block_c
    )


def cls_pool(
    hidden: torch.Tensor,
    cu_seqlens: torch.Tensor | Segments,
    *,
    normalize: bool = False,
    block_c: int | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """The first token vector of each packed segment, optionally L2-normalized: [N, C] -> float32 [B, C].

    ``out[b] = hidden[cu_seqlens[b]]`` converted to float32; with ``normalize``, divided by
    ``max(‖row‖₂, 1e-12)``.

    Args:
        hidden: [N, C] float32 / float16 / bfloat16 token vectors of all segments, concatenated (last-dim
            stride 1; any row stride).
        cu_seqlens: [B + 1] int32 offsets on hidden's device: 0, …, N, strictly increasing (every segment
            needs a first token); or the same already checked, as :class:`~minibert.kernels.checks.Segments`.
        normalize: divide each row by its L2 norm (``torch.nn.functional.normalize``), fused.
        block_c: columns per tile (a power of two ≤ 65,536); default min(128, next power of two ≥ C).
        out: optional float32 [B, C] contiguous buffer on hidden's device to write into.

    Returns:
        float32 [B, C]: ``out`` when given, else a new tensor.

    Raises:
        InputTypeError: a tensor argument is not a ``torch.Tensor``, or block_c is not an int.
        InputError: as :func:`mean_pool`, and when a segment is empty (it has no first token).
    """
    hidden, segments = _check_inputs(hidden, cu_seqlens)
    empty = segments.empty
    if empty:
        raise InputError(
            f"CLS pooling needs a first token, but segment {empty[0]} is empty "
            f"(cu_seqlens[{empty[0]}] == cu_seqlens[{empty[0] + 1}]); {len(empty)} empty segment(s) in all"
        )
    block_c = _default_block_c(hidden.shape[1], block_c)
    if block_c > MAX_TILE:
        raise InputError(f"block_c = {block_c} is more than {MAX_TILE} elements; use a smaller block")
    out = _output(out, segments.batch, hidden)
    return _launch(
        hidden, segments.cu_seqlens, out, first_token=True, normalize=bool(normalize), block_t=1, block_c=block_c
    )
