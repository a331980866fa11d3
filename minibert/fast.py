"""The fast NumPy forward: the same math as :mod:`minibert.forward`, arranged for speed.

:func:`forward` here takes and returns exactly what :func:`minibert.forward.forward` does, and is tested
against it (and against the live reference). Where it differs:

- **Elementwise work in cache-sized row chunks, in place, on a small thread pool.** Bias + GELU and
  residual + bias + LayerNorm run over blocks of rows that fit in L2, writing into the GEMM's output
  buffer instead of allocating temporaries; the row blocks are split across threads (NumPy releases the GIL
  inside ufuncs). The GEMMs run between these phases on OpenBLAS's own threads, so the two never compete.
- **GELU from a rational erf in float32.** erf(u) = u·P(u²)/Q(u²) with degree-5 P and Q (all coefficients
  positive, so Horner's rule is well conditioned), fitted by iteratively reweighted least squares to
  relative error 2.5e-8 on [0, 4] and clamped beyond (erf(4) rounds to 1 in float32). In float32 its
  GELU is as close to the float64 GELU as torch's own float32 GELU is (tests/test_fast.py measures both).
- **Attention without padding.** Per sequence, on its real tokens only (the batch is right-padded, as the
  tokenizer makes it), so no mask is added and no padded score computed; the Q/K/V bias add and head-major
  relayout happen there too, on the thread pool. Q is scaled by 1/√D before QKᵀ (one pass over [H, L, D]
  instead of [H, L, L]). Padding rows of the output are 0 (the reference leaves them to attend freely).

Shape letters as in :mod:`minibert.forward`: B, T, C, H, D, F; N = B·T rows.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .config import ModelConfig
from .forward import position_bias, position_ids
from .weights import EncoderLayer, Weights

# erf(u)/u ≈ P(z)/Q(z), z = u², on 0 ≤ u ≤ 4 (coefficients of z⁰ … z⁵).
_ERF_P = (
    1.1283791393016418, 0.1935438813135391, 0.05310166067632,
    0.003883315362498023, 0.00028456882125241006, 1.986835602516026e-06,
)  # fmt: skip
_ERF_Q = (
    1.0, 0.5048563542882192, 0.11534957653416399,
    0.015207187893315172, 0.0011855710773932453, 3.7420886002094585e-05,
)  # fmt: skip
# GELU(x) = x · (½ + ½·erf(x/√2)) = x · (½ + x_c · R(x_c²/2)), R = P / (2√2 · Q), x_c = x clamped to ±4√2
_GELU_P = tuple(np.float32(c / (2 * math.sqrt(2))) for c in _ERF_P)
_GELU_Q = tuple(np.float32(c) for c in _ERF_Q)
_X_MAX = np.float32(4 * math.sqrt(2))
_CHUNK_FLOATS = 1 << 17  # elements per row block (512 KiB of float32): large enough that threads rarely wait on the GIL

_pool: ThreadPoolExecutor | None = None


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _parallel_rows(fn, n_rows: int, *args) -> None:
    """Run fn(lo, hi, *args) over [0, n_rows) split into one contiguous range per thread."""
    global _pool
    n_threads = min(_threads(), max(1, n_rows // 8))
    if n_threads == 1:
        fn(0, n_rows, *args)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="minibert")
    bounds = np.linspace(0, n_rows, n_threads + 1).astype(int)
    for future in [_pool.submit(fn, lo, hi, *args) for lo, hi in itertools.pairwise(bounds)]:
        future.result()


def _row_blocks(lo: int, hi: int, width: int):
    step = max(1, _CHUNK_FLOATS // width)
    for start in range(lo, hi, step):
        yield start, min(start + step, hi)


def _horner(coefficients: tuple[np.float32, ...], z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = Σ coefficients[i] · z^i, in place."""
    np.multiply(z, coefficients[-1], out=out)
    for c in coefficients[-2:0:-1]:
        out += c
        out *= z
    out += coefficients[0]
    return out


