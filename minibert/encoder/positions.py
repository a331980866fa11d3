"""MPNet's relative-position attention bias: T5's bidirectional buckets, and the bias each layer adds to its scores.

Follows transformers' ``MPNetEncoder.relative_position_bucket`` / ``compute_position_bias``, in float32 where the
reference computes in float32, so the bucket boundaries agree exactly. Shared by the NumPy forwards (the bias as a
[1, H, T, T] array) and the GPU backend (a bias table by offset, gathered inside the attention kernel).

Shape letters: H = attention heads, T = sequence length, NB = buckets.
"""

from __future__ import annotations

import math

import numpy as np


def relative_position_bucket(relative_position: np.ndarray, num_buckets: int, max_distance: int) -> np.ndarray:
    """MPNet's (T5's bidirectional) buckets: half the buckets per direction, exact below num_buckets / 4,
    log-spaced up to max_distance, clamped beyond. Int array in, same shape out."""
    half = num_buckets // 2
    max_exact = half // 2
    n = -relative_position
    bucket = (n < 0) * half  # keys after the query use the upper half
    n = np.abs(n)
    # float32, as the reference computes it, so the bucket boundaries agree exactly
    log_ratio = np.log(np.maximum(n, 1).astype(np.float32) / np.float32(max_exact))
    scaled = log_ratio / np.float32(math.log(max_distance / max_exact)) * np.float32(half - max_exact)
    large = np.minimum(max_exact + scaled.astype(np.int64), half - 1)
    return bucket + np.where(n < max_exact, n, large)


def position_bias(T: int, relative_attention_bias: np.ndarray) -> np.ndarray:
    """The bias every layer adds to its attention scores: [NB, H] table -> [1, H, T, T]."""
    positions = np.arange(T)
    relative_position = positions[None, :] - positions[:, None]  # [T, T]: key - query
    buckets = relative_position_bucket(relative_position, relative_attention_bias.shape[0], max_distance=128)
    return relative_attention_bias[buckets].transpose(2, 0, 1)[None]  # [T, T, H] -> [1, H, T, T]
