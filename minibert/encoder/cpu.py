"""The fast NumPy forward: the same math as :mod:`minibert.encoder.reference`, arranged for speed.

:func:`forward` takes the tokenizer's :class:`~minibert.packing.PackedBatch` and returns the last hidden states
of its real tokens, [N, C]; it equals :func:`minibert.encoder.reference.forward` on ``batch.to_padded()`` at those
tokens, and is tested against it and against the live reference. :class:`NumpyEncoder` is the NumPy backend: the
forward, then pooling per sequence straight from the packed rows. Where the fast forward differs from the
readable one:

- **No padding, one group of sequences per core.** The batch's real tokens arrive packed end to end
  ([N, C] rows, N = Σ lengths), the sequences split into contiguous groups of about equal token counts, and each
  group runs the whole layer stack on its own thread: GEMMs, attention and elementwise work, with no hand-offs
  between them, each GEMM on one BLAS thread. A batch too small to split — one short query — is the exception:
  one group, whose GEMMs BLAS splits over the cores (:func:`minibert.encoder.threads.thread_plan`, the one rule;
  :mod:`minibert.encoder.blas` takes the BLAS counts in turns).
- **Elementwise work in place, in cache-sized row blocks.** Bias + GELU and residual + bias + LayerNorm
  run over blocks of rows that fit in L2, in the GEMM's output buffer; each layer's activations live in
  buffers allocated once per forward (``np.matmul(..., out=)``), and the layer output overwrites its input.
- **GELU as x / (1 + exp(x·S(x²))) in float32.** x·Φ(x) written with the log-odds of Φ, which is odd in x:
  g = ln((1 − Φ)/Φ) = x·S(x²), S a degree-6 polynomial fitted by weighted minimax (``tools/fit_gelu.py``).
  NumPy's exp is vectorized, so this is 18 passes over the data against 27 for x·(½ + ½·erf) from a rational
  erf, and it has no ½ + ½·erf cancellation for negative x. Its error is within 8 ulp(GELU(x)) + 2e-7 on every
  SIMD level NumPy dispatches to (ARCHITECTURE.md, "The fast GELU's bound", derives it; the tests check it).
- **Only the rows that are read.** A cross-encoder reads one row per pair, its [CLS] token's, and so does CLS
  pooling: the last layer then computes every row's keys and values but attention, the attention output and the FFN
  for the first rows alone (``output="first_tokens"``); a cross-encoder's head runs on them inside the same
  threads, under the forward's BLAS count (``output="logits"``).
- **Attention per sequence, on its own tokens** (no mask, no padded scores), sequences of equal length
  stacked into one call (a batch of short queries is then a few calls, not one per query). K is laid out
  transposed for QKᵀ; Q is scaled by 1/√D before it (a pass over [H, L, D], not [H, L, L]); the softmax shifts
  by the sequence's maximum score and divides after A·V (see :func:`self_attention`).

Shape letters as in :mod:`minibert.encoder.reference`: B, T, C, H, D, F; N = packed rows (real tokens), L = one
sequence's length, S = sequences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..errors import positive_int
from ..loading.config import ModelConfig
from ..loading.weights import EncoderLayer, Weights
from ..packing import PackedBatch
from .blas import blas_threads
from .head import logits
from .pooling import normalize, pool
from .positions import position_bias
from .threads import default_threads, thread_plan

# GELU(x) = x·Φ(x) = x / (1 + exp(x·S(x²))): g(x) = ln((1 − Φ)/Φ) is odd, so g = x·S(x²); S below (w⁰ … w⁶)
# is the weighted-minimax fit of tools/fit_gelu.py (|ΔGELU| ≈ 7e-8 before float32 rounding).
GELU_S = tuple(
    np.float32(c)
    for c in (
        -1.5957684326576416, -0.07266856558887234, 6.625888676803486e-05, 0.00011048064703914996,
        -7.938263884200145e-06, 2.668955817473144e-07, -3.6112943610954574e-09,
    )
)  # fmt: skip
_X_ZERO = np.float32(-4 * math.sqrt(2))  # below, Φ(x) < 8e-9: GELU is 0 to float32 precision, whatever |x|
_MIN_ROW_SUM = np.float32(1e-30)  # softmax rows summing to less lose precision to subnormals
_BLOCK_FLOATS = 1 << 16  # elements per row block (256 KiB of float32): a block and its scratch blocks fit L2


def _row_blocks(n_rows: int, width: int):
    step = max(1, _BLOCK_FLOATS // width)
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _horner(coefficients: tuple[np.float32, ...], z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = Σ coefficients[i] · z^i, in place."""
    np.multiply(z, coefficients[-1], out=out)
    for c in coefficients[-2:0:-1]:
        out += c
        out *= z
    out += coefficients[0]
    return out


