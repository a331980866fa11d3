"""The sentence-transformers modules after the transformer: Pooling, Dense, Normalize — on packed rows.

Follows sentence-transformers' ``Pooling`` module: each mode gives a [B, C] vector and several modes
concatenate in the order the config lists them. Mean pooling divides by the token count clamped at 1e-9
(sentence-transformers' guard), max pooling takes the largest value per column, weightedmean weights token t
(1-based, within its sequence) by t, lasttoken takes the last token. ``dense`` follows ``Dense``:
activation(x W + b), plus x (or x R) when ``use_residual``. ``normalize`` follows
``torch.nn.functional.normalize`` (norm clamped at 1e-12).

Differs in layout: the hidden states arrive packed, [N, C] rows with ``cu_seqlens`` offsets (the tokenizer's
:class:`~minibert.packing.PackedBatch`), so there is no mask to apply: each mode reduces over its sequence's
own rows (``np.add.reduceat`` and friends). A sequence with no tokens at all (only possible with a tokenizer
that adds no special tokens, on an empty text) pools to zeros in every mode.

:func:`after_pooling` is the one place where Dense and Normalize run, for every backend; the facade asks a backend to
normalize while pooling (a fused kernel) only when :func:`normalize_while_pooling` says nothing comes between.

Shape letters: N = packed tokens, B = sequences, C = hidden size, I / O = a Dense layer's in / out width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..loading.config import DenseConfig, ModelConfig
from ..loading.weights import DenseLayer
from ..packing import position_in_sequence
from .activations import ACTIVATION_FUNCTIONS

NORM_EPS = np.float32(1e-12)  # torch.nn.functional.normalize's clamp
COUNT_EPS = np.float32(1e-9)  # sentence-transformers' clamp on mean pooling's token count

def _segment_reduce(ufunc: np.ufunc, rows: np.ndarray, cu_seqlens: np.ndarray) -> np.ndarray:
    """ufunc over each sequence's rows: [N, ...] -> [B, ...]; a sequence with no rows gives zeros."""
    lengths = np.diff(cu_seqlens)  # [B]
    out = np.zeros((len(lengths), *rows.shape[1:]), dtype=rows.dtype)
    filled = lengths > 0
    if filled.any():  # reduceat runs each start to the next one: empty sequences in between add nothing
        out[filled] = ufunc.reduceat(rows, cu_seqlens[:-1][filled], axis=0)
    return out


def _first_or_last(hidden: np.ndarray, cu_seqlens: np.ndarray, last: bool) -> np.ndarray:
    """Each sequence's first (or last) row: [N, C] -> [B, C]; a sequence with no rows gives zeros."""
    lengths = np.diff(cu_seqlens)  # [B]
    out = np.zeros((len(lengths), hidden.shape[1]), dtype=hidden.dtype)
    filled = lengths > 0
    out[filled] = hidden[(cu_seqlens[1:] - 1 if last else cu_seqlens[:-1])[filled]]
    return out


def pool_one(mode: str, hidden: np.ndarray, cu_seqlens: np.ndarray) -> np.ndarray:
    """One pooling mode: packed [N, C] token embeddings, [B + 1] offsets -> [B, C] float32."""
    if mode == "cls":
        return _first_or_last(hidden, cu_seqlens, last=False)
    if mode == "lasttoken":
        return _first_or_last(hidden, cu_seqlens, last=True)
    if mode == "max":
        return _segment_reduce(np.maximum, hidden, cu_seqlens)
    count = np.diff(cu_seqlens).astype(np.float32)[:, None]  # [B, 1]
    if mode == "mean":
        return _segment_reduce(np.add, hidden, cu_seqlens) / np.maximum(count, COUNT_EPS)
    if mode == "mean_sqrt_len_tokens":
        return _segment_reduce(np.add, hidden, cu_seqlens) / np.sqrt(np.maximum(count, COUNT_EPS))
    if mode == "weightedmean":
        weights = (position_in_sequence(cu_seqlens) + 1).astype(np.float32)[:, None]  # [N, 1]: 1 … L per sequence
        weighted_sum = _segment_reduce(np.add, hidden * weights, cu_seqlens)  # [B, C]
        return weighted_sum / np.maximum(_segment_reduce(np.add, weights, cu_seqlens), COUNT_EPS)
    raise ValueError(f"unknown pooling mode {mode!r}")


def pool(hidden: np.ndarray, cu_seqlens: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """All configured modes, concatenated: packed [N, C] -> [B, C · len(modes)] float32."""
    vectors = [pool_one(mode, hidden, cu_seqlens) for mode in modes]
    return np.concatenate(vectors, axis=-1).astype(np.float32, copy=False)


def dense(embeddings: np.ndarray, layer: DenseLayer, cfg: DenseConfig) -> np.ndarray:
    """One Dense module: [B, I] -> [B, O] float32."""
    projected = embeddings @ layer.weight  # [B, I] @ [I, O] -> [B, O]
    if layer.bias is not None:
        projected = projected + layer.bias
    out = ACTIVATION_FUNCTIONS[cfg.activation](projected)  # [B, O]
    if cfg.use_residual:
        out = out + (embeddings if layer.residual_weight is None else embeddings @ layer.residual_weight)
    return out.astype(np.float32, copy=False)


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """Scaled to unit L2 norm along the last axis (norm clamped at 1e-12, as torch, so zeros stay 0): [..., d]."""
    embeddings = embeddings.astype(np.float32, copy=False)
    norms = np.sqrt(np.einsum("...d,...d->...", embeddings, embeddings))[..., None]  # [..., 1]
    return embeddings / np.maximum(norms, NORM_EPS)


def normalize_while_pooling(config: ModelConfig) -> bool:
    """Whether normalized embeddings may be normalized while pooling (in a backend's fused kernel): the model has one
    pooling mode (a kernel normalizes one mode's vector) and no Dense module comes between."""
    return len(config.pooling_modes) == 1 and not config.dense_layers


def after_pooling(
    pooled: np.ndarray, dense_layers: Sequence[DenseLayer], config: ModelConfig, *, normalize_output: bool
) -> np.ndarray:
    """The modules after Pooling, for every backend: Dense*, then — when `normalize_output` — L2 normalization.
    [B, C · modes] -> [B, d] float32."""
    embeddings = pooled
    for layer, layer_config in zip(dense_layers, config.dense_layers, strict=True):
        embeddings = dense(embeddings, layer, layer_config)  # [B, I] -> [B, O]
    return normalize(embeddings) if normalize_output else embeddings  # [B, d]
