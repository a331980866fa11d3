"""Assertions with the failure message a parity check needs (llm.c's style): the worst (ours, reference) pairs."""

from __future__ import annotations

import numpy as np


def assert_close(ours, ref, *, atol: float, rtol: float = 0.0, what: str = "values") -> None:
    """Elementwise |ours - ref| ≤ atol + rtol·|ref| (a NaN anywhere fails); on failure show the worst pairs."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        raise AssertionError(f"{what}: shape {ours.shape} vs reference {ref.shape}")
    diff = np.abs(ours - ref)
    bad = ~(diff <= atol + rtol * np.abs(ref))  # written so that NaN counts as out of tolerance
    if bad.any():
        worst = np.argsort(np.where(np.isnan(diff), np.inf, diff), axis=None)[::-1][:5]
        pairs = ", ".join(
            f"{tuple(int(j) for j in np.unravel_index(i, diff.shape))}: ({ours.flat[i]:.8g}, {ref.flat[i]:.8g})"
            for i in worst
        )
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {diff.size} elements out of tolerance (atol={atol}, rtol={rtol}); "
            f"max |Δ| = {diff.max():.3g}; worst (ours, reference): {pairs}"
        )
