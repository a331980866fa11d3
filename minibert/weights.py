"""The canonical weight tree, loaded from ``model.safetensors``.

The checkpoint's own names (BERT: ``encoder.layer.N.attention.self.query.weight``…, with or
without a ``bert.`` prefix) are mapped onto one structure that every backend consumes:

- Linear weights are stored pre-transposed as ``[in, out]``, so each projection is ``x @ W + b``.
- Q, K and V are fused into one ``[C, 3C]`` matrix (columns: all of Q, then K, then V).
- Everything is float32 and C-contiguous; fp16/bf16 checkpoints are upcast at load.

Shapes: V = vocab, P = max positions, TT = token types, C = hidden size, F = intermediate size.
Every tensor's shape is checked against the :class:`~minibert.config.ModelConfig`, and every value
must be finite. Only safetensors is read: ``pytorch_model.bin`` is never unpickled.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open

from .config import ModelConfig
from .errors import ModelLoadError

WEIGHTS_FILE = "model.safetensors"
_PREFIXES = ("bert.",)


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
class Weights:
    """The whole encoder: embeddings, their LayerNorm, and the layers in order."""

    word_embeddings: np.ndarray  # [V, C]
    position_embeddings: np.ndarray  # [P, C]
    token_type_embeddings: np.ndarray  # [TT, C]
    embeddings_layernorm_weight: np.ndarray  # [C]
    embeddings_layernorm_bias: np.ndarray  # [C]
    layers: tuple[EncoderLayer, ...]

    def num_parameters(self) -> int:
        """Number of stored values (Q/K/V fusion does not change the count)."""
        arrays = [a for a in vars(self).values() if isinstance(a, np.ndarray)]
        arrays += [a for layer in self.layers for a in vars(layer).values()]
        return sum(a.size for a in arrays)


def _read_bf16(path: Path, name: str) -> np.ndarray:
    """NumPy has no bfloat16: read the raw 16-bit words and widen them to float32 exactly."""
    with path.open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        entry = json.loads(f.read(header_len))[name]
        begin, end = entry["data_offsets"]
        f.seek(8 + header_len + begin)
        raw = np.frombuffer(f.read(end - begin), dtype="<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(entry["shape"])


class _Checkpoint:
    """Reads named tensors from one safetensors file as float32, with errors that name the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = safe_open(str(path), framework="np")
            names = list(self._file.keys())
        except Exception as exc:  # safetensors raises SafetensorError / OSError from Rust
            raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from None
        prefix = next((p for p in _PREFIXES if any(n.startswith(p) for n in names)), "")
        self._names = {n[len(prefix) :]: n for n in names if n.startswith(prefix)}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        stored = self._names.get(name)
        if stored is None:
            raise ModelLoadError(f"{self.path}: tensor '{name}' is missing")
        try:
            if self._file.get_slice(stored).get_dtype() == "BF16":
                tensor = _read_bf16(self.path, stored)
            else:
                tensor = self._file.get_tensor(stored)
        except Exception as exc:
            raise ModelLoadError(f"{self.path}: tensor '{stored}' cannot be read ({exc})") from None
        if tuple(tensor.shape) != shape:
            raise ModelLoadError(
                f"{self.path}: tensor '{stored}' has shape {list(tensor.shape)}, but config.json implies {list(shape)}"
            )
        if tensor.dtype.kind != "f":
            raise ModelLoadError(f"{self.path}: tensor '{stored}' has dtype {tensor.dtype}, expected floats")
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


def _bert_layer(ckpt: _Checkpoint, index: int, cfg: ModelConfig) -> EncoderLayer:
    C, F = cfg.hidden_size, cfg.intermediate_size
    p = f"encoder.layer.{index}"
    q, k, v = (ckpt.linear(f"{p}.attention.self.{n}", C, C) for n in ("query", "key", "value"))
    attention_output = ckpt.linear(f"{p}.attention.output.dense", C, C)
    intermediate = ckpt.linear(f"{p}.intermediate.dense", C, F)
    output = ckpt.linear(f"{p}.output.dense", F, C)
    return EncoderLayer(
        np.concatenate([q[0], k[0], v[0]], axis=1),  # [C, 3C]
        np.concatenate([q[1], k[1], v[1]]),  # [3C]
        *attention_output,
        *ckpt.layernorm(f"{p}.attention.output.LayerNorm", C),
        *intermediate,
        *output,
        *ckpt.layernorm(f"{p}.output.LayerNorm", C),
    )


def load_weights(cfg: ModelConfig) -> Weights:
    """Load ``model.safetensors`` from the config's directory onto the canonical tree."""
    path = cfg.model_dir / WEIGHTS_FILE
    if not path.exists():
        if any((cfg.model_dir / n).exists() for n in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")):
            raise ModelLoadError(
                f"{cfg.model_dir}: has no {WEIGHTS_FILE}; minibert loads safetensors only and never "
                "unpickles pytorch_model.bin. Convert it once with transformers: "
                "AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)"
            )
        raise ModelLoadError(f"{path}: file is missing")
    ckpt = _Checkpoint(path)
    C = cfg.hidden_size
    return Weights(
        ckpt.get("embeddings.word_embeddings.weight", (cfg.vocab_size, C)),
        ckpt.get("embeddings.position_embeddings.weight", (cfg.max_position_embeddings, C)),
        ckpt.get("embeddings.token_type_embeddings.weight", (cfg.type_vocab_size, C)),
        *ckpt.layernorm("embeddings.LayerNorm", C),
        tuple(_bert_layer(ckpt, i, cfg) for i in range(cfg.num_hidden_layers)),
    )
