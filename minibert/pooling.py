"""The sentence-transformers modules after the transformer: Pooling, Dense, Normalize.

Follows sentence-transformers' ``Pooling`` module on right-padded batches: each mode gives a
[B, C] vector and several modes concatenate in the order the config lists them. Mean pooling
divides by the token count clamped at 1e-9 (sentence-transformers' guard), max pooling ignores
padding, weightedmean weights token t (1-based) by t, lasttoken takes the last real token.
``dense`` follows ``Dense``: activation(x W + b), plus x (or x R) when ``use_residual``.
``normalize`` follows ``torch.nn.functional.normalize`` (norm clamped at 1e-12).

Shape letters: B = batch, T = sequence length, C = hidden size, I / O = a Dense layer's in / out width.
"""

from __future__ import annotations

import numpy as np

from .config import DenseConfig
from .forward import gelu, relu
from .weights import DenseLayer

_DENSE_FUNCTIONS = {  # config.DENSE_ACTIVATIONS' values -> their NumPy functions
    "tanh": np.tanh,
    "identity": lambda x: x,
    "relu": relu,
    "sigmoid": lambda x: (1 / (1 + np.exp(-x))).astype(np.float32),
    "gelu": gelu,
}


def _mean_parts(token_embeddings: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Σ masked embeddings [B, C], clamped token count [B, 1])."""
    sum_embeddings = (token_embeddings * mask).sum(axis=1)  # [B, T, C] -> [B, C]
    count = np.maximum(mask.sum(axis=1), np.float32(1e-9))  # [B, T, 1] -> [B, 1]
    return sum_embeddings, count


def pool_one(mode: str, token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """One pooling mode: [B, T, C] token embeddings, [B, T] mask -> [B, C]."""
    mask = attention_mask[:, :, None].astype(np.float32)  # [B, T, 1]
    if mode == "cls":
        return token_embeddings[:, 0]  # [B, C]
    if mode == "max":
        return np.where(mask > 0, token_embeddings, -np.inf).max(axis=1)  # [B, C]
    if mode == "mean":
        sum_embeddings, count = _mean_parts(token_embeddings, mask)
        return sum_embeddings / count
    if mode == "mean_sqrt_len_tokens":
        sum_embeddings, count = _mean_parts(token_embeddings, mask)
        return sum_embeddings / np.sqrt(count)
    if mode == "weightedmean":
        positions = np.arange(1, token_embeddings.shape[1] + 1, dtype=np.float32)[None, :, None]  # [1, T, 1]
        weighted_mask = mask * positions  # [B, T, 1]
        sum_embeddings = (token_embeddings * weighted_mask).sum(axis=1)  # [B, C]
        return sum_embeddings / np.maximum(weighted_mask.sum(axis=1), np.float32(1e-9))
    if mode == "lasttoken":
        last = np.maximum(attention_mask.sum(axis=1) - 1, 0)  # [B]
        return token_embeddings[np.arange(len(last)), last]  # [B, C]
    raise ValueError(f"unknown pooling mode {mode!r}")


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, modes: tuple[str, ...]) -> np.ndarray:
    """All configured modes, concatenated: [B, T, C] -> [B, C · len(modes)] float32."""
    vectors = [pool_one(mode, token_embeddings, attention_mask) for mode in modes]
    return np.concatenate(vectors, axis=-1).astype(np.float32, copy=False)


def dense(embeddings: np.ndarray, layer: DenseLayer, cfg: DenseConfig) -> np.ndarray:
    """One Dense module: [B, I] -> [B, O] float32."""
    projected = embeddings @ layer.weight  # [B, I] @ [I, O] -> [B, O]
    if layer.bias is not None:
        projected = projected + layer.bias
    out = _DENSE_FUNCTIONS[cfg.activation](projected)  # [B, O]
    if cfg.use_residual:
        out = out + (embeddings if layer.residual_weight is None else embeddings @ layer.residual_weight)
    return out.astype(np.float32, copy=False)


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (norm clamped at 1e-12, as torch): [N, d] -> [N, d]."""
    norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)  # [N, 1]
    return (embeddings / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)
