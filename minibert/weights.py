"""The canonical weight tree, loaded from ``model.safetensors``.

The checkpoint's own names — BERT ``encoder.layer.N.attention.self.query``, DistilBERT
``transformer.layer.N.attention.q_lin``, MPNet ``encoder.layer.N.attention.attn.q``, each with or
without its ``bert.`` / ``distilbert.`` / ``mpnet.`` prefix — are mapped through one name table per
architecture onto one structure that every backend consumes:

- Linear weights are stored pre-transposed as ``[in, out]``, so each projection is ``x @ W + b``.
- Q, K and V are fused into one ``[C, 3C]`` matrix (columns: all of Q, then K, then V).
- Everything is float32 and C-contiguous; fp16/bf16 checkpoints are upcast at load.

Shapes: V = vocab, P = max positions, TT = token types, C = hidden size, F = intermediate size,
H = heads, NB = relative-position buckets, I / O = a Dense layer's in / out features.
Every tensor's shape is checked against the :class:`~minibert.config.ModelConfig`, and every value
must be finite. Only safetensors is read: ``pytorch_model.bin`` is never unpickled.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from safetensors import safe_open

from .config import DenseConfig, ModelConfig
from .errors import ModelLoadError

WEIGHTS_FILE = "model.safetensors"


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
class Weights:
    """The whole encoder: embeddings, their LayerNorm, and the layers in order."""

    word_embeddings: np.ndarray  # [V, C]
    position_embeddings: np.ndarray  # [P, C]
    token_type_embeddings: np.ndarray | None  # [TT, C]; None without token types (DistilBERT, MPNet)
    embeddings_layernorm_weight: np.ndarray  # [C]
    embeddings_layernorm_bias: np.ndarray  # [C]
    layers: tuple[EncoderLayer, ...]
    relative_attention_bias: np.ndarray | None  # [NB, H], shared by all layers (MPNet)
    dense: tuple[DenseLayer, ...]  # sentence-transformers Dense modules after pooling

    def num_parameters(self) -> int:
        """Number of stored values (Q/K/V fusion does not change the count)."""
        groups = [vars(self).values(), *(vars(layer).values() for layer in self.layers)]
        groups += [vars(dense).values() for dense in self.dense]
        return sum(a.size for group in groups for a in group if isinstance(a, np.ndarray))


# safetensors dtype -> how its bytes read in NumPy (BF16 as raw 16-bit words, widened after the read)
_FLOAT_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}


class _Checkpoint:
    """Reads named tensors from one safetensors file as float32, with errors that name the file."""

    def __init__(self, path: Path, prefix: str = "") -> None:
        self.path = path
        try:
            names = list(safe_open(str(path), framework="np").keys())  # validates the header against the file
        except Exception as exc:  # safetensors raises SafetensorError / OSError from Rust
            raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from None
        # Checkpoints saved from a task model (BertForMaskedLM…) carry the base model's prefix: drop it.
        if not (prefix and any(n.startswith(prefix) for n in names)):
            prefix = ""
        self._names = {n[len(prefix) :]: n for n in names if n.startswith(prefix)}

    @cached_property
    def _header(self) -> tuple[int, dict]:
        """(byte offset of the data section, the header's tensor entries), read once."""
        with self.path.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            return 8 + header_len, json.loads(f.read(header_len))

    def _read(self, stored: str) -> np.ndarray:
        """One tensor's bytes, read with plain file reads into a fresh array (never through a memory map: the
        mapped pages of the whole file would stay resident until the load ends, doubling peak RSS)."""
        data_start, entries = self._header
        entry = entries[stored]
        dtype = _FLOAT_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ModelLoadError(f"{self.path}: tensor '{stored}' has dtype {entry['dtype']}, expected floats")
        begin, end = entry["data_offsets"]
        count = (end - begin) // np.dtype(dtype).itemsize
        with self.path.open("rb") as f:
            f.seek(data_start + begin)
            raw = np.fromfile(f, dtype=dtype, count=count)
        if raw.size != count or count != int(np.prod(entry["shape"], dtype=np.int64)):
            raise ModelLoadError(f"{self.path}: tensor '{stored}' is truncated or its header entry is inconsistent")
        if entry["dtype"] == "BF16":  # NumPy has no bfloat16: widen the 16-bit words to float32 exactly
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        return raw.reshape(entry["shape"])

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        stored = self._names.get(name)
        if stored is None:
            raise ModelLoadError(f"{self.path}: tensor '{name}' is missing")
        try:
            tensor = self._read(stored)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"{self.path}: tensor '{stored}' cannot be read ({exc})") from None
        if tuple(tensor.shape) != shape:
            raise ModelLoadError(
                f"{self.path}: tensor '{stored}' has shape {list(tensor.shape)}, but the config implies {list(shape)}"
            )
        tensor = np.ascontiguousarray(tensor, dtype=np.float32)
        if not np.isfinite(tensor).all():
            raise ModelLoadError(f"{self.path}: tensor '{stored}' contains NaN or Inf values")
        return tensor

    def linear(self, name: str, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        """A torch Linear (weight [out, in]) as (W [in, out], b [out])."""
        weight = self.get(f"{name}.weight", (n_out, n_in))
        return np.ascontiguousarray(weight.T), self.get(f"{name}.bias", (n_out,))

    def layernorm(self, name: str, width: int) -> tuple[np.ndarray, np.ndarray]:
        return self.get(f"{name}.weight", (width,)), self.get(f"{name}.bias", (width,))


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


def _encoder_layer(ckpt: _Checkpoint, names: _Names, i: int, cfg: ModelConfig) -> EncoderLayer:
    C, F = cfg.hidden_size, cfg.intermediate_size
    q, k, v = (ckpt.linear(n.format(i=i), C, C) for n in (names.query, names.key, names.value))
    return EncoderLayer(
        np.concatenate([q[0], k[0], v[0]], axis=1),  # [C, 3C]
        np.concatenate([q[1], k[1], v[1]]),  # [3C]
        *ckpt.linear(names.attention_output.format(i=i), C, C),
        *ckpt.layernorm(names.attention_layernorm.format(i=i), C),
        *ckpt.linear(names.intermediate.format(i=i), C, F),
        *ckpt.linear(names.output.format(i=i), F, C),
        *ckpt.layernorm(names.output_layernorm.format(i=i), C),
    )


def _open_safetensors(directory: Path, prefix: str = "") -> _Checkpoint:
    path = directory / WEIGHTS_FILE
    if not path.exists():
        if any((directory / n).exists() for n in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")):
            raise ModelLoadError(
                f"{directory}: has no {WEIGHTS_FILE}; minibert loads safetensors only and never "
                "unpickles pytorch_model.bin. Convert it once with transformers / sentence-transformers: "
                "load it and save_pretrained(dir, safe_serialization=True)"
            )
        raise ModelLoadError(f"{path}: file is missing")
    return _Checkpoint(path, prefix)


def _dense_layer(dense: DenseConfig) -> DenseLayer:
    ckpt = _open_safetensors(dense.path)
    torch_shape = (dense.out_features, dense.in_features)  # [O, I]
    weight = np.ascontiguousarray(ckpt.get("linear.weight", torch_shape).T)  # [I, O]
    bias = ckpt.get("linear.bias", (dense.out_features,)) if dense.bias else None
    projected = dense.use_residual and dense.in_features != dense.out_features
    residual = np.ascontiguousarray(ckpt.get("residual.weight", torch_shape).T) if projected else None
    return DenseLayer(weight, bias, residual)


def load_weights(cfg: ModelConfig) -> Weights:
    """Load ``model.safetensors`` (and each Dense module's) onto the canonical tree."""
    names = _NAMES[cfg.model_type]
    ckpt = _open_safetensors(cfg.model_dir, names.prefix)
    C = cfg.hidden_size
    token_types = cfg.type_vocab_size > 0
    return Weights(
        ckpt.get(f"{names.word_embeddings}.weight", (cfg.vocab_size, C)),
        ckpt.get(f"{names.position_embeddings}.weight", (cfg.max_position_embeddings, C)),
        ckpt.get(f"{names.token_type_embeddings}.weight", (cfg.type_vocab_size, C)) if token_types else None,
        *ckpt.layernorm(names.embeddings_layernorm, C),
        tuple(_encoder_layer(ckpt, names, i, cfg) for i in range(cfg.num_hidden_layers)),
        (
            ckpt.get(
                f"{names.relative_attention_bias}.weight", (cfg.relative_attention_num_buckets, cfg.num_attention_heads)
            )
            if cfg.relative_attention_num_buckets
            else None
        ),
        tuple(_dense_layer(dense) for dense in cfg.dense_layers),
    )