def bias_gelu_(h: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """In place: h = GELU(h + bias), block by block. h: [N, F] float32 C-contiguous, bias: [F].

    GELU(x) = x / (1 + e^g), g = x·S(x²). Large |x| need no clamp: for x ≳ 5.5, e^g < 3e-8 and the quotient is
    exactly x; for very negative x, e^g overflows to inf and the quotient is 0 (those x are set to exactly 0 anyway,
    below _X_ZERO). Error: |Δ| ≤ 8 ulp(GELU(x)) + 2e-7 against the exact GELU, whatever SIMD kernels NumPy picks
    (ARCHITECTURE.md, "The fast GELU's bound").
    """
    width = h.shape[1]
    step = min(h.shape[0], max(1, _BLOCK_FLOATS // width))
    w, g = (np.empty((step, width), dtype=np.float32) for _ in range(2))  # scratch, reused per block
    with np.errstate(over="ignore"):  # x² or e^g past float32's range: inf is the intended value
        for a, b in _row_blocks(h.shape[0], width):
            x = h[a:b]
            n = b - a
            x += bias
            zero = x < _X_ZERO if x.min() < _X_ZERO else None
            np.multiply(x, x, out=w[:n])
            _horner(GELU_S, w[:n], g[:n])
            g[:n] *= x
            np.exp(g[:n], out=g[:n])
            g[:n] += np.float32(1)
            x /= g[:n]
            if zero is not None:
                np.copyto(x, 0, where=zero)
    return h


def residual_layernorm_(h, residual, bias, weight, ln_bias, eps: float) -> np.ndarray:
    """In place: h = LayerNorm(h + residual (+ bias)), block by block. h, residual: [N, C]; the rest [C]."""
    width = h.shape[1]
    ones = np.ones((width, 1), dtype=np.float32)
    for a, b in _row_blocks(h.shape[0], width):
        x = h[a:b]
        x += residual[a:b]
        if bias is not None:
            x += bias
        mean = x @ ones  # [rows, 1] sums (a GEMV: faster than a reduction along short rows)
        mean *= np.float32(1 / width)
        x -= mean
        variance = np.einsum("ij,ij->i", x, x) / np.float32(width)  # [rows]
        x *= (1 / np.sqrt(variance + np.float32(eps)))[:, None]
        x *= weight
        x += ln_bias
    return h


class AttentionScratch:
    """A batch's sequences grouped by length, and the attention arrays of one group, carved out of regions sized for
    the largest group.

    Made once per forward and reused by every layer: fresh per-group arrays of a few hundred KiB each cost more in
    page faults (glibc maps allocations over 128 KiB afresh) than the GEMMs that fill them.
    """

    def __init__(self, offsets: np.ndarray, H: int, D: int) -> None:
        starts, lengths = offsets[:-1], np.diff(offsets)
        # (L, the first rows [S_L] of the sequences of length L, their indices [S_L]) for each length L ≥ 1 present,
        # shortest first
        indices = [np.flatnonzero(lengths == L) for L in np.unique(lengths) if L > 0]
        self.groups = [(int(lengths[i[0]]), starts[i], i) for i in indices]
        rows_max = max((L * len(s) for L, s, _ in self.groups), default=0)
        scores_max = max((L * L * len(s) for L, s, _ in self.groups), default=0)
        L_max = self.groups[-1][0] if self.groups else 0
        self.H, self.D = H, D
        self._hld = [np.empty(rows_max * H * D, dtype=np.float32) for _ in range(4)]  # Q, Kᵀ, V, context
        self._scores = np.empty(H * scores_max, dtype=np.float32)
        self._row_sums = np.empty(H * rows_max, dtype=np.float32)
        self._ones = np.ones((L_max, 1), dtype=np.float32)

    def arrays(self, S: int, L: int, Q: int):
        """For S sequences of L tokens, Q ≤ L of them queries: query [S, H, Q, D], key_t [S, H, D, L], value
        [S, H, L, D], context_layer [S, H, Q, D], scores [S, H, Q, L], row_sums [S, H, Q, 1], ones [L, 1] — views,
        valid until the next call."""
        H, D = self.H, self.D
        query, key_t, value, context_layer = self._hld
        return (
            query[: S * H * Q * D].reshape(S, H, Q, D),
            key_t[: S * H * L * D].reshape(S, H, D, L),
            value[: S * H * L * D].reshape(S, H, L, D),
            context_layer[: S * H * Q * D].reshape(S, H, Q, D),
            self._scores[: S * H * Q * L].reshape(S, H, Q, L),
            self._row_sums[: S * H * Q].reshape(S, H, Q, 1),
            self._ones[:L],
        )


def _exp_shifted_(query, key_t, bias, shift_by_row: bool, attention_scores, ones, row_sums) -> np.ndarray:
    """attention_scores = exp(Q Kᵀ (+ bias) - shift) in place, shifted by each sequence's maximum or each row's;
    returns the row sums [S, H, L, 1] (a GEMV: summing short rows along the last axis is several times slower)."""
    np.matmul(query, key_t, out=attention_scores)  # [S, H, L, D] @ [S, H, D, L] -> [S, H, L, L]
    if bias is not None:
        attention_scores += bias
    axes = -1 if shift_by_row else (1, 2, 3)
    np.subtract(attention_scores, attention_scores.max(axis=axes, keepdims=True), out=attention_scores)
    np.exp(attention_scores, out=attention_scores)
    return np.matmul(attention_scores, ones, out=row_sums)


def self_attention(
    mixed_qkv, qkv_bias, scratch: AttentionScratch, position_bias, context, first_only: bool = False
) -> np.ndarray:
    """Packed rows, each sequence on its own tokens: context = softmax(Q Kᵀ/√D (+ bias)) V.

    mixed_qkv: [N, 3C] (before the bias), qkv_bias: [3, H, D], scratch: the batch's length groups and arrays
    (``AttentionScratch(offsets, H, D)``, offsets [S + 1] row starts), position_bias: [1, H, T, T] or None,
    context: [N, C] output — or, with `first_only`, [S, C]: each sequence's first token only attends (the queries
    of its other tokens are not computed), as a cross-encoder's last layer needs for its [CLS] row.

    Sequences of equal length go through together, as a stack of S_L sequences (many short queries are a few
    stacks instead of many small calls); a length held by one sequence reads and writes its rows in place. The
    softmax shifts the scores by each sequence's maximum, not each row's (one reduction instead of a slow
    per-row one; any shift gives the same softmax), and divides by the row sums after the A·V product, on
    [H, L, D] instead of [H, L, L]. A row whose maximum is far below its sequence's (its sum < 1e-30, where exp
    would lose precision) sends its stack through per-row shifts instead; one query row per head is shifted by its
    own maximum from the start.
    """
    _, H, D = qkv_bias.shape
    query_bias, key_bias, value_bias = qkv_bias[:, None, :, None, :]  # [1, H, 1, D] each
    key_bias = key_bias.transpose(0, 1, 3, 2)  # [1, H, D, 1]
    scale = np.float32(1 / math.sqrt(D))
    for L, starts, index in scratch.groups:
        S, Q = len(starts), 1 if first_only else L  # Q: query rows per sequence
        query, key_t, value, context_layer, attention_scores, row_sums, ones = scratch.arrays(S, L, Q)
        rows = slice(starts[0], starts[0] + L) if S == 1 else (starts[:, None] + np.arange(L)).reshape(-1)
        mixed = mixed_qkv[rows].reshape(S, L, 3, H, D)
        # add the bias and lay the heads out: Q and V as [S, H, ·, D], K already transposed as [S, H, D, L]
        np.add(mixed[:, :Q, 0].transpose(0, 2, 1, 3), query_bias, out=query)
        query *= scale
        np.add(mixed[:, :, 1].transpose(0, 2, 3, 1), key_bias, out=key_t)
        np.add(mixed[:, :, 2].transpose(0, 2, 1, 3), value_bias, out=value)
        bias = None if position_bias is None else position_bias[:, :, :Q, :L]  # MPNet: [1, H, Q, L]

        _exp_shifted_(query, key_t, bias, first_only, attention_scores, ones, row_sums)
        if not first_only and row_sums.min() < _MIN_ROW_SUM:
            _exp_shifted_(query, key_t, bias, True, attention_scores, ones, row_sums)
        np.matmul(attention_scores, value, out=context_layer)  # [S, H, Q, L] @ [S, H, L, D] -> [S, H, Q, D]
        if first_only:  # -> [S, C] rows, one per sequence
            context[index] = np.divide(context_layer, row_sums, out=context_layer).reshape(S, H * D)
        elif S == 1:
            np.divide(context_layer[0], row_sums[0], out=context[rows].reshape(L, H, D).transpose(1, 0, 2))
        else:  # -> [S, L, H, D] rows, scattered back to their places
            np.divide(context_layer, row_sums, out=context_layer)
            context[rows] = context_layer.transpose(0, 2, 1, 3).reshape(S * L, H * D)
    return context


class _Buffers:
    """The activations of one layer on N packed rows and its attention scratch, made once per forward and reused by
    every layer."""

    def __init__(self, offsets: np.ndarray, cfg: ModelConfig) -> None:
        N, C, F = int(offsets[-1]), cfg.hidden_size, cfg.intermediate_size
        self.attention = AttentionScratch(offsets, cfg.num_attention_heads, C // cfg.num_attention_heads)
        self.mixed_qkv = np.empty((N, 3 * C), dtype=np.float32)
        self.context_layer = np.empty((N, C), dtype=np.float32)
        self.attention_output = np.empty((N, C), dtype=np.float32)
        self.intermediate_output = np.empty((N, F), dtype=np.float32)


@dataclass(frozen=True)
class Steps:
    """The forward's work besides its GEMMs, as the functions it calls: :data:`STEPS` (this module's), or timed
    versions of them (benchmarks/profile_cpu.py passes those to see where the time goes)."""

    self_attention: Callable[..., np.ndarray]
    bias_gelu: Callable[..., np.ndarray]
    residual_layernorm: Callable[..., np.ndarray]
    pool: Callable[..., np.ndarray]


STEPS = Steps(self_attention=self_attention, bias_gelu=bias_gelu_, residual_layernorm=residual_layernorm_, pool=pool)


def encoder_layer(
    hidden_states, position_bias, layer: EncoderLayer, cfg: ModelConfig, buf: _Buffers, steps: Steps, first_rows=None
) -> np.ndarray:
    """One post-LN block on packed [N, C] rows: returns the layer's output, [N, C] in place of hidden_states — or,
    given `first_rows` (each sequence's first row, [S]), only those rows' outputs, [S, C]: every row's keys and
    values, then attention, the attention output and the FFN for those rows alone."""
    eps = cfg.layer_norm_eps
    H, D = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    R = len(hidden_states) if first_rows is None else len(first_rows)  # the rows the layer outputs
    np.matmul(hidden_states, layer.qkv_weight, out=buf.mixed_qkv)  # [N, C] @ [C, 3C] -> [N, 3C]
    context_layer = steps.self_attention(
        buf.mixed_qkv, layer.qkv_bias.reshape(3, H, D), buf.attention, position_bias, buf.context_layer[:R],
        first_rows is not None,
    )  # [R, C]  # fmt: skip
    residual = hidden_states if first_rows is None else hidden_states[first_rows]  # [R, C]
    attention_output = np.matmul(context_layer, layer.attention_output_weight, out=buf.attention_output[:R])
    steps.residual_layernorm(
        attention_output,
        residual,
        layer.attention_output_bias,
        layer.attention_layernorm_weight,
        layer.attention_layernorm_bias,
        eps,
    )
    intermediate_output = np.matmul(attention_output, layer.intermediate_weight, out=buf.intermediate_output[:R])
    if cfg.hidden_act == "gelu":
        steps.bias_gelu(intermediate_output, layer.intermediate_bias)  # [R, F]
    else:
        intermediate_output += layer.intermediate_bias
        np.maximum(intermediate_output, 0, out=intermediate_output)
    layer_output = np.matmul(intermediate_output, layer.output_weight, out=residual)  # [R, F] -> [R, C]
    return steps.residual_layernorm(
        layer_output,
        attention_output,
        layer.output_bias,
        layer.output_layernorm_weight,
        layer.output_layernorm_bias,
        eps,
    )


def encode_packed(input_ids, position_ids, token_type_ids, offsets, position_bias, w: Weights, cfg: ModelConfig,
                  steps: Steps, first_only: bool = False):  # fmt: skip
    """Sequences packed end to end: [N] ids, positions, types; [S + 1] row offsets -> hidden states [N, C]; with
    `first_only`, the last layer for each sequence's first token alone: [S, C] (every sequence ≥ 1 token)."""
    hidden_states = w.word_embeddings[input_ids]  # [N, E]
    others = w.position_embeddings[position_ids]  # [N, E]
    if w.token_type_embeddings is not None:
        others += w.token_type_embeddings[token_type_ids]
    steps.residual_layernorm(
        hidden_states, others, None, w.embeddings_layernorm_weight, w.embeddings_layernorm_bias, cfg.layer_norm_eps
    )
    if w.embeddings_project_weight is not None:  # ELECTRA: [N, E] -> [N, C]
        hidden_states = hidden_states @ w.embeddings_project_weight
        hidden_states += w.embeddings_project_bias
    buf = _Buffers(offsets, cfg)
    for i, layer in enumerate(w.layers):
        last = i == len(w.layers) - 1
        first_rows = offsets[:-1] if first_only and last else None
        hidden_states = encoder_layer(hidden_states, position_bias, layer, cfg, buf, steps, first_rows)
    return hidden_states


OUTPUTS = ("tokens", "first_tokens", "logits")


def forward(
    batch: PackedBatch,
    w: Weights,
    cfg: ModelConfig,
    *,
    threads: int | None = None,
    steps: Steps = STEPS,
    output: str = "tokens",
) -> np.ndarray:
    """The encoder on a packed batch: [N] tokens -> last hidden states [N, C] (float32), its sequences in groups on
    up to `threads` threads (default :func:`~minibert.encoder.threads.default_threads`). Equal to
    :func:`minibert.encoder.reference.forward` on ``batch.to_padded()``, at the real tokens.

    `output` "first_tokens": the last hidden state of each sequence's first token, [B, C], the last layer run for
    those rows alone (every sequence must have a token); "logits": a cross-encoder's head on them, [B, labels] —
    in the groups' threads, so that its GEMMs too run with the forward's BLAS count (a GEMM on more BLAS threads
    between grouped forwards wakes OpenBLAS's workers, which then spin on the cores the next forward's groups need).
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    cu_seqlens = batch.cu_seqlens  # [B + 1]
    first_only = output != "tokens"
    if first_only and len(batch.lengths) and batch.lengths.min() < 1:
        raise ValueError(f"output={output!r} needs every sequence to have a token")
    positions = batch.position_ids(cfg.position_padding_idx)  # [N]
    table = w.relative_attention_bias
    bias = None if table is None else position_bias(batch.max_seqlen, table)  # [1, H, T, T] (MPNet)
    rows = len(batch.lengths) if first_only else len(batch.input_ids)
    width = cfg.head.num_labels if output == "logits" else cfg.hidden_size
    result = np.empty((rows, width), dtype=np.float32)  # [N, C], [B, C] or [B, labels]

    def run(b0: int, b1: int) -> None:
        t0, t1 = cu_seqlens[b0], cu_seqlens[b1]  # the group's rows
        hidden_states = encode_packed(
            batch.input_ids[t0:t1], positions[t0:t1], batch.token_type_ids[t0:t1], cu_seqlens[b0 : b1 + 1] - t0,
            bias, w, cfg, steps, first_only,
        )  # fmt: skip
        if output == "logits":
            hidden_states = logits(hidden_states, w.head, cfg.head)
        result[slice(b0, b1) if first_only else slice(t0, t1)] = hidden_states

    groups, blas = thread_plan(batch.lengths, default_threads() if threads is None else threads)
    with blas_threads(blas):
        if len(groups) == 1:
            run(*groups[0])
            return result
        with ThreadPoolExecutor(len(groups), thread_name_prefix="minibert") as pool:
            for future in [pool.submit(run, b0, b1) for b0, b1 in groups]:
                future.result()
    return result


class NumpyEncoder:
    """The NumPy backend (the contract: :class:`minibert.encoder.contract.Encoder`): the fast forward, then pooling
    per sequence straight from the packed rows.

    Args:
        config, weights: the model's, as loaded.
        threads: the forward's threads (default :func:`~minibert.encoder.threads.default_threads`).
        steps: the functions the forward calls besides its GEMMs (default :data:`STEPS`).
    """

    def __init__(self, config: ModelConfig, weights: Weights, *, threads: int | None = None, steps: Steps = STEPS):
        self.config, self.weights, self.steps = config, weights, steps
        self.threads = default_threads() if threads is None else positive_int("threads", threads)

    def token_embeddings(self, batch: PackedBatch) -> np.ndarray:
        """[N] tokens -> their last hidden states [N, C] float32."""
        return forward(batch, self.weights, self.config, threads=self.threads, steps=self.steps)

    def first_token_states(self, batch: PackedBatch) -> np.ndarray:
        """[N] tokens -> the last hidden state of each sequence's first token, [B, C] float32: the last layer runs
        for those rows alone (every sequence must have a token)."""
        return forward(batch, self.weights, self.config, threads=self.threads, steps=self.steps, output="first_tokens")

    def embed(self, batch: PackedBatch, normalize_rows: bool) -> np.ndarray:
        """[N] tokens -> pooled [B, C · modes] float32, straight from the packed rows; L2-normalized when asked.
        CLS pooling alone runs the last layer on the [CLS] rows only."""
        if self.config.pooling_modes == ("cls",) and batch.lengths.min(initial=1) > 0:
            pooled = self.first_token_states(batch)
        else:
            pooled = self.steps.pool(self.token_embeddings(batch), batch.cu_seqlens, self.config.pooling_modes)
        return normalize(pooled) if normalize_rows else pooled

    def logits(self, batch: PackedBatch) -> np.ndarray:
        """A cross-encoder's packed pairs -> its head's logits [B, labels] float32, from the [CLS] rows alone."""
        return forward(batch, self.weights, self.config, threads=self.threads, steps=self.steps, output="logits")
