"""Embedding quantization: float embeddings -> int8 / uint8 scalar codes or packed sign bits.

Follows ``sentence_transformers.util.quantization.quantize_embeddings`` (sentence-transformers 6.2) and is bitwise
equal to it on every input both accept (the tests compare them live):

* ``"int8"`` / ``"uint8"``: each dimension's range [min, max] — from ``ranges`` ([2, d]), else from
  ``calibration_embeddings``, else from the embeddings themselves — is cut into 255 equal steps (in float32, a zero
  step counting as 1); a value's code is the number of whole steps it lies above the minimum, clipped to 0 … 255,
  minus 128 for int8.
* ``"ubinary"``: the sign bits (x > 0), packed 8 to a byte, first dimension in the highest bit (``np.packbits``);
  the last byte is padded with zero bits when d is not a multiple of 8. ``"binary"``: the same bytes minus 128, int8.
* ``"float32"``: a float32 copy.

A list of 2-D arrays (one [L, d] matrix per text, as ``encode(..., output_value="token_embeddings")`` gives) is
quantized matrix by matrix with one set of ranges for all of them.

Where it differs: bad input is an :class:`~minibert.errors.InputError` / :class:`~minibert.errors.InputTypeError`
naming the argument, where sentence-transformers lets NumPy broadcast ranges of the wrong shape or turns NaN into an
undefined integer: the embeddings must be float, ``ranges`` of shape [2, d], finite, with min ≤ max,
``calibration_embeddings`` of shape [m, d]; NaN is refused for int8 / uint8. Torch tensors are read with
``np.asarray`` (CPU tensors); torch is never imported.

Shape letters: n = embeddings, d = dimensions, B = bytes of packed bits (⌈d / 8⌉), L = tokens of one text.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .errors import InputError, InputTypeError

__all__ = ["PRECISIONS", "check_precision", "quantize_embeddings", "unpack_bits"]

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
BINARY_DTYPES = {"binary": np.dtype(np.int8), "ubinary": np.dtype(np.uint8)}
_SCALAR_DTYPES = {"int8": np.dtype(np.int8), "uint8": np.dtype(np.uint8)}
_FEW_CALIBRATION_ROWS = 100  # sentence-transformers warns below this many rows when ranges come from the embeddings

logger = logging.getLogger(__name__)


def check_precision(precision: object) -> str:
    """`precision` when it is one of :data:`PRECISIONS`; else InputTypeError / InputError naming the choices."""
    choices = ", ".join(repr(p) for p in PRECISIONS)
    if not isinstance(precision, str):
        raise InputTypeError(f"precision must be a str, one of {choices}; got {type(precision).__name__}")
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not supported; pass one of {choices}")
    return precision


def _float_array(x: Any, name: str, ndims: tuple[int, ...]) -> np.ndarray:
    """``np.asarray(x)`` checked to hold floats and to have one of `ndims` dimensions."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists, objects NumPy cannot read
        raise InputError(f"{name} could not be read as an array: {exc}") from exc
    if arr.dtype.kind != "f":
        quantized = arr.dtype in (np.int8, np.uint8)
        hint = "; these look quantized already: quantize the float32 embeddings" if quantized else ""
        raise InputTypeError(f"{name} must hold float embeddings (encode's float32 output), not {arr.dtype}{hint}")
    if arr.ndim not in ndims:
        shapes = " or ".join({1: "1-D [d]", 2: "2-D [n, d]"}[n] for n in ndims)
        raise InputError(f"{name} must be {shapes}, got {arr.ndim}-D shape {arr.shape}")
    return arr


def _checked_ranges(ranges: Any, dim: int) -> np.ndarray:
    """User-given ranges as float32 [2, d]: finite, row 0 (minimum) ≤ row 1 (maximum)."""
    try:
        arr = np.asarray(ranges)
    except (ValueError, TypeError) as exc:
        raise InputError(f"ranges could not be read as an array: {exc}") from exc
    if arr.dtype.kind not in "iuf":
        raise InputTypeError(f"ranges must hold numbers, got dtype {arr.dtype}")
    if arr.shape != (2, dim):
        raise InputError(
            f"ranges must have shape (2, {dim}) — row 0 each dimension's minimum, row 1 its maximum — "
            f"got shape {arr.shape}"
        )
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError("ranges must be finite; compute them from finite embeddings")
    if (bad := np.flatnonzero(arr[0] > arr[1])).size:
        raise InputError(
            f"ranges[0] (minimum) exceeds ranges[1] (maximum) at dimension {bad[0]}: {arr[0, bad[0]]} > "
            f"{arr[1, bad[0]]}; row 0 holds the minima, row 1 the maxima"
        )
    return arr


