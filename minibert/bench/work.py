"""Counting the encoder's work: its useful FLOPs on real tokens, and how many passages a run of a model takes."""

from __future__ import annotations

from collections.abc import Iterable


def encoder_flops(lengths: Iterable[int], *, hidden_size: int, intermediate_size: int, num_layers: int) -> int:
    """Useful FLOPs of the encoder layers over passages of these real token counts (padding not counted).

    Per layer and passage of L tokens: 2·L·C·3C (QKV) + 2·L·C·C (attention output) + 2·2·L·C·F (FFN in and out)
    + 2·2·L²·C (QKᵀ and A·V over all heads). Embeddings, biases, LayerNorm, softmax and pooling are left out.
    """
    C, F = hidden_size, intermediate_size
    per_layer = 0
    for L in map(int, lengths):
        per_layer += 2 * L * C * 3 * C + 2 * L * C * C + 2 * 2 * L * C * F + 2 * 2 * L * L * C
    return num_layers * per_layer


def default_limit(hidden_size: int, intermediate_size: int, num_layers: int) -> int:
    """512 passages for a model up to twice MiniLM-L6's per-token work, fewer in proportion for larger ones
    (BERT-base: 128), at least 64, a multiple of 32 — about 3 minutes for a default run on 2 cores."""
    minilm = 6 * 384 * (4 * 384 + 2 * 1536)
    work = num_layers * hidden_size * (4 * hidden_size + 2 * intermediate_size)
    return int(min(512, max(64, 32 * round(1024 * minilm / work / 32))))
