"""The canonical weight tree, loaded from ``model.safetensors``.

The checkpoint's own names — BERT ``encoder.layer.N.attention.self.query``, DistilBERT
``transformer.layer.N.attention.q_lin``, MPNet ``encoder.layer.N.attention.attn.q``, each with or
without its ``bert.`` / ``distilbert.`` / ``mpnet.`` prefix — are mapped through one name table per
architecture onto one structure that every backend consumes:

- Linear weights are ``[in, out]``, so each projection is ``x @ W + b``. They are the transposed *views* of
  torch's ``[out, in]`` rows as read (Fortran-ordered): BLAS multiplies by a transposed operand as fast as by
  a copied one (measured: equal times for ``[1300, 384] @ [384, 1536]`` either way), and the load skips a
  strided copy of every matrix (35 ms of all-MiniLM-L6-v2's load, under cProfile).
- Q, K and V are fused into one ``[C, 3C]`` matrix (columns: all of Q, then K, then V): their ``[C, C]``
  rows stacked into ``[3C, C]``, viewed transposed.
- Everything is float32; fp16/bf16 checkpoints are upcast at load.

Shapes: V = vocab, P = max positions, TT = token types, C = hidden size, F = intermediate size,
H = heads, NB = relative-position buckets, I / O = a Dense layer's in / out features.
Every tensor's shape is checked against the :class:`~minibert.config.ModelConfig`, and every value
must be finite. Only safetensors is read: ``pytorch_model.bin`` is never unpickled.

Reading: the header is parsed and checked by minibert itself before any tensor is read (file size, header
length, JSON, each entry's dtype × shape against its byte span, offsets inside the file, tensors that neither
overlap nor leave gaps), so a truncated file or a header that lies is a :class:`~minibert.errors.ModelLoadError`
naming the file and the tensor; safetensors' own ``safe_open`` then checks the header a second time.

Memory: the file is memory-mapped read-only, and float32 tensors are used in place — views of the mapping,
read-only arrays — since nothing transforms them (linear weights are transposed views). Their pages are the
page cache's: processes that load the same file share one copy, and the OS may drop and re-read them under
memory pressure. What must change is read with plain file reads instead, so its mapped pages are never
touched: Q, K and V (fused into one matrix), and fp16 / bf16 / fp64 tensors (converted to float32). The
mapping lives as long as the weights do. Like every memory-mapped loader
(safetensors, transformers), it assumes the file is not truncated in place while a model is loaded: replace
a model file by writing a new one and renaming it over the old (as ``minibert download`` does), never by
overwriting it.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from safetensors import safe_open

from .config import DenseConfig, ModelConfig
from .errors import ModelLoadError
from .files import present, regular_file_size

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
# Bytes per element of every whole-byte safetensors dtype, to check each header entry's byte span.
_DTYPE_SIZES = {
    **dict.fromkeys(("BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0"), 1),
    **dict.fromkeys(("U16", "I16", "F16", "BF16"), 2),
    **dict.fromkeys(("U32", "I32", "F32"), 4),
    **dict.fromkeys(("U64", "I64", "F64", "C64"), 8),
}
_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit


@dataclass(frozen=True)
class _Entry:
    """One tensor's header entry, validated: [begin, end) is relative to the data section."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _parse_entry(path: Path, name: str, raw: object, data_size: int) -> _Entry:
    where = f"{path}: header entry of tensor '{name}'"
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{where} is {type(raw).__name__}, expected an object")
    dtype, shape, offsets = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
    if not isinstance(dtype, str):
        raise ModelLoadError(f"{where} has dtype {dtype!r}, expected a safetensors dtype name such as 'F32'")
    if not isinstance(shape, list) or not all(_is_index(d) for d in shape):
        raise ModelLoadError(f"{where} has shape {shape!r}, expected a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_index(o) for o in offsets)):
        raise ModelLoadError(f"{where} has data_offsets {offsets!r}, expected [begin, end]")
    begin, end = offsets
    if begin > end:
        raise ModelLoadError(f"{where} has data_offsets [{begin}, {end}]: begin is after end")
    if end > data_size:
        raise ModelLoadError(
            f"{where} has data_offsets [{begin}, {end}], past the end of the data section ({data_size} bytes): "
            "the file is truncated or its header is wrong"
        )
    itemsize = _DTYPE_SIZES.get(dtype)  # a dtype newer than this table is only refused if it has to be read
    if itemsize is not None and math.prod(shape) * itemsize != end - begin:
        raise ModelLoadError(
            f"{where}: dtype {dtype} × shape {shape} is {math.prod(shape) * itemsize} bytes, but its data_offsets "
            f"[{begin}, {end}] span {end - begin} bytes: the header's dtype, shape or offsets are wrong"
        )
    return _Entry(dtype, tuple(shape), begin, end)


def _parse_header(path: Path) -> tuple[int, dict[str, _Entry]]:
    """(byte offset of the data section, the validated tensor entries) of a safetensors file.

    Checks what the format promises: an 8-byte little-endian header length that fits the file, a JSON object
    header, and entries whose dtype × shape match their byte span and that tile the data section exactly (no
    overlap, no gap, nothing past the end). Raises ModelLoadError naming the file (and the tensor)."""
    size = regular_file_size(path)
    if size == 0:
        raise ModelLoadError(f"{path}: file is empty (0 bytes), expected a safetensors file")
    bad = f"{path}: not a readable safetensors file"
    if size < 8:
        raise ModelLoadError(f"{bad}: it has {size} bytes, fewer than the 8-byte header length (truncated)")
    try:
        with path.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8 or header_len > _MAX_HEADER_BYTES:
                raise ModelLoadError(
                    f"{bad}: its header length is {header_len} bytes, but {size - 8} bytes follow it "
                    "(the file is truncated, or it is not safetensors)"
                )
            raw = f.read(header_len)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelLoadError(f"{bad}: its {header_len}-byte header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{bad}: its header is a JSON {type(header).__name__}, expected an object")
    data_start = 8 + header_len
    entries = {
        name: _parse_entry(path, name, entry, size - data_start)
        for name, entry in header.items()
        if name != "__metadata__"
    }
    end, previous = 0, None
    for name, entry in sorted(entries.items(), key=lambda item: (item[1].begin, item[1].end)):
        if entry.begin < end:
            raise ModelLoadError(
                f"{path}: tensors '{previous}' and '{name}' overlap (data_offsets [{entries[previous].begin}, "
                f"{end}] and [{entry.begin}, {entry.end}]): the header is wrong"
            )
        if entry.begin > end:
            raise ModelLoadError(
                f"{path}: bytes [{end}, {entry.begin}) of the data section belong to no tensor (before '{name}'): "
                "the header is wrong"
            )
        end, previous = entry.end, name
    if end != size - data_start:
        raise ModelLoadError(
            f"{path}: the tensors end at byte {end} of the data section, but it has {size - data_start} bytes "
            "(trailing bytes after the last tensor): the header is wrong"
        )
    return data_start, entries


class _Checkpoint:
    """Reads named tensors from one safetensors file as float32, with errors that name the file."""

    def __init__(self, path: Path, prefix: str = "") -> None:
        self.path = path
        self._data_start, self._entries = _parse_header(path)
        try:
            safe_open(str(path), framework="np").keys()  # a second opinion on the header: safetensors' own
        except Exception as exc:  # safetensors raises SafetensorError / OSError from Rust
            raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from None
        names = list(self._entries)
        # Checkpoints saved from a task model (BertForMaskedLM…) carry the base model's prefix: drop it.
        if not (prefix and any(n.startswith(prefix) for n in names)):
            prefix = ""
        self._names = {n[len(prefix) :]: n for n in names if n.startswith(prefix)}

    @cached_property
    def _mapped(self) -> np.ndarray:
        """The whole file as read-only bytes, memory-mapped once (pages become resident only when touched)."""
        try:
            mapped = np.memmap(self.path, dtype=np.uint8, mode="r")
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{self.path}: cannot be memory-mapped ({exc})") from None
        return np.asarray(mapped)  # a plain ndarray view: the mapping stays open while any view of it lives

    def _read(self, stored: str, in_place: bool) -> np.ndarray:
        """One tensor in its stored dtype (bf16 as raw 16-bit words): a read-only view of the mapped file when
        `in_place` and it is aligned float32, else read with plain file reads into a fresh array (so the pages of
        a tensor that is copied anyway never become resident through the map)."""
        entry = self._entries[stored]
        dtype = _FLOAT_DTYPES.get(entry.dtype)
        if dtype is None:
            raise ModelLoadError(
                f"{self.path}: tensor '{stored}' has dtype {entry.dtype}; minibert reads float weights only "
                f"({', '.join(_FLOAT_DTYPES)})"
            )
        begin, end = self._data_start + entry.begin, self._data_start + entry.end
        if in_place and entry.dtype == "F32" and begin % 4 == 0:
            raw = self._mapped[begin:end]
        else:
            with self.path.open("rb") as f:
                f.seek(begin)
                raw = np.fromfile(f, dtype=np.uint8, count=end - begin)
        if raw.size != end - begin:  # the file shrank after its header was checked
            raise ModelLoadError(f"{self.path}: tensor '{stored}' is truncated ({raw.size} of {end - begin} bytes)")
        tensor = raw.view(dtype)
        if entry.dtype == "BF16":  # NumPy has no bfloat16: widen the 16-bit words to float32 exactly
            tensor = (tensor.astype(np.uint32) << 16).view(np.float32)
        return tensor.reshape(entry.shape)

    def get(self, name: str, shape: tuple[int, ...], in_place: bool = True) -> np.ndarray:
        """The tensor `name` as float32 of `shape`, checked finite; `in_place=False` when the caller copies it."""
        stored = self._names.get(name)
        if stored is None:
            raise ModelLoadError(f"{self.path}: tensor '{name}' is missing")
        try:
            tensor = self._read(stored, in_place)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"{self.path}: tensor '{stored}' cannot be read ({exc})") from None
        if tuple(tensor.shape) != shape:
            raise ModelLoadError(
                f"{self.path}: tensor '{stored}' has shape {list(tensor.shape)}, but the config implies {list(shape)}"
            )
        with np.errstate(over="ignore"):  # F64 values beyond float32's range become Inf, reported below
            tensor = np.ascontiguousarray(tensor, dtype=np.float32)  # F32: the mapped view itself, no copy
        finite = np.isfinite(tensor)
        if not finite.all():
            nan, inf = int(np.isnan(tensor).sum()), int(np.isinf(tensor).sum())
            first = [int(i) for i in np.unravel_index(int(np.argmin(finite)), tensor.shape)]
            raise ModelLoadError(
                f"{self.path}: tensor '{stored}' contains {nan} NaN and {inf} Inf values as float32 "
                f"(first at index {first}); the checkpoint is corrupt"
            )
        return tensor

    def linear(self, name: str, n_in: int, n_out: int, in_place: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """A torch Linear (weight [out, in]) as (W [in, out] — a transposed view, no copy —, b [out])."""
        return self.get(f"{name}.weight", (n_out, n_in), in_place).T, self.get(f"{name}.bias", (n_out,), in_place)

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


_OTHER_FORMATS = ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")


def _open_safetensors(directory: Path, prefix: str = "") -> _Checkpoint:
    path = directory / WEIGHTS_FILE
    if not present(path):
        others = [name for name in _OTHER_FORMATS if present(directory / name)]
        if others:
            raise ModelLoadError(
                f"{path}: file is missing, and {directory} has only {', '.join(others)}; minibert loads safetensors "
                "only and never unpickles pytorch_model.bin. Convert it once with transformers / "
                "sentence-transformers: load it and save_pretrained(dir, safe_serialization=True)"
            )
    return _Checkpoint(path, prefix)  # a missing file, a symlink loop or a FIFO is reported by _parse_header


def _dense_layer(dense: DenseConfig) -> DenseLayer:
    ckpt = _open_safetensors(dense.path)
    torch_shape = (dense.out_features, dense.in_features)  # [O, I]
    weight = ckpt.get("linear.weight", torch_shape).T  # [I, O], a view
    bias = ckpt.get("linear.bias", (dense.out_features,)) if dense.bias else None
    projected = dense.use_residual and dense.in_features != dense.out_features
    residual = ckpt.get("residual.weight", torch_shape).T if projected else None
    return DenseLayer(weight=weight, bias=bias, residual_weight=residual)


def load_weights(cfg: ModelConfig) -> Weights:
    """Load ``model.safetensors`` (and each Dense module's) onto the canonical tree."""
    names = _NAMES[cfg.model_type]
    ckpt = _open_safetensors(cfg.model_dir, names.prefix)
    C = cfg.hidden_size
    embeddings_layernorm_weight, embeddings_layernorm_bias = ckpt.layernorm(names.embeddings_layernorm, C)
    return Weights(
        word_embeddings=ckpt.get(f"{names.word_embeddings}.weight", (cfg.vocab_size, C)),
        position_embeddings=ckpt.get(f"{names.position_embeddings}.weight", (cfg.max_position_embeddings, C)),
        token_type_embeddings=(
            ckpt.get(f"{names.token_type_embeddings}.weight", (cfg.type_vocab_size, C)) if cfg.type_vocab_size else None
        ),
        embeddings_layernorm_weight=embeddings_layernorm_weight,
        embeddings_layernorm_bias=embeddings_layernorm_bias,
        layers=tuple(_encoder_layer(ckpt, names, i, cfg) for i in range(cfg.num_hidden_layers)),
        relative_attention_bias=(
            ckpt.get(
                f"{names.relative_attention_bias}.weight", (cfg.relative_attention_num_buckets, cfg.num_attention_heads)
            )
            if cfg.relative_attention_num_buckets
            else None
        ),
        dense=tuple(_dense_layer(dense) for dense in cfg.dense_layers),
    )