def _calibrated_ranges(rows: np.ndarray, precision: str, from_calibration: bool) -> np.ndarray:
    """Each dimension's [min, max] over `rows` [m, d], as float32 [2, d]. From the embeddings being quantized
    (`from_calibration` false) it takes at least two of them, and warns below 100 (sentence-transformers' rules)."""
    if not from_calibration:
        if rows.shape[0] < 2:
            raise InputError(
                f"{precision} quantization cannot compute its ranges from a single embedding; quantize several "
                "embeddings at once, or pass ranges= or calibration_embeddings= (a representative set of "
                "embeddings) to minibert.quantize_embeddings"
            )
        if rows.shape[0] < _FEW_CALIBRATION_ROWS:
            logger.warning(
                "computing %s quantization ranges from %d embeddings; they are more stable from more embeddings "
                "(pass ranges= or calibration_embeddings=)",
                precision,
                rows.shape[0],
            )
    ranges = np.stack([rows.min(axis=0), rows.max(axis=0)]).astype(np.float32)  # [2, d]
    if not np.isfinite(ranges).all():
        what = "calibration_embeddings" if from_calibration else "embeddings"
        raise InputError(f"{what} hold NaN or infinite values, which give no {precision} ranges; drop those rows")
    return ranges


def _ranges(ranges: Any, calibration_embeddings: Any, embeddings: np.ndarray, precision: str, dim: int) -> np.ndarray:
    """The [2, d] float32 ranges: given, else from the calibration embeddings, else from `embeddings` [n, d]."""
    if ranges is not None:
        return _checked_ranges(ranges, dim)
    if calibration_embeddings is None:
        return _calibrated_ranges(embeddings.reshape(-1, dim), precision, from_calibration=False)
    calibration = _float_array(calibration_embeddings, "calibration_embeddings", (2,))  # [m, d]
    if calibration.shape[0] == 0 or calibration.shape[1] != dim:
        raise InputError(
            f"calibration_embeddings must have shape (m, {dim}) with m ≥ 1, like the embeddings; "
            f"got shape {calibration.shape}"
        )
    return _calibrated_ranges(calibration, precision, from_calibration=True)


