"""Fit the polynomial behind minibert.encoder.cpu's GELU: GELU(x) = x / (1 + exp(x·S(x²))).

x·Φ(x) = x / (1 + e^g) with g(x) = ln((1 − Φ(x)) / Φ(x)), an odd function, so g(x) = x·S(x²). S is fitted on
0 ≤ x ≤ 7 by Lawson's iteratively reweighted least squares toward the weighted minimax, the weight being how
much an error in S moves GELU: ∂(x·Φ)/∂S = x² · Φ(1 − Φ). Degree 6 reaches |ΔGELU| ≈ 7e-8 (before float32
rounding) and has a negative leading coefficient, so g keeps falling past the fitted range and Φ rounds to
exactly 1 for large x; degree 5 (6e-7) is too coarse, degree 7 turns g positive again past x ≈ 8.

    python tools/fit_gelu.py        # prints the coefficients of S (w⁰ … w⁶) and the fit's max |ΔGELU|
"""

from __future__ import annotations

import argparse
import math

import numpy as np


def fit(degree: int = 6, x_max: float = 7.0, points: int = 20_000, iterations: int = 60) -> tuple[np.ndarray, float]:
    """Coefficients of S (lowest power first) and the max weighted error |ΔGELU| on the grid."""
    x = np.linspace(1e-4, x_max, points)
    tail = np.array([0.5 * math.erfc(v / math.sqrt(2)) for v in x])  # 1 − Φ(x), accurate in the tail
    phi = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])  # Φ(x)
    s = (np.log(tail) - np.log(phi)) / x  # S(x²) = g(x) / x
    weight = x * x * phi * tail
    vander = np.vander(x * x, degree + 1, increasing=True)
    lawson = np.ones_like(x)
    for _ in range(iterations):
        w = weight * np.sqrt(lawson)
        coefficients, *_ = np.linalg.lstsq(vander * w[:, None], s * w, rcond=None)
        error = np.abs(vander @ coefficients - s) * weight
        lawson *= error / error.max()
        lawson /= lawson.max()
    return coefficients, float((np.abs(vander @ coefficients - s) * weight).max())


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    coefficients, error = fit()
    print("S coefficients (w⁰ … w⁶):", ", ".join(repr(float(c)) for c in coefficients))
    print(f"max |ΔGELU| on the fit grid: {error:.2e}")


if __name__ == "__main__":
    main()
