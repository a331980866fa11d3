"""The canonical weight tree, loaded from ``model.safetensors`` (read by :mod:`.safetensors`).

The checkpoint's own names — BERT and ELECTRA ``encoder.layer.N.attention.self.query``, DistilBERT
``transformer.layer.N.attention.q_lin``, MPNet ``encoder.layer.N.attention.attn.q``, each with or
without its ``bert.`` / ``electra.`` / ``distilbert.`` / ``mpnet.`` prefix — are mapped through one name table per
architecture onto one structure that every backend consumes (a cross-encoder's head, named outside the prefix, as
:class:`HeadWeights`):

- Linear weights are ``[in, out]``, so each projection is ``x @ W + b``. They are the transposed *views* of
  torch's ``[out, in]`` rows as read (Fortran-ordered), not copies (ARCHITECTURE.md, "Weights", says why).
- Q, K and V are fused into one ``[C, 3C]`` matrix (columns: all of Q, then K, then V): their ``[C, C]``
  rows stacked into ``[3C, C]``, viewed transposed. They are the only float32 tensors copied at load.
- Everything is float32; fp16/bf16 checkpoints are upcast at load.

Every tensor's shape is checked against the :class:`~minibert.loading.config.ModelConfig`, and every value
must be finite.

Shapes: V = vocab, P = max positions, TT = token types, C = hidden size, E = embedding size (C but for ELECTRA),
F = intermediate size,
H = heads, NB = relative-position buckets, I / O = a Dense layer's in / out features.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .config import DenseConfig, ModelConfig
from .safetensors import Checkpoint, open_safetensors


@dataclass(frozen=True)
class EncoderLayer:
    """One transformer layer, HF names shortened; all linear weights are [in, out]."""

    qkv_weight: np.ndarray  # [C, 3C]
    qkv_bias: np.ndarray  # [3C]
    attention_output_weight: np.ndarray  # [C, C]
    attention_output_bias: np.ndarray  # [C]
    attention_layernorm_weight: np.ndarray  # [C]
    attention_layernorm_bias: np.ndarray  # [C]
    intermediate_weight: np.ndarray  # [C, F]
    intermediate_bias: np.ndarray  # [F]
    output_weight: np.ndarray  # [F, C]
    output_bias: np.ndarray  # [C]
    output_layernorm_weight: np.ndarray  # [C]
    output_layernorm_bias: np.ndarray  # [C]


@dataclass(frozen=True)
class DenseLayer:
    """A sentence-transformers Dense module, weights [in, out] like every projection here."""

    weight: np.ndarray  # [I, O]
    bias: np.ndarray | None  # [O]
    residual_weight: np.ndarray | None  # [I, O] when use_residual and I != O


@dataclass(frozen=True)
class HeadWeights:
    """A cross-encoder's head on [CLS]: dense [C, C] → activation → out [C, labels] (BERT: the pooler's dense, then
    the classifier; ELECTRA: classifier.dense, then classifier.out_proj)."""

    dense_weight: np.ndarray  # [C, C]
    dense_bias: np.ndarray  # [C]
    out_weight: np.ndarray  # [C, labels]
    out_bias: np.ndarray  # [labels]


@dataclass(frozen=True)
class Weights:
    """The whole encoder: embeddings, their LayerNorm, and the layers in order (then a cross-encoder's head)."""

    word_embeddings: np.ndarray  # [V, E]; E = C but for ELECTRA's narrower embeddings
    position_embeddings: np.ndarray  # [P, E]
    token_type_embeddings: np.ndarray | None  # [TT, E]; None without token types (DistilBERT, MPNet)
    embeddings_layernorm_weight: np.ndarray  # [E]
    embeddings_layernorm_bias: np.ndarray  # [E]
    embeddings_project_weight: np.ndarray | None  # [E, C] when E ≠ C (ELECTRA's embeddings_project)
    embeddings_project_bias: np.ndarray | None  # [C]
    layers: tuple[EncoderLayer, ...]
    relative_attention_bias: np.ndarray | None  # [NB, H], shared by all layers (MPNet)
    dense: tuple[DenseLayer, ...]  # sentence-transformers Dense modules after pooling
    head: HeadWeights | None  # a cross-encoder's classification head

    def num_parameters(self) -> int:
        """Number of stored values (Q/K/V fusion does not change the count)."""
        groups = [vars(self).values(), *(vars(layer).values() for layer in self.layers)]
        groups += [vars(dense).values() for dense in self.dense]
        groups += [vars(self.head).values()] if self.head is not None else []
        return sum(a.size for group in groups for a in group if isinstance(a, np.ndarray))


@dataclass(frozen=True)
class _Names:
    """One architecture's tensor names (without ``.weight`` / ``.bias``), ``{i}`` = layer index."""

    prefix: str
    word_embeddings: str
    position_embeddings: str
    token_type_embeddings: str | None
    embeddings_layernorm: str
    query: str
    key: str
    value: str
    attention_output: str
    attention_layernorm: str
    intermediate: str
    output: str
    output_layernorm: str
    relative_attention_bias: str | None


_NAMES = {
    "bert": _Names(
        "bert.",
        "embeddings.word_embeddings",
        "embeddings.position_embeddings",
        "embeddings.token_type_embeddings",
        "embeddings.LayerNorm",
        "encoder.layer.{i}.attention.self.query",
        "encoder.layer.{i}.attention.self.key",
        "encoder.layer.{i}.attention.self.value",
        "encoder.layer.{i}.attention.output.dense",
        "encoder.layer.{i}.attention.output.LayerNorm",
        "encoder.layer.{i}.intermediate.dense",
        "encoder.layer.{i}.output.dense",
        "encoder.layer.{i}.output.LayerNorm",
        None,
    ),
    "distilbert": _Names(
        "distilbert.",
        "embeddings.word_embeddings",
        "embeddings.position_embeddings",
        None,
        "embeddings.LayerNorm",
        "transformer.layer.{i}.attention.q_lin",
        "transformer.layer.{i}.attention.k_lin",
        "transformer.layer.{i}.attention.v_lin",
        "transformer.layer.{i}.attention.out_lin",
        "transformer.layer.{i}.sa_layer_norm",
        "transformer.layer.{i}.ffn.lin1",
        "transformer.layer.{i}.ffn.lin2",
        "transformer.layer.{i}.output_layer_norm",
        None,
    ),
    "mpnet": _Names(
        "mpnet.",
        "embeddings.word_embeddings",
        "embeddings.position_embeddings",
        None,
        "embeddings.LayerNorm",
        "encoder.layer.{i}.attention.attn.q",
        "encoder.layer.{i}.attention.attn.k",
        "encoder.layer.{i}.attention.attn.v",
        "encoder.layer.{i}.attention.attn.o",
        "encoder.layer.{i}.attention.LayerNorm",
        "encoder.layer.{i}.intermediate.dense",
        "encoder.layer.{i}.output.dense",
        "encoder.layer.{i}.output.LayerNorm",
        "encoder.relative_attention_bias",
    ),
}


def _encoder_layer(ckpt: Checkpoint, names: _Names, i: int, cfg: ModelConfig) -> EncoderLayer:
    C, F = cfg.hidden_size, cfg.intermediate_size
    q, k, v = (ckpt.linear(n.format(i=i), C, C, in_place=False) for n in (names.query, names.key, names.value))
    attention_output_weight, attention_output_bias = ckpt.linear(names.attention_output.format(i=i), C, C)
    attention_layernorm_weight, attention_layernorm_bias = ckpt.layernorm(names.attention_layernorm.format(i=i), C)
    intermediate_weight, intermediate_bias = ckpt.linear(names.intermediate.format(i=i), C, F)
    output_weight, output_bias = ckpt.linear(names.output.format(i=i), F, C)
    output_layernorm_weight, output_layernorm_bias = ckpt.layernorm(names.output_layernorm.format(i=i), C)
    return EncoderLayer(
        qkv_weight=np.concatenate([q[0].T, k[0].T, v[0].T]).T,  # 3 × [C, C] rows stacked as [3C, C], viewed [C, 3C]
        qkv_bias=np.concatenate([q[1], k[1], v[1]]),  # [3C]
        attention_output_weight=attention_output_weight,
        attention_output_bias=attention_output_bias,
        attention_layernorm_weight=attention_layernorm_weight,
        attention_layernorm_bias=attention_layernorm_bias,
        intermediate_weight=intermediate_weight,
        intermediate_bias=intermediate_bias,
        output_weight=output_weight,
        output_bias=output_bias,
        output_layernorm_weight=output_layernorm_weight,
        output_layernorm_bias=output_layernorm_bias,
    )


def _dense_layer(dense: DenseConfig) -> DenseLayer:
    ckpt = open_safetensors(dense.path)
    torch_shape = (dense.out_features, dense.in_features)  # [O, I]
    weight = ckpt.get("linear.weight", torch_shape).T  # [I, O], a view
    bias = ckpt.get("linear.bias", (dense.out_features,)) if dense.bias else None
    projected = dense.use_residual and dense.in_features != dense.out_features
    residual = ckpt.get("residual.weight", torch_shape).T if projected else None
    return DenseLayer(weight=weight, bias=bias, residual_weight=residual)


_NAMES["electra"] = dataclasses.replace(_NAMES["bert"], prefix="electra.")  # BERT's encoder, ELECTRA's prefix

# A head's tensors by their full names (outside the base model's prefix): (dense, out) per architecture.
_HEAD_NAMES = {
    "BertForSequenceClassification": ("bert.pooler.dense", "classifier"),
    "ElectraForSequenceClassification": ("classifier.dense", "classifier.out_proj"),
}


def _head(cfg: ModelConfig) -> HeadWeights | None:
    if cfg.head is None:
        return None
    ckpt = open_safetensors(cfg.model_dir)  # every name as stored
    dense, out = _HEAD_NAMES[cfg.head.architecture]
    C = cfg.hidden_size
    dense_weight, dense_bias = ckpt.linear(dense, C, C)
    out_weight, out_bias = ckpt.linear(out, C, cfg.head.num_labels)
    return HeadWeights(dense_weight, dense_bias, out_weight, out_bias)


def load_weights(cfg: ModelConfig) -> Weights:
    """Load ``model.safetensors`` (and each Dense module's) onto the canonical tree."""
    names = _NAMES[cfg.model_type]
    ckpt = open_safetensors(cfg.model_dir, names.prefix)
    C, E = cfg.hidden_size, cfg.embedding_size
    embeddings_layernorm_weight, embeddings_layernorm_bias = ckpt.layernorm(names.embeddings_layernorm, E)
    project = ckpt.linear("embeddings_project", E, C) if E != C else (None, None)
    return Weights(
        word_embeddings=ckpt.get(f"{names.word_embeddings}.weight", (cfg.vocab_size, E)),
        position_embeddings=ckpt.get(f"{names.position_embeddings}.weight", (cfg.max_position_embeddings, E)),
        token_type_embeddings=(
            ckpt.get(f"{names.token_type_embeddings}.weight", (cfg.type_vocab_size, E)) if cfg.type_vocab_size else None
        ),
        embeddings_layernorm_weight=embeddings_layernorm_weight,
        embeddings_layernorm_bias=embeddings_layernorm_bias,
        embeddings_project_weight=project[0],
        embeddings_project_bias=project[1],
        layers=tuple(_encoder_layer(ckpt, names, i, cfg) for i in range(cfg.num_hidden_layers)),
        relative_attention_bias=(
            ckpt.get(
                f"{names.relative_attention_bias}.weight", (cfg.relative_attention_num_buckets, cfg.num_attention_heads)
            )
            if cfg.relative_attention_num_buckets
            else None
        ),
        dense=tuple(_dense_layer(dense) for dense in cfg.dense_layers),
        head=_head(cfg),
    )
