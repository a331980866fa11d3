"""Helpers shared by the Triton kernel tests (tests/test_kernel_*.py): the device they run on, the dtype bounds,
seeded inputs, the check of a kernel's output, and the pieces of the bad-input tests.

A module of its own rather than part of conftest.py, which every test module loads: this one imports torch and
triton, which only the kernel tests need (conftest.py imports torch lazily, inside the helpers that use it).
Import what a test module uses with ``from tests.kernels.helpers import DEVICE, DTYPE_TOL, ...``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported (conftest.py sets it first under pytest)

from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch

from minibert.errors import InputError
from minibert.kernels import checks
from minibert.testing import assert_close
from minibert.testing.tables import KERNEL_TOLERANCES

# Interpreted kernels run on CPU tensors; compiled ones (TRITON_INTERPRET=0 on a GPU machine) on CUDA tensors.
DEVICE = torch.device("cpu" if checks.interpreting() else "cuda")

# (dtype, tol) for @pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL), ids fp32 / fp16 / bf16: the kernels' bounds
# (minibert.testing.tables.KERNEL_TOLERANCES, which the GPU check uses too). Each test module's docstring says how
# its kernel meets them (or how it applies them).
DTYPE_TOL = [
    pytest.param(getattr(torch, dtype), tol, id={"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[dtype])
    for dtype, tol in KERNEL_TOLERANCES.items()
]


def skip_module_without_device() -> None:
    """Skip the calling test module (call it at import) when the kernels are compiled but there is no CUDA device."""
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("TRITON_INTERPRET is off and there is no CUDA device", allow_module_level=True)


def randn(*shape: int, dtype: torch.dtype, seed: int, scale: float = 1.0, offset: float = 0.0) -> torch.Tensor:
    """Seeded N(offset, scale²) values, drawn in float32 on the CPU (the same on every device), as dtype on DEVICE."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=generator) * scale + offset).to(DEVICE, dtype)


def check_result(result: torch.Tensor, expected: np.ndarray, *, tol: float, what: str) -> None:
    """Every element of a kernel's output written (none left NaN from a poisoned buffer), and within
    tol + tol·|expected| of the float64 reference."""
    not_written = int((~torch.isfinite(result)).sum())
    assert not_written == 0, f"{what}: {not_written} of {result.numel()} elements NaN (never written?)"
    assert_close(result.double().cpu().numpy(), expected, atol=tol, rtol=tol, what=what)


# -- bad inputs -------------------------------------------------------------------------------------------------


def zeros(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.zeros(*shape, dtype=dtype, device=DEVICE)


def ones(*shape: int) -> torch.Tensor:
    return torch.ones(*shape, device=DEVICE)


def meta_like(t: torch.Tensor) -> torch.Tensor:
    """t's shape and dtype on the meta device: an input on another device, without a second device."""
    return torch.empty(t.shape, dtype=t.dtype, device="meta")


def check_bad_input(
    launcher: Callable[..., object],
    args: dict,
    change: Callable[[dict], object],
    error: type[Exception],
    message: str | Sequence[str],
    *,
    case: str,
) -> None:
    """``launcher(**args)``, after ``change(args)``, raises `error` with `message` (a fragment, or each of a list of
    fragments) in its message."""
    change(args)
    with pytest.raises(error) as info:
        launcher(**args)
    said = str(info.value)
    for fragment in [message] if isinstance(message, str) else message:
        assert fragment in said, f"{case}: unhelpful message {said!r} (without {fragment!r})"


def check_cpu_tensors_refused_when_compiled(monkeypatch, launcher: Callable[..., object], args: dict) -> None:
    """Compiled kernels need CUDA tensors: with the kernels taken as compiled (checks.interpreting patched to
    False), ``launcher(**args)`` on CPU copies of the tensor arguments is refused before any launch."""
    monkeypatch.setattr(checks, "interpreting", lambda: False)
    cpu_args = {name: value.cpu() if isinstance(value, torch.Tensor) else value for name, value in args.items()}
    with pytest.raises(InputError, match="need CUDA tensors"):
        launcher(**cpu_args)
