"""Argument checks shared by the kernel launchers: every bad input is a minibert error that says what to pass.

Launchers run these before any launch, so a wrong dtype, device, shape, stride or offset table never
reaches a kernel (where it would read out of bounds or return garbage).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch

from ..errors import InputError, InputTypeError

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


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


def check_cu_seqlens(cu_seqlens: object, n_tokens: int, device: torch.device, max_seqlen: int | None = None) -> int:
    """Validate packed-sequence offsets [B + 1] (int32, 0 … n_tokens, non-decreasing); returns B.

    With `max_seqlen`, every length must be ≤ it. Costs one device→host copy of B + 1 integers.
    """
    cu_seqlens = check_tensor("cu_seqlens", cu_seqlens, ndim=1, dtypes=(torch.int32,), device=device)
    if cu_seqlens.numel() < 2:
        raise InputError("cu_seqlens must hold at least 2 offsets ([0, n_tokens]); an empty batch has nothing to do")
    if not cu_seqlens.is_contiguous():
        raise InputError("cu_seqlens must be contiguous; call .contiguous()")
    offsets = cu_seqlens.tolist()
    if offsets[0] != 0 or offsets[-1] != n_tokens:
        raise InputError(
            f"cu_seqlens must start at 0 and end at the token count {n_tokens}, got {offsets[0]} … {offsets[-1]}"
        )
    lengths = [b - a for a, b in itertools.pairwise(offsets)]
    if min(lengths) < 0:
        raise InputError("cu_seqlens must be non-decreasing (a sequence cannot have negative length)")
    if max_seqlen is not None:
        if isinstance(max_seqlen, bool) or not isinstance(max_seqlen, int) or max_seqlen <= 0:
            raise InputError(f"max_seqlen must be a positive int, got {max_seqlen!r}")
        if max(lengths) > max_seqlen:
            raise InputError(f"a sequence has {max(lengths)} tokens, more than max_seqlen={max_seqlen}")
    return len(lengths)