def _bias_gelu_rows(lo: int, hi: int, h: np.ndarray, bias: np.ndarray) -> None:
    """h[lo:hi] = GELU(h[lo:hi] + bias), in place, block by block. h: [N, F]."""
    width = h.shape[1]
    step = max(1, _CHUNK_FLOATS // width)
    x_c, z, p, q = (np.empty((step, width), dtype=np.float32) for _ in range(4))
    for a, b in _row_blocks(lo, hi, width):
        x = h[a:b]
        n = b - a
        x += bias
        np.clip(x, -_X_MAX, _X_MAX, out=x_c[:n])
        np.multiply(x_c[:n], x_c[:n], out=z[:n])
        z[:n] *= np.float32(0.5)  # u² = x²/2
        _horner(_GELU_P, z[:n], p[:n])
        _horner(_GELU_Q, z[:n], q[:n])
        p[:n] /= q[:n]
        p[:n] *= x_c[:n]
        p[:n] += np.float32(0.5)
        x *= p[:n]
        if x_c[:n].min() == -_X_MAX:  # Φ(x) < 8e-9 there: GELU is 0 to float32 precision, whatever |x|
            np.copyto(x, 0, where=x_c[:n] == -_X_MAX)


def bias_gelu_(h: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """In place: h = GELU(h + bias). h: [N, F] float32 C-contiguous, bias: [F]."""
    _parallel_rows(_bias_gelu_rows, h.shape[0], h, bias)
    return h


def _residual_layernorm_rows(lo, hi, h, residual, bias, weight, ln_bias, eps) -> None:
    width = h.shape[1]
    for a, b in _row_blocks(lo, hi, width):
        x = h[a:b]
        x += residual[a:b]
        if bias is not None:
            x += bias
        x -= x.mean(axis=1, keepdims=True)
        variance = np.einsum("ij,ij->i", x, x) / np.float32(width)  # [rows]
        x *= (1 / np.sqrt(variance + np.float32(eps)))[:, None]
        x *= weight
        x += ln_bias


def residual_layernorm_(h, residual, bias, weight, ln_bias, eps: float) -> np.ndarray:
    """In place: h = LayerNorm(h + residual (+ bias)). h, residual: [N, C]; the rest [C]."""
    _parallel_rows(_residual_layernorm_rows, h.shape[0], h, residual, bias, weight, ln_bias, eps)
    return h


def _attention_rows(lo, hi, mixed_qkv, qkv_bias, lengths, position_bias, context, T: int, H: int) -> None:
    """Batch elements lo..hi, each on its real tokens only: context rows = softmax(Q Kᵀ/√D (+ bias)) V."""
    D = context.shape[1] // H
    for b in range(lo, hi):
        L = int(lengths[b])
        rows = slice(b * T, b * T + L)
        # add the bias and lay Q, K, V out head-major: [L, 3C] -> [3, H, L, D]
        query, key, value = np.add(mixed_qkv[rows].reshape(L, 3, H, D).transpose(1, 2, 0, 3), qkv_bias)
        query *= np.float32(1 / math.sqrt(D))
        attention_scores = query @ key.transpose(0, 2, 1)  # [H, L, D] @ [H, D, L] -> [H, L, L]
        if position_bias is not None:
            attention_scores += position_bias[0, :, :L, :L]  # MPNet
        attention_scores -= attention_scores.max(axis=-1, keepdims=True)
        attention_probs = np.exp(attention_scores, out=attention_scores)
        attention_probs /= attention_probs.sum(axis=-1, keepdims=True)
        context_layer = attention_probs @ value  # [H, L, L] @ [H, L, D] -> [H, L, D]
        context[rows].reshape(L, H, D)[...] = context_layer.transpose(1, 0, 2)  # -> [L, C]
        context[b * T + L : (b + 1) * T] = 0  # padding rows: nothing attends to them


def self_attention(hidden_states, lengths, position_bias, layer: EncoderLayer, T: int, H: int) -> np.ndarray:
    """[N, C] -> context_layer [N, C] (before the output projection), padding rows zero."""
    N, C = hidden_states.shape
    mixed_qkv = hidden_states @ layer.qkv_weight  # [N, C] @ [C, 3C] -> [N, 3C]
    qkv_bias = layer.qkv_bias.reshape(3, H, 1, C // H)
    context = np.empty((N, C), dtype=np.float32)
    _parallel_rows(_attention_rows, len(lengths), mixed_qkv, qkv_bias, lengths, position_bias, context, T, H)
    return context


def encoder_layer(hidden_states, lengths, position_bias, layer: EncoderLayer, cfg: ModelConfig, T: int) -> np.ndarray:
    """One post-LN block on [N, C] rows; returns a new [N, C] array."""
    eps = cfg.layer_norm_eps
    context_layer = self_attention(hidden_states, lengths, position_bias, layer, T, cfg.num_attention_heads)  # [N, C]
    attention_output = context_layer @ layer.attention_output_weight  # [N, C]
    residual_layernorm_(
        attention_output,
        hidden_states,
        layer.attention_output_bias,
        layer.attention_layernorm_weight,
        layer.attention_layernorm_bias,
        eps,
    )
    intermediate_output = attention_output @ layer.intermediate_weight  # [N, C] -> [N, F]
    if cfg.hidden_act == "gelu":
        bias_gelu_(intermediate_output, layer.intermediate_bias)
    else:
        intermediate_output += layer.intermediate_bias
        np.maximum(intermediate_output, 0, out=intermediate_output)
    layer_output = intermediate_output @ layer.output_weight  # [N, F] -> [N, C]
    return residual_layernorm_(
        layer_output,
        attention_output,
        layer.output_bias,
        layer.output_layernorm_weight,
        layer.output_layernorm_bias,
        eps,
    )


def forward(
    input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray, w: Weights, cfg: ModelConfig
) -> np.ndarray:
    """Drop-in for :func:`minibert.forward.forward`: [B, T] ids, mask, types -> last_hidden_state [B, T, C]."""
    B, T = input_ids.shape
    C = cfg.hidden_size
    hidden_states = w.word_embeddings[input_ids.reshape(-1)]  # [N, C]
    others = np.broadcast_to(w.position_embeddings[position_ids(input_ids, cfg.position_padding_idx)], (B, T, C))
    if w.token_type_embeddings is not None:
        others = others + w.token_type_embeddings[token_type_ids]  # [B, T, C]
    residual_layernorm_(
        hidden_states,
        np.ascontiguousarray(others).reshape(B * T, C),
        None,
        w.embeddings_layernorm_weight,
        w.embeddings_layernorm_bias,
        cfg.layer_norm_eps,
    )
    lengths = attention_mask.sum(axis=1)  # [B]: right padding, as the tokenizer produces
    bias = None if w.relative_attention_bias is None else position_bias(T, w.relative_attention_bias)  # [1, H, T, T]
    for layer in w.layers:
        hidden_states = encoder_layer(hidden_states, lengths, bias, layer, cfg, T)  # [N, C]
    return hidden_states.reshape(B, T, C)