def _scalar_codes(embeddings: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Each value's step above its dimension's minimum, clipped to 0 … 255: [..., d] floats, whole numbers.

    `ranges`: float32 [2, d]. The arithmetic (dtypes and operation order) is sentence-transformers', which makes the
    codes bitwise equal to its own.
    """
    starts = ranges[0]  # [d]
    steps = (ranges[1] - starts) / 255  # [d] float32
    steps = np.where(steps == 0, np.float32(1), steps)
    return np.clip(np.floor((embeddings - starts) / steps), 0, 255)


def _quantize_array(embeddings: np.ndarray, precision: str, ranges: np.ndarray | None) -> np.ndarray:
    """One float array [d] or [n, d] at `precision`; `ranges` [2, d] float32 for int8 / uint8."""
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision in BINARY_DTYPES:
        packed = np.packbits(embeddings > 0, axis=-1)  # [..., B] uint8
        return packed if precision == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)
    codes = _scalar_codes(embeddings, ranges)  # [..., d] in 0 … 255
    return codes.astype(np.uint8) if precision == "uint8" else (codes - 128).astype(np.int8)


def _empty(dim: int, precision: str) -> np.ndarray:
    """The [0, width] result for no embeddings: width d, or B bytes for the packed precisions."""
    if precision in BINARY_DTYPES:
        return np.zeros((0, (dim + 7) // 8), dtype=BINARY_DTYPES[precision])
    return np.zeros((0, dim), dtype=_SCALAR_DTYPES.get(precision, np.dtype(np.float32)))


def quantize_embeddings(
    embeddings: Any,
    precision: str,
    ranges: Any = None,
    calibration_embeddings: Any = None,
) -> np.ndarray | list[np.ndarray]:
    """Quantize float embeddings to ``precision``, bitwise as ``sentence_transformers.quantize_embeddings`` does.

    Args:
        embeddings: float [n, d] or [d] (an array, nested lists, a CPU tensor); or a list of [L, d] matrices
            (token embeddings), quantized with one set of ranges.
        precision: ``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"``.
        ranges: int8 / uint8 only: [2, d], each dimension's minimum (row 0) and maximum (row 1). Use the same
            ranges for the queries and the corpus.
        calibration_embeddings: int8 / uint8 only, when ``ranges`` is None: [m, d] embeddings whose per-dimension
            minimum and maximum are the ranges. With neither, the ranges come from ``embeddings`` themselves (at
            least two rows; a warning below 100).

    Returns:
        int8 / uint8: the codes, same shape as the input. binary (int8) / ubinary (uint8): the packed sign bits,
        [n, ⌈d / 8⌉] or [⌈d / 8⌉]. float32: a float32 copy. A list of matrices gives a list; ``[]`` gives ``[]``.

    Raises:
        InputError / InputTypeError: an unknown precision, non-float embeddings, ranges or calibration embeddings
            of the wrong shape, NaN for int8 / uint8, or int8 / uint8 ranges asked of a single embedding.
    """
    precision = check_precision(precision)
    if isinstance(embeddings, (list, tuple)) and embeddings and np.ndim(embeddings[0]) == 2:
        return _quantize_matrices(list(embeddings), precision, ranges, calibration_embeddings)
    if isinstance(embeddings, list) and not embeddings:
        return []
    array = _float_array(embeddings, "embeddings", (1, 2))  # [n, d] or [d]
    dim = array.shape[-1]
    if array.ndim == 2 and array.shape[0] == 0:
        return _empty(dim, precision)
    if precision in _SCALAR_DTYPES:
        if np.isnan(array).any():
            raise InputError(f"embeddings hold NaN, which has no {precision} code; drop or fix those rows")
        ranges = _ranges(ranges, calibration_embeddings, array, precision, dim)
    return _quantize_array(array, precision, ranges)


def _quantize_matrices(
    matrices: list[Any], precision: str, ranges: Any, calibration_embeddings: Any
) -> list[np.ndarray]:
    """Token embeddings: each [L, d] matrix quantized with the same ranges (from all matrices' rows together)."""
    arrays = [_float_array(m, f"embeddings[{i}]", (2,)) for i, m in enumerate(matrices)]  # [L, d] each
    dim = arrays[0].shape[1]
    if bad := [i for i, a in enumerate(arrays) if a.shape[1] != dim]:
        raise InputError(
            f"embeddings[{bad[0]}] has shape {arrays[bad[0]].shape}, but embeddings[0] has {dim} dimensions; "
            "every matrix needs the same width"
        )
    if precision in _SCALAR_DTYPES:
        rows = np.concatenate(arrays)  # [Σ L, d]
        if np.isnan(rows).any():
            raise InputError(f"embeddings hold NaN, which has no {precision} code; drop or fix those rows")
        if ranges is not None or calibration_embeddings is not None or rows.shape[0]:
            ranges = _ranges(ranges, calibration_embeddings, rows, precision, dim)
    return [_quantize_array(a, precision, ranges) if a.shape[0] else _empty(dim, precision) for a in arrays]


def unpack_bits(packed: np.ndarray, precision: str, dim: int | None = None) -> np.ndarray:
    """Packed sign bits back to one 0 / 1 value per dimension: [..., B] -> [..., dim] uint8.

    `packed`: what :func:`quantize_embeddings` gives for ``precision`` "ubinary" (uint8) or "binary" (int8, the
    bytes minus 128). `dim`: the embedding dimension, which drops the padding bits of the last byte (default: all
    8·B bits). The caller checks the dtype against the precision.
    """
    as_bytes = packed if precision == "ubinary" else (packed.astype(np.int16) + 128).astype(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=dim)
