"""The BERT encoder forward pass in pure NumPy, read top to bottom like the paper.

Follows HF ``modeling_bert.py`` (and keeps its names for intermediate values: ``attention_scores``,
``attention_probs``, ``context_layer``…) in eval mode: no dropout, post-LayerNorm residual blocks, exact erf GELU
(:mod:`.activations`). DistilBERT (``modeling_distilbert.py``) is the same math without token types; MPNet
(``modeling_mpnet.py``) adds RoBERTa-style position ids and a relative-position bias shared by all layers — both
switched on by config flags, not by architecture name. Differs in layout only: the weights come from the canonical
tree in :mod:`minibert.loading.weights` (every linear weight ``[in, out]``; Q, K, V fused into one ``[C, 3C]``
matrix), so every projection is ``x @ W + b``. float32 throughout.

This module is the readable reference: the fast forward (:mod:`.cpu`) and the tests are checked against it, and
nothing but the tests imports it.

Shape letters: B = batch, T = sequence length (padded), C = hidden size, H = attention heads,
D = head size (C / H), F = intermediate (FFN) size, NB = relative-position buckets.
"""

from __future__ import annotations

import math

import numpy as np

from ..loading.config import ModelConfig
from ..loading.weights import EncoderLayer, Weights
from .activations import gelu, relu
from .positions import position_bias


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis (biased variance, as torch): [..., C] -> [..., C]."""
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [..., 1]
    return (x - mean) / np.sqrt(variance + np.float32(eps)) * weight + bias


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row max for stability."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {"gelu": gelu, "relu": relu}


def position_ids(input_ids: np.ndarray, padding_idx: int | None) -> np.ndarray:
    """Absolute positions 0..T-1, or RoBERTa-style (MPNet): real tokens count from padding_idx + 1,
    tokens equal to padding_idx get padding_idx. [B, T] -> [B, T] (or [T] for absolute)."""
    if padding_idx is None:
        return np.arange(input_ids.shape[1])  # [T]
    real = input_ids != padding_idx  # [B, T]
    return np.cumsum(real, axis=1) * real + padding_idx  # [B, T]


def embeddings(input_ids: np.ndarray, token_type_ids: np.ndarray, w: Weights, cfg: ModelConfig) -> np.ndarray:
    """word + position (+ token-type) embeddings, then LayerNorm (then ELECTRA's projection to the encoder's width):
    [B, T] ids -> [B, T, C]."""
    inputs_embeds = w.word_embeddings[input_ids]  # [B, T, E]
    position_embeddings = w.position_embeddings[position_ids(input_ids, cfg.position_padding_idx)]  # [(B,) T, E]
    hidden_states = inputs_embeds + position_embeddings  # [B, T, E]
    if w.token_type_embeddings is not None:
        hidden_states = hidden_states + w.token_type_embeddings[token_type_ids]  # + [B, T, E]
    hidden_states = layer_norm(
        hidden_states, w.embeddings_layernorm_weight, w.embeddings_layernorm_bias, cfg.layer_norm_eps
    )  # [B, T, E]
    if w.embeddings_project_weight is None:
        return hidden_states
    return hidden_states @ w.embeddings_project_weight + w.embeddings_project_bias  # [B, T, C]


def padding_bias(attention_mask: np.ndarray) -> np.ndarray:
    """HF's extended mask: 0 where a key is real, float32 min where it is padding: [B, T] -> [B, 1, 1, T]."""
    blocked = 1.0 - attention_mask[:, None, None, :].astype(np.float32)  # [B, 1, 1, T]
    return blocked * np.finfo(np.float32).min


def attention_bias(attention_mask: np.ndarray, w: Weights) -> np.ndarray:
    """Everything added to the scaled scores: padding mask (+ MPNet's position bias): [B, 1 or H, T, T]."""
    bias = padding_bias(attention_mask)  # [B, 1, 1, T]
    if w.relative_attention_bias is not None:
        bias = bias + position_bias(attention_mask.shape[1], w.relative_attention_bias)  # [B, H, T, T]
    return bias


def self_attention(hidden_states: np.ndarray, bias: np.ndarray, layer: EncoderLayer, H: int) -> np.ndarray:
    """Multi-head scaled dot-product self-attention, before the output projection: [B, T, C] -> [B, T, C]."""
    B, T, C = hidden_states.shape
    D = C // H
    mixed_qkv = hidden_states @ layer.qkv_weight + layer.qkv_bias  # [B, T, C] -> [B, T, 3C]
    query, key, value = mixed_qkv.reshape(B, T, 3, H, D).transpose(2, 0, 3, 1, 4)  # 3 × [B, H, T, D]
    attention_scores = query @ key.transpose(0, 1, 3, 2)  # [B, H, T, D] @ [B, H, D, T] -> [B, H, T, T]
    attention_scores = attention_scores / np.float32(math.sqrt(D)) + bias  # + [B, 1 or H, 1 or T, T]
    attention_probs = softmax(attention_scores)  # [B, H, T, T]
    context_layer = attention_probs @ value  # [B, H, T, T] @ [B, H, T, D] -> [B, H, T, D]
    return context_layer.transpose(0, 2, 1, 3).reshape(B, T, C)  # [B, T, H, D] -> [B, T, C]


def encoder_layer(hidden_states: np.ndarray, bias: np.ndarray, layer: EncoderLayer, cfg: ModelConfig) -> np.ndarray:
    """One post-LN transformer block: [B, T, C] -> [B, T, C]."""
    eps = cfg.layer_norm_eps
    context_layer = self_attention(hidden_states, bias, layer, cfg.num_attention_heads)  # [B, T, C]
    attention_output = context_layer @ layer.attention_output_weight + layer.attention_output_bias  # [B, T, C]
    attention_output = layer_norm(
        attention_output + hidden_states, layer.attention_layernorm_weight, layer.attention_layernorm_bias, eps
    )  # [B, T, C]
    activation = ACTIVATIONS[cfg.hidden_act]
    intermediate_output = activation(
        attention_output @ layer.intermediate_weight + layer.intermediate_bias
    )  # [B, T, F]
    layer_output = intermediate_output @ layer.output_weight + layer.output_bias  # [B, T, F] -> [B, T, C]
    return layer_norm(
        layer_output + attention_output, layer.output_layernorm_weight, layer.output_layernorm_bias, eps
    )  # [B, T, C]


def forward(
    input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray, w: Weights, cfg: ModelConfig
) -> np.ndarray:
    """The encoder: ids, mask, token types [B, T] -> last_hidden_state [B, T, C] (float32)."""
    hidden_states = embeddings(input_ids, token_type_ids, w, cfg)  # [B, T, C]
    bias = attention_bias(attention_mask, w)  # [B, 1 or H, T, T]
    for layer in w.layers:
        hidden_states = encoder_layer(hidden_states, bias, layer, cfg)  # [B, T, C]
    return hidden_states
