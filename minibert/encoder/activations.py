"""The activation functions of the encoder, of sentence-transformers' Dense modules and of cross-encoders' heads and
scores, on NumPy arrays.

Exact (erf) GELU as transformers' ``gelu`` (not the tanh approximation) and ReLU, shared by the readable forward
(:mod:`.reference`), the Dense modules (:mod:`.pooling`) and the cross-encoder's head (:mod:`.head`). :func:`erf`
works in float64 internally and is accurate to float32 rounding: a Taylor series below |x| = 1, Numerical Recipes'
Chebyshev fit of erfc above.
"""

from __future__ import annotations

import math

import numpy as np

# erf(x) = 2/√π · Σ (-1)^n x^(2n+1) / (n! (2n+1)); 13 terms reach 1e-10 relative for |x| < 1.
_ERF_SERIES = tuple((-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(13))
# Chebyshev fit of erfc(z) = t·exp(-z² + P(t)), t = 1/(1 + z/2), z ≥ 0, fractional error < 1.2e-7
# (Numerical Recipes, "erfcc"); used only where |x| ≥ 1, so erf's relative error is < 2.5e-8.
_ERFC_FIT = (
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
    0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277,
)  # fmt: skip


def _polyval(coefficients: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    """Σ coefficients[i] · x^i by Horner's rule."""
    result = np.full_like(x, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result = result * x + c
    return result


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, accurate to float32 rounding; same shape, float32 out."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = np.abs(x) < 1.0
    xs = x[small]
    out[small] = (2 / math.sqrt(math.pi)) * xs * _polyval(_ERF_SERIES, xs * xs)
    z = np.abs(x[~small])
    t = 1.0 / (1.0 + 0.5 * z)
    erfc = t * np.exp(-z * z + _polyval(_ERFC_FIT, t))
    out[~small] = np.copysign(1.0 - erfc, x[~small])
    return out.astype(np.float32)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU: x · Φ(x) = 0.5 · x · (1 + erf(x / √2))."""
    return (0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-x))).astype(np.float32)


# config.DENSE_ACTIVATIONS' values -> their NumPy functions: Dense modules' and cross-encoders' activations
ACTIVATION_FUNCTIONS = {
    "tanh": np.tanh,
    "identity": lambda x: x,
    "relu": relu,
    "sigmoid": sigmoid,
    "gelu": gelu,
}
