"""The fast NumPy forward: the same math as :mod:`minibert.encoder.reference`, arranged for speed.

:func:`forward` takes the tokenizer's :class:`~minibert.packing.PackedBatch` and returns the last hidden states
of its real tokens, [N, C]; it equals :func:`minibert.encoder.reference.forward` on ``batch.to_padded()`` at those
tokens, and is tested against it and against the live reference. :class:`NumpyEncoder` is the NumPy backend: the
forward, then pooling per sequence straight from the packed rows. Where the fast forward differs from the
readable one:

- **No padding, one group of sequences per core.** The batch's real tokens arrive packed end to end
  (N = Σ lengths), the sequences split into contiguous groups of about equal token counts, and each
  group runs the whole layer stack on its own thread: GEMMs, attention and elementwise work, with no hand-offs
  between them, each GEMM on one BLAS thread. A batch too small to split — one short query — is the exception:
  one group, whose GEMMs BLAS splits over the cores (:func:`minibert.encoder.threads.thread_plan`, the one rule;
  :mod:`minibert.encoder.blas` takes the BLAS counts in turns).
- **Features × tokens.** Inside a group the activations are columns, [C, N], and every GEMM is W·X with W the
  checkpoint's own [out, in] rows, as torch stores them (``.T`` of the weight tree's [in, out] views: no copy). At
  a few tokens OpenBLAS runs that product fastest of the three layouts, and at many as fast as the others
  (ARCHITECTURE.md, "Weights"). The embeddings are turned into columns once, the last layer's output back into
  rows once.
- **Elementwise work in place.** Bias + GELU runs over blocks of rows that fit in L2, in the GEMM's output buffer,
  and residual + bias + LayerNorm over the whole [C, N] (column blocks are strided views, which NumPy runs
  slower); each layer's activations live in buffers allocated once per forward (``np.matmul(..., out=)``), and the
  layer output overwrites its input.
- **GELU as x / (1 + exp(x·S(x²))) in float32.** x·Φ(x) written with the log-odds of Φ, which is odd in x:
  g = ln((1 − Φ)/Φ) = x·S(x²), S a degree-6 polynomial fitted by weighted minimax (``tools/fit_gelu.py``).
  NumPy's exp is vectorized, so this is 18 passes over the data against 27 for x·(½ + ½·erf) from a rational
  erf, and it has no ½ + ½·erf cancellation for negative x. Its error is within 8 ulp(GELU(x)) + 2e-7 on every
  SIMD level NumPy dispatches to (ARCHITECTURE.md, "The fast GELU's bound", derives it; the tests check it).
- **Only the rows that are read.** A cross-encoder reads one row per pair, its [CLS] token's, and so does CLS
  pooling: the last layer then computes every row's keys and values but attention, the attention output and the FFN
  for the first rows alone (``output="first_tokens"``); a cross-encoder's head runs on them inside the same
  threads, under the forward's BLAS count (``output="logits"``).
- **Attention per sequence, on its own tokens**, sequences of equal length stacked into one call, and all the
  sequences of at most SHORT_SEQUENCE_TOKENS tokens into one stack padded to the longest of them, its padded keys
  masked (a batch of queries is then one call per chunk, not one per length present), transposed: scores
  K·Qᵀ and context Vᵀ·Pᵀ, so that only K changes layout. Qᵀ is scaled by 1/√D before it (a pass over [H, D, L],
  not [H, L, L]); the softmax shifts by the sequence's maximum score and divides after the product with V (see
  :func:`self_attention`). QKV and attention run a chunk of about ATTENTION_CHUNK_TOKENS tokens at a time, so
  that a sequence's columns are read with a stride of a few KiB, not of the whole group's tokens.

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
from .threads import balanced_groups, default_threads, thread_plan

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
# tokens per attention chunk: the QKV GEMM and attention run on about this many tokens' columns at a time, so that
# attention's per-sequence reads and writes stride over rows of a few KiB, not of the whole group
ATTENTION_CHUNK_TOKENS = 512
# sequences this short go through attention as one stack padded to the longest of them (the padded keys masked):
# a batch of queries is then one stack per chunk, not one per length present
SHORT_SEQUENCE_TOKENS = 32


def _blocks(n: int, size: int):
    """Ranges covering 0..n, each of about _BLOCK_FLOATS floats (items of `size` floats)."""
    step = max(1, _BLOCK_FLOATS // max(size, 1))
    for start in range(0, n, step):
        yield start, min(start + step, n)


def _horner(coefficients: tuple[np.float32, ...], z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = Σ coefficients[i] · z^i, in place."""
    np.multiply(z, coefficients[-1], out=out)
    for c in coefficients[-2:0:-1]:
        out += c
        out *= z
    out += coefficients[0]
    return out


