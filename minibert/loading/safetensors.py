"""Reading ``model.safetensors``: the header checked by minibert before any tensor is read, tensors as float32.

The header is parsed and checked first (file size, header length, JSON, each entry's dtype × shape against its
byte span, offsets inside the file, tensors that neither overlap nor leave gaps), so a truncated file or a header
that lies is a :class:`~minibert.errors.ModelLoadError` naming the file and the tensor; safetensors' own
``safe_open`` then checks the header a second time. Only safetensors is read: ``pytorch_model.bin`` is never
unpickled.

Memory: the file is memory-mapped read-only and float32 tensors asked for in place are views of the mapping
(read-only arrays), so processes that load the same file share its pages in the page cache. Tensors that are
copied anyway — fp16 / bf16 / fp64 ones (converted to float32), and what the caller asks for with
``in_place=False`` — are read with plain file reads instead, so their mapped pages are never touched. The mapping
lives as long as the arrays do. Like every memory-mapped loader, it assumes the file is not truncated in place
while a model is loaded (replace a file by renaming a new one over it).
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

from ..errors import ModelLoadError
from .files import present, regular_file_size

WEIGHTS_FILE = "model.safetensors"

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


class Checkpoint:
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


_OTHER_FORMATS = ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")


def open_safetensors(directory: Path, prefix: str = "") -> Checkpoint:
    """The checkpoint `directory`/model.safetensors, its header checked; a directory holding only another format
    (pytorch_model.bin…) is refused with how to convert it."""
    path = directory / WEIGHTS_FILE
    if not present(path):
        others = [name for name in _OTHER_FORMATS if present(directory / name)]
        if others:
            raise ModelLoadError(
                f"{path}: file is missing, and {directory} has only {', '.join(others)}; minibert loads safetensors "
                "only and never unpickles pytorch_model.bin. Convert it once with transformers / "
                "sentence-transformers: load it and save_pretrained(dir, safe_serialization=True)"
            )
    return Checkpoint(path, prefix)  # a missing file, a symlink loop or a FIFO is reported by _parse_header
