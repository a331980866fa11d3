"""Argument checks shared by the kernel launchers: every bad input is a minibert error that says what to pass.

Launchers run these before any launch, so a wrong dtype, device, shape, stride or offset table never
reaches a kernel (where it would read out of bounds or return garbage).

Packed-sequence offsets are checked once per batch: :func:`check_segments` turns ``cu_seqlens`` into a
:class:`Segments` (the device tensor plus what the checks learnt: token count, longest and empty sequences),
and every launcher accepts either a raw ``cu_seqlens`` tensor (checked on the spot: one device→host copy) or a
``Segments`` (nothing read back). :meth:`Segments.from_host` checks offsets that are still on the host, so a
forward pass that builds its batch there never reads offsets back from the GPU at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import triton
from triton.runtime.jit import JITFunction

from minibert.errors import InputError, InputTypeError

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@triton.jit
def _probe():
    pass


def interpreting() -> bool:
    """Whether the kernels run in Triton's interpreter: TRITON_INTERPRET=1 was set when they were defined (this
    module is imported first), so ``@triton.jit`` made interpreted functions, not JITFunctions."""
    return not isinstance(_probe, JITFunction)


def check_tensor(
    name: str,
    tensor: object,
    *,
    ndim: int,
    dtypes: Iterable[torch.dtype],
    device: torch.device | None = None,
) -> torch.Tensor:
    """A torch.Tensor of `ndim` dims and an allowed dtype, on `device`, with a unit-stride last dim."""
    if not isinstance(tensor, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    dtypes = tuple(dtypes)
    if tensor.dtype not in dtypes:
        allowed = ", ".join(str(d).removeprefix("torch.") for d in dtypes)
        raise InputError(f"{name} has dtype {str(tensor.dtype).removeprefix('torch.')}; expected one of {allowed}")
    if tensor.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {list(tensor.shape)}")
    if device is not None and tensor.device != device:
        raise InputError(f"{name} is on {tensor.device}, but the other inputs are on {device}; move it with .to()")
    if tensor.numel() and tensor.stride(-1) != 1:
        raise InputError(
            f"{name} must be contiguous in its last dimension (stride {tensor.stride()}); call .contiguous()"
        )
    return tensor


def check_kernel_device(name: str, tensor: torch.Tensor) -> None:
    """Compiled kernels take CUDA tensors; CPU tensors only when the kernels run in Triton's interpreter."""
    if tensor.device.type != "cuda" and not (tensor.device.type == "cpu" and interpreting()):
        raise InputError(
            f"{name} is on {tensor.device}, but Triton kernels need CUDA tensors "
            "(CPU tensors only under TRITON_INTERPRET=1, set before triton is imported)"
        )


def check_like(name: str, tensor: object, like: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """A tensor of exactly `shape`, with `like`'s dtype and device and a unit-stride last dim (check_tensor)."""
    shape = tuple(shape)
    tensor = check_tensor(name, tensor, ndim=len(shape), dtypes=(like.dtype,), device=like.device)
    if tuple(tensor.shape) != shape:
        raise InputError(f"{name} must have shape {list(shape)}, got {list(tensor.shape)}")
    return tensor


def check_rows_apart(name: str, tensor: torch.Tensor) -> None:
    """An output [N, C] whose rows do not overlap (each element is written once, by one program)."""
    if tensor.shape[0] > 1 and tensor.stride(0) < tensor.shape[1]:
        raise InputError(f"{name}'s rows overlap (strides {tensor.stride()}); pass a fresh torch.empty buffer")


@dataclass(frozen=True)
class Segments:
    """Checked packed-sequence offsets: the [B + 1] int32 device tensor and the facts the launchers need."""

    cu_seqlens: torch.Tensor  # [B + 1] int32, contiguous, on the kernels' device
    n_tokens: int  # N = cu_seqlens[-1]
    max_seqlen: int  # the longest sequence
    empty: tuple[int, ...]  # sequences with no tokens

    @property
    def batch(self) -> int:
        return self.cu_seqlens.numel() - 1

    @classmethod
    def from_host(cls, offsets: Sequence[int] | np.ndarray, device: torch.device | str) -> Segments:
        """Offsets checked on the host, then copied to `device` once (no device→host copy)."""
        facts = _offset_facts([int(x) for x in offsets], None)
        return cls(torch.tensor(offsets, dtype=torch.int32, device=device), *facts)


def _offset_facts(offsets: list[int], n_tokens: int | None) -> tuple[int, int, tuple[int, ...]]:
    """(N, longest, empty sequences) of offsets that must be 0, …, N (n_tokens when given), non-decreasing."""
    if len(offsets) < 2:
        raise InputError("cu_seqlens must hold at least 2 offsets ([0, n_tokens]); an empty batch has nothing to do")
    last = offsets[-1] if n_tokens is None else n_tokens
    if offsets[0] != 0 or offsets[-1] != last:
        raise InputError(
            f"cu_seqlens must start at 0 and end at the token count {last}, got {offsets[0]} … {offsets[-1]}"
        )
    lengths = [b - a for a, b in itertools.pairwise(offsets)]
    if min(lengths) < 0:
        raise InputError("cu_seqlens must be non-decreasing (a sequence cannot have negative length)")
    return last, max(lengths), tuple(i for i, n in enumerate(lengths) if n == 0)


def check_segments(cu_seqlens: object, n_tokens: int, device: torch.device) -> Segments:
    """`cu_seqlens` as checked :class:`Segments` for `n_tokens` packed rows on `device`.

    A ``Segments`` is taken as it is, after comparing its token count and device (no copy); a tensor must be
    [B + 1] int32, contiguous, 0 … n_tokens, non-decreasing — which costs one device→host copy of B + 1 ints.
    """
    if isinstance(cu_seqlens, Segments):
        if cu_seqlens.n_tokens != n_tokens:
            raise InputError(f"the segments hold {cu_seqlens.n_tokens} tokens, but the input has {n_tokens} rows")
        if cu_seqlens.cu_seqlens.device != device:
            raise InputError(f"cu_seqlens is on {cu_seqlens.cu_seqlens.device}, but the other inputs are on {device}")
        return cu_seqlens
    cu_seqlens = check_tensor("cu_seqlens", cu_seqlens, ndim=1, dtypes=(torch.int32,), device=device)
    if not cu_seqlens.is_contiguous():
        raise InputError("cu_seqlens must be contiguous; call .contiguous()")
    return Segments(cu_seqlens, *_offset_facts(cu_seqlens.tolist(), n_tokens))


def check_max_seqlen(max_seqlen: object, segments: Segments) -> int:
    """A max_seqlen argument: None means the longest sequence; else a positive int that bounds every length."""
    if max_seqlen is None:
        return max(segments.max_seqlen, 1)
    if isinstance(max_seqlen, bool) or not isinstance(max_seqlen, int) or max_seqlen <= 0:
        raise InputError(f"max_seqlen must be a positive int, got {max_seqlen!r}")
    if segments.max_seqlen > max_seqlen:
        raise InputError(f"a sequence has {segments.max_seqlen} tokens, more than max_seqlen={max_seqlen}")
    return max_seqlen