def bias_gelu_(h: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """In place: h = GELU(h + bias), in blocks of rows. h: [F, N] float32 C-contiguous (features × tokens), bias: [F].

    GELU(x) = x / (1 + e^g), g = x·S(x²). Large |x| need no clamp: for x ≳ 5.5, e^g < 3e-8 and the quotient is
    exactly x; for very negative x, e^g overflows to inf and the quotient is 0 (those x are set to exactly 0 anyway,
    below _X_ZERO). Error: |Δ| ≤ 8 ulp(GELU(x)) + 2e-7 against the exact GELU, whatever SIMD kernels NumPy picks
    (ARCHITECTURE.md, "The fast GELU's bound").
    """
    F, N = h.shape
    step = min(F, max(1, _BLOCK_FLOATS // max(N, 1)))
    w, g = (np.empty((step, N), dtype=np.float32) for _ in range(2))  # scratch, reused per block
    with np.errstate(over="ignore"):  # x² or e^g past float32's range: inf is the intended value
        for a, b in _blocks(F, N):
            x, n = h[a:b], b - a
            x += bias[a:b, None]
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
    """In place: each column of h = LayerNorm(h + residual (+ bias)), over the whole array at once (the reductions
    along axis 0 add rows, SIMD along the tokens). h: [C, N] C-contiguous (features × tokens), residual: [C, N];
    bias, weight, ln_bias: [C]."""
    C = h.shape[0]
    h += residual
    if bias is not None:
        h += bias[:, None]
    h -= h.mean(axis=0)  # [N]
    variance = np.einsum("ij,ij->j", h, h)  # [N]
    variance *= np.float32(1 / C)
    variance += np.float32(eps)
    h *= 1 / np.sqrt(variance)
    h *= weight[:, None]
    h += ln_bias[:, None]
    return h


@dataclass(frozen=True)
class Stack:
    """Sequences whose attention runs as one call, each as L positions: their indices [S] among the batch's
    sequences; their tokens' columns, a slice for one sequence of L tokens, else [S · L] indices (a padded
    position reads its sequence's last token, so that its values are finite); and, when some are shorter than L,
    `mask_t` [S, 1, L, 1] (0 at real keys, -inf at padded ones) and `keep` [S · L] (which positions are real
    tokens), else None."""

    L: int
    index: np.ndarray
    columns: slice | np.ndarray
    mask_t: np.ndarray | None = None
    keep: np.ndarray | None = None


def _stack(L: int, starts: np.ndarray, index: np.ndarray, lengths: np.ndarray) -> Stack:
    """The stack of the sequences `index` (first tokens `starts`, `lengths` tokens ≤ L each), padded to L."""
    if len(index) == 1 and lengths[0] == L:
        return Stack(L, index, slice(int(starts[0]), int(starts[0]) + L))
    positions = np.arange(L)
    real = positions < lengths[:, None]  # [S, L]
    columns = (starts[:, None] + np.minimum(positions, lengths[:, None] - 1)).reshape(-1)  # [S · L]
    if real.all():
        return Stack(L, index, columns)
    mask_t = np.where(real, np.float32(0), np.float32(-np.inf))[:, None, :, None]
    return Stack(L, index, columns, mask_t, real.reshape(-1))


class AttentionScratch:
    """A batch's sequences in stacks (:class:`Stack`), and the attention arrays of one stack, carved out of regions
    sized for the largest.

    A stack is the sequences of one length, or all the sequences of at most SHORT_SEQUENCE_TOKENS tokens padded to
    the longest of them. Made once per forward and reused by every layer: fresh per-stack arrays of a few hundred KiB
    each cost more in page faults (glibc maps allocations over 128 KiB afresh) than the GEMMs that fill them.
    """

    def __init__(self, offsets: np.ndarray, H: int, D: int) -> None:
        starts, lengths = offsets[:-1], np.diff(offsets)
        short = np.flatnonzero((lengths > 0) & (lengths <= SHORT_SEQUENCE_TOKENS))
        longer = [np.flatnonzero(lengths == L) for L in np.unique(lengths[lengths > SHORT_SEQUENCE_TOKENS])]
        # the short sequences' stack first, then one per longer length, shortest first
        self.stacks = [
            _stack(int(lengths[i].max()), starts[i], i, lengths[i]) for i in [short, *longer] if i.size
        ]
        tokens_max = max((t.L * len(t.index) for t in self.stacks), default=0)
        scores_max = max((t.L * t.L * len(t.index) for t in self.stacks), default=0)
        L_max = max((t.L for t in self.stacks), default=0)
        self.H, self.D = H, D
        self._hld = [np.empty(tokens_max * H * D, dtype=np.float32) for _ in range(4)]  # Qᵀ, K, Vᵀ, context
        self._scores = np.empty(H * scores_max, dtype=np.float32)
        self._sums = np.empty(H * tokens_max, dtype=np.float32)
        self._ones = np.ones((1, L_max), dtype=np.float32)

    def arrays(self, S: int, L: int, Q: int):
        """For S sequences of L tokens, Q ≤ L of them queries: query_t [S, H, D, Q], key [S, H, L, D], value_t
        [S, H, D, L], context_layer [S, H, D, Q], scores_t [S, H, L, Q], sums [S, H, 1, Q], ones [1, L] — views,
        valid until the next call."""
        H, D = self.H, self.D
        query_t, key, value_t, context_layer = self._hld
        return (
            query_t[: S * H * D * Q].reshape(S, H, D, Q),
            key[: S * H * L * D].reshape(S, H, L, D),
            value_t[: S * H * D * L].reshape(S, H, D, L),
            context_layer[: S * H * D * Q].reshape(S, H, D, Q),
            self._scores[: S * H * L * Q].reshape(S, H, L, Q),
            self._sums[: S * H * Q].reshape(S, H, 1, Q),
            self._ones[:, :L],
        )


def _exp_shifted_(key, query_t, bias_t, mask_t, shift_by_query: bool, scores_t, ones, sums) -> np.ndarray:
    """scores_t = exp(K Qᵀ (+ biasᵀ) (+ mask) - shift) in place, shifted by each sequence's maximum or each
    query's; returns the sums over the keys [S, H, 1, Q] (a GEMV)."""
    np.matmul(key, query_t, out=scores_t)  # [S, H, L, D] @ [S, H, D, Q] -> [S, H, L, Q]
    if bias_t is not None:
        scores_t += bias_t
    if mask_t is not None:  # -inf on a padded stack's padded keys: exp gives exactly 0 there
        scores_t += mask_t
    axes = -2 if shift_by_query else (1, 2, 3)
    np.subtract(scores_t, scores_t.max(axis=axes, keepdims=True), out=scores_t)
    np.exp(scores_t, out=scores_t)
    return np.matmul(ones, scores_t, out=sums)  # [1, L] @ [S, H, L, Q] -> [S, H, 1, Q]


def self_attention(
    mixed_qkv, qkv_bias, scratch: AttentionScratch, position_bias, context, first_only: bool = False
) -> np.ndarray:
    """Packed tokens, each sequence on its own: context = softmax(Q Kᵀ/√D (+ bias)) V, features × tokens.

    mixed_qkv: [3C, N] (before the bias), qkv_bias: [3, H, D], scratch: the batch's length groups and arrays
    (``AttentionScratch(offsets, H, D)``, offsets [S + 1] token starts), position_bias: [1, H, T, T] or None,
    context: [C, N] output — or, with `first_only`, [C, S]: each sequence's first token only attends (the queries
    of its other tokens are not computed), as a cross-encoder's last layer needs for its [CLS] column.

    Everything is computed transposed, in the layout the tokens arrive in (columns): per head the scores as
    (Q Kᵀ)ᵀ = K Qᵀ [L, Q] and the context as (P V)ᵀ = Vᵀ Pᵀ [D, Q], so that Qᵀ and Vᵀ are the columns as they
    are, only K is transposed, and no GEMM takes a transposed operand. Sequences go through in the scratch's stacks:
    those of one length together, and the short ones (≤ SHORT_SEQUENCE_TOKENS) as one stack padded to the longest,
    a padded position reading its sequence's last token, masked with -inf as a key (exp gives exactly 0: the real
    queries' sums and contexts get nothing from it) and not written back as a query. A length held by one sequence
    reads its columns and writes its context in place. The softmax shifts the scores
    by each sequence's maximum, not each query's (one reduction instead of a slow per-query one; any shift gives
    the same softmax), and divides by the sums after the product with V, on [H, D, Q] instead of [H, L, Q]. A
    query whose maximum is far below its sequence's (its sum < 1e-30, where exp would lose precision) sends its
    stack through per-query shifts instead; one query per head is shifted by its own maximum from the start.
    """
    _, H, D = qkv_bias.shape
    heads = mixed_qkv.reshape(3, H, D, mixed_qkv.shape[1])  # [3, H, D, N]
    query_bias, value_bias = qkv_bias[0][:, :, None], qkv_bias[2][:, :, None]  # [H, D, 1]
    key_bias = qkv_bias[1][:, None, :]  # [H, 1, D]
    scale = np.float32(1 / math.sqrt(D))
    for stack in scratch.stacks:
        L, columns, mask_t = stack.L, stack.columns, stack.mask_t
        S, Q = len(stack.index), 1 if first_only else L  # Q: query tokens per sequence
        query_t, key, value_t, context_layer, scores_t, sums, ones = scratch.arrays(S, L, Q)
        if isinstance(columns, slice):
            mixed = heads[:, None, :, :, columns]  # [3, 1, H, D, L], a view
        else:
            mixed = heads[..., columns].reshape(3, H, D, S, L).transpose(0, 3, 1, 2, 4)  # [3, S, H, D, L]
        np.add(mixed[0, ..., :Q], query_bias, out=query_t)  # [S, H, D, Q]
        query_t *= scale
        np.add(mixed[1].transpose(0, 1, 3, 2), key_bias, out=key)  # [S, H, L, D]
        np.add(mixed[2], value_bias, out=value_t)  # [S, H, D, L]
        bias_t = None if position_bias is None else position_bias[:, :, :Q, :L].transpose(0, 1, 3, 2)  # [1, H, L, Q]

        _exp_shifted_(key, query_t, bias_t, mask_t, first_only, scores_t, ones, sums)
        if not first_only and sums.min() < _MIN_ROW_SUM:
            _exp_shifted_(key, query_t, bias_t, mask_t, True, scores_t, ones, sums)
        in_place = isinstance(columns, slice) and not first_only  # the context written straight into its columns
        out = context[:, columns].reshape(1, H, D, L) if in_place else context_layer
        np.matmul(value_t, scores_t, out=out)  # [S, H, D, L] @ [S, H, L, Q] -> [S, H, D, Q]
        np.divide(out, sums, out=out)
        if first_only:  # -> [C, S] columns, one per sequence
            context[:, stack.index] = context_layer.reshape(S, H * D).T
        elif not in_place:  # -> [C, S · L] columns, scattered back to their places (the real tokens' only)
            tokens = context_layer.transpose(1, 2, 0, 3).reshape(H * D, S * L)
            keep = slice(None) if stack.keep is None else stack.keep
            context[:, columns[keep]] = tokens[:, keep]
    return context


@dataclass(frozen=True)
class _Chunk:
    """Consecutive sequences whose QKV and attention run together: their tokens, their first tokens' places
    among the group's sequences, and their attention scratch."""

    tokens: slice
    sequences: slice
    attention: AttentionScratch


class _Buffers:
    """The activations of one layer on N packed tokens (features × tokens) and the attention chunks' scratch, made
    once per forward and reused by every layer; :meth:`columns` views the first R columns of one of them."""

    def __init__(self, offsets: np.ndarray, cfg: ModelConfig) -> None:
        N, C, F = int(offsets[-1]), cfg.hidden_size, cfg.intermediate_size
        H = cfg.num_attention_heads
        self.chunks = []
        for s0, s1 in balanced_groups(np.diff(offsets), max(1, -(-N // ATTENTION_CHUNK_TOKENS))):
            t0, t1 = int(offsets[s0]), int(offsets[s1])
            scratch = AttentionScratch(offsets[s0 : s1 + 1] - t0, H, C // H)
            self.chunks.append(_Chunk(slice(t0, t1), slice(s0, s1), scratch))
        n_max = max((c.tokens.stop - c.tokens.start for c in self.chunks), default=0)
        self._flat = {
            "mixed_qkv": np.empty(3 * C * n_max, dtype=np.float32),
            "context_layer": np.empty(C * n_max, dtype=np.float32),
            "attention_output": np.empty(C * N, dtype=np.float32),
            "intermediate_output": np.empty(F * N, dtype=np.float32),
        }

    def columns(self, name: str, height: int, R: int) -> np.ndarray:
        """Buffer `name` as a C-contiguous [height, R] array."""
        return self._flat[name][: height * R].reshape(height, R)


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
    """One post-LN block on packed tokens as columns, [C, N]: returns the layer's output, [C, N] in place of
    hidden_states — or, given `first_rows` (each sequence's first token, [S]), only those tokens' outputs, [C, S]:
    every token's keys and values, then attention, the attention output and the FFN for those tokens alone.

    Each GEMM is W·X with W the checkpoint's own [out, in] rows (``.T`` of the [in, out] views the weight tree
    holds): at a few tokens OpenBLAS multiplies that way fastest, and at many as fast as any other (ARCHITECTURE.md,
    "Weights")."""
    eps = cfg.layer_norm_eps
    C, F, H = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads
    first_only = first_rows is not None
    R = len(first_rows) if first_only else hidden_states.shape[1]  # the tokens the layer outputs
    attention_output = buf.columns("attention_output", C, R)
    for chunk in buf.chunks:  # QKV, attention and the attention output GEMM, a chunk of sequences at a time
        tokens = hidden_states[:, chunk.tokens]  # [C, n]
        mixed_qkv = np.matmul(layer.qkv_weight.T, tokens, out=buf.columns("mixed_qkv", 3 * C, tokens.shape[1]))
        outputs = chunk.sequences if first_only else chunk.tokens  # its columns among the layer's R outputs
        context_layer = steps.self_attention(
            mixed_qkv, layer.qkv_bias.reshape(3, H, C // H), chunk.attention, position_bias,
            buf.columns("context_layer", C, outputs.stop - outputs.start), first_only,
        )  # [C, n] or [C, S_chunk]  # fmt: skip
        np.matmul(layer.attention_output_weight.T, context_layer, out=attention_output[:, outputs])
    residual = hidden_states[:, first_rows] if first_only else hidden_states  # [C, R]
    steps.residual_layernorm(
        attention_output,
        residual,
        layer.attention_output_bias,
        layer.attention_layernorm_weight,
        layer.attention_layernorm_bias,
        eps,
    )
    intermediate_output = np.matmul(
        layer.intermediate_weight.T, attention_output, out=buf.columns("intermediate_output", F, R)
    )  # [F, R]
    if cfg.hidden_act == "gelu":
        steps.bias_gelu(intermediate_output, layer.intermediate_bias)
    else:
        intermediate_output += layer.intermediate_bias[:, None]
        np.maximum(intermediate_output, 0, out=intermediate_output)
    layer_output = np.matmul(layer.output_weight.T, intermediate_output, out=residual)  # [C, F] @ [F, R] -> [C, R]
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
    """Sequences packed end to end: [N] ids, positions, types; [S + 1] token offsets -> hidden states as columns,
    [C, N]; with `first_only`, the last layer for each sequence's first token alone: [C, S] (every sequence ≥ 1
    token)."""
    hidden_states = np.ascontiguousarray(w.word_embeddings[input_ids].T)  # [E, N]
    others = w.position_embeddings[position_ids]  # [N, E]
    if w.token_type_embeddings is not None:
        others += w.token_type_embeddings[token_type_ids]
    steps.residual_layernorm(
        hidden_states, others.T, None, w.embeddings_layernorm_weight, w.embeddings_layernorm_bias, cfg.layer_norm_eps
    )
    if w.embeddings_project_weight is not None:  # ELECTRA: [E, N] -> [C, N]
        hidden_states = w.embeddings_project_weight.T @ hidden_states
        hidden_states += w.embeddings_project_bias[:, None]
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
        ).T  # fmt: skip
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
