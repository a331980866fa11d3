"""The output of ``minibert embed``: Parquet shards and a manifest in one directory.

Layout of an output directory::

    manifest.json          the job (model, its identity hash, dimension, normalized, score function, precision,
                           the input's identity, batch and shard size), its status, and — once complete — each
                           shard's file and row count
    part-00000.parquet     rows [0, S) of the input: ``id`` (string), ``embedding`` (fixed-size list of the
    part-00001.parquet     precision's type: float32, int8, uint8; binary / ubinary: ⌈d / 8⌉ packed bytes)
    …

Every file appears complete or not at all: it is written under a temporary name beginning with ``.`` in the same
directory, flushed to disk and renamed (:func:`write_atomic`). Each shard's Parquet schema carries the job's key
(:data:`JOB_KEY_METADATA`), so a shard of another job, or a file truncated by something else, is never taken for a
finished shard (:func:`finished_shard_ids`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..quantization import BINARY_DTYPES, quantize_embeddings
from .inputs import import_pyarrow

MANIFEST = "manifest.json"
SCALAR_PRECISIONS = ("int8", "uint8")  # codes against ranges: the job keeps one set for the whole corpus
FORMAT = "minibert-embed-v1"
JOB_KEY_METADATA = b"minibert.job"
_TEMPORARY_PREFIX = "."
_VALUE_TYPES = {"float32": "float32", "int8": "int8", "uint8": "uint8", "binary": "int8", "ubinary": "uint8"}


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def stored_width(precision: str, dim: int) -> int:
    """Values per row in the ``embedding`` column: d, or ⌈d / 8⌉ bytes of packed bits."""
    return -(-dim // 8) if precision in BINARY_DTYPES else dim


def stored_rows(embeddings: np.ndarray, precision: str, ranges: np.ndarray | None) -> np.ndarray:
    """The rows as stored: float32, or quantized with the job's fixed ranges."""
    if precision == "float32":
        return embeddings
    return quantize_embeddings(embeddings, precision, ranges=ranges)


def shard_table(ids: Sequence[str], embeddings: np.ndarray, precision: str, job_key: str | None = None) -> Any:
    """A pyarrow Table ``id`` string, ``embedding`` fixed_size_list<type>[width], its schema tagged with `job_key`
    (when given)."""
    pa = import_pyarrow()
    rows = np.ascontiguousarray(embeddings)  # [n, width]
    values = pa.array(rows.reshape(-1), type=getattr(pa, _VALUE_TYPES[precision])())
    embedding = pa.FixedSizeListArray.from_arrays(values, rows.shape[1])
    table = pa.table({"id": pa.array(list(ids), type=pa.string()), "embedding": embedding})
    return table if job_key is None else tagged(table, job_key)


def tagged(table: Any, job_key: str) -> Any:
    """`table` with its schema tagged as a shard of the job `job_key`."""
    return table.replace_schema_metadata({JOB_KEY_METADATA: job_key.encode()})


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(temporary_path)`` (which creates the file) then rename it to `path`, fsynced; nothing is left
    behind on failure."""
    tmp = path.parent / f"{_TEMPORARY_PREFIX}{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # the rename itself reaches the disk with the directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def parquet_options(precision: str) -> dict[str, Any]:
    """How shards are encoded, zstd-compressed: float32 values without a dictionary (it would only grow them) and split
    by byte stream (their exponent bytes then compress); int8 / uint8 codes and packed bits with Parquet's dictionary
    (256 values at most, where Parquet would otherwise store each in 4 bytes)."""
    if precision == "float32":
        return {"use_dictionary": ["id"], "use_byte_stream_split": ["embedding.list.element"], "compression": "zstd"}
    return {"compression": "zstd"}


def write_shard(out_dir: Path, index: int, table: Any, precision: str) -> None:
    pq = import_pyarrow().parquet
    write_atomic(out_dir / shard_name(index), lambda tmp: pq.write_table(table, tmp, **parquet_options(precision)))


def finished_shard_ids(out_dir: Path, index: int, job_key: str) -> list[str] | None:
    """The ids of shard `index` when it is a complete shard of the job `job_key`, else None (absent, unreadable,
    another job's)."""
    pa = import_pyarrow()
    path = out_dir / shard_name(index)
    try:
        parquet = pa.parquet.ParquetFile(path)
        if (parquet.schema_arrow.metadata or {}).get(JOB_KEY_METADATA) != job_key.encode():
            return None
        return parquet.read(columns=["id"]).column("id").to_pylist()
    except (OSError, pa.ArrowException, KeyError):
        return None


def remove_temporaries(out_dir: Path) -> None:
    """Delete what an interrupted run left half-written (temporary files are never read)."""
    for leftover in out_dir.glob(f"{_TEMPORARY_PREFIX}*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def remove_shards(out_dir: Path) -> None:
    for shard in out_dir.glob("part-*.parquet"):
        shard.unlink()


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of `out_dir`, None when there is none; InputError when it is not one of ours."""
    path = out_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{path}: not a readable minibert embed manifest ({exc}); use --overwrite or another --output"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a {FORMAT} manifest; use --overwrite or another --output")
    return manifest


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_atomic(out_dir / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_output(out_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str], np.ndarray]:
    """(manifest, ids, embeddings [n, width]) of a complete ``minibert embed`` output directory, shards in order."""
    out_dir = Path(out_dir)
    pa = import_pyarrow()
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise InputError(f"{out_dir}: no {MANIFEST}; not a minibert embed output directory")
    if manifest.get("status") != "complete":
        raise InputError(f"{out_dir}: the embed job is not finished; run the same minibert embed command again")
    ids: list[str] = []
    parts = []
    for shard in manifest["shards"]:
        path = out_dir / shard["file"]
        try:
            table = pa.parquet.read_table(path, columns=["id", "embedding"])
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: cannot be read ({exc})") from None
        if table.num_rows != shard["rows"]:
            raise InputError(f"{path}: {table.num_rows} rows where the manifest says {shard['rows']}")
        ids += table.column("id").to_pylist()
        embedding = table.column("embedding").combine_chunks()
        parts.append(embedding.values.to_numpy(zero_copy_only=False).reshape(table.num_rows, -1))
    width = stored_width(manifest["precision"], manifest["model"]["dimension"])
    embeddings = np.concatenate(parts) if parts else np.empty((0, width), dtype=_VALUE_TYPES[manifest["precision"]])
    return manifest, ids, embeddings
