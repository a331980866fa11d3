"""The output of ``minibert embed``: Parquet shards and a manifest in one directory.

Layout of an output directory::

    manifest.json          the job (model, its identity hash, dimension, normalized, score function, precision,
                           the input's identity, batch and shard size), its status, and — once complete — each
                           shard's file and row count and the int8 / uint8 ranges
    part-00000.parquet     rows [0, S) of the input: ``id`` (string), ``embedding`` (fixed-size list of the
    part-00001.parquet     precision's type: float32, int8, uint8; binary / ubinary: ⌈d / 8⌉ packed bytes)
    …

Every file appears complete or not at all: it is written under a temporary name beginning with ``.`` in the same
directory, flushed to disk and renamed (:func:`write_atomic`). Each shard's Parquet schema carries the job's key
(:data:`JOB_KEY_METADATA`) and, for int8 / uint8, the ranges its codes were made with (:data:`RANGES_METADATA`), so a
shard of another job, or a file truncated by something else, is never taken for a finished shard
(:func:`shard_footer`, :func:`finished_shard`). One job writes a directory at a time: it holds an exclusive lock on
the directory itself (:func:`exclusive_writer`; no lock file is left behind, and the kernel drops the lock when the
process ends, however it ends).

A manifest is read defensively: JSON that is not one of ours, nested too deeply, or with numbers Python will not
convert is an InputError (:func:`read_manifest`), and so is a shard list that is not the one a finished job writes
(:func:`listed_shards`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import InputError
from ..quantization import quantize_embeddings
from .inputs import import_pyarrow

MANIFEST = "manifest.json"
SCALAR_PRECISIONS = ("int8", "uint8")  # codes against ranges: the job keeps one set for the whole corpus
FORMAT = "minibert-embed-v1"
JOB_KEY_METADATA = b"minibert.job"
RANGES_METADATA = b"minibert.ranges"  # int8 / uint8 shards: the ranges their codes were made with, as JSON
_TEMPORARY_PREFIX = "."
_VALUE_TYPES = {"float32": "float32", "int8": "int8", "uint8": "uint8", "binary": "int8", "ubinary": "uint8"}


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def stored_rows(embeddings: np.ndarray, precision: str, ranges: np.ndarray | None) -> np.ndarray:
    """The rows as stored: float32, or quantized with the job's fixed ranges."""
    if precision == "float32":
        return embeddings
    return quantize_embeddings(embeddings, precision, ranges=ranges)


def shard_table(
    ids: Sequence[str],
    embeddings: np.ndarray,
    precision: str,
    job_key: str | None = None,
    ranges: np.ndarray | None = None,
) -> Any:
    """A pyarrow Table ``id`` string, ``embedding`` fixed_size_list<type>[width], its schema tagged with `job_key`
    and `ranges` (when given)."""
    pa = import_pyarrow()
    rows = np.ascontiguousarray(embeddings)  # [n, width]
    values = pa.array(rows.reshape(-1), type=getattr(pa, _VALUE_TYPES[precision])())
    embedding = pa.FixedSizeListArray.from_arrays(values, rows.shape[1])
    table = pa.table({"id": pa.array(list(ids), type=pa.string()), "embedding": embedding})
    return table if job_key is None else tagged(table, job_key, ranges)


def tagged(table: Any, job_key: str, ranges: np.ndarray | None = None) -> Any:
    """`table` with its schema tagged as a shard of the job `job_key` whose codes were made with `ranges`."""
    metadata = {JOB_KEY_METADATA: job_key.encode()}
    if ranges is not None:
        metadata[RANGES_METADATA] = encode_ranges(ranges)
    return table.replace_schema_metadata(metadata)


def encode_ranges(ranges: np.ndarray) -> bytes:
    """[2, d] float32 ranges as the JSON a shard carries (exact: each float32 is written as the float64 it is)."""
    return json.dumps(np.asarray(ranges, np.float32).tolist()).encode()


def decode_ranges(data: bytes) -> np.ndarray | None:
    """The [2, d] float32 ranges of :func:`encode_ranges`' bytes; None when they are not that."""
    try:
        ranges = np.asarray(json.loads(data), dtype=np.float32)
    except (ValueError, TypeError, RecursionError):
        return None
    return ranges if ranges.ndim == 2 and ranges.shape[0] == 2 and np.isfinite(ranges).all() else None


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


class ShardFooter(NamedTuple):
    """What a shard's Parquet footer says: its job key, its ranges (int8 / uint8) as stored, its rows."""

    key: str | None
    ranges: bytes | None
    rows: int


class FinishedShard(NamedTuple):
    """A shard already written for the job: its ids and the ranges (int8 / uint8) its codes were made with."""

    ids: list[str]
    ranges: np.ndarray | None


def shard_footer(path: Path) -> ShardFooter | None:
    """The footer of the shard file `path`; None when it is absent or not a readable Parquet file (truncated, say)."""
    pa = import_pyarrow()
    try:
        parquet = pa.parquet.ParquetFile(path)
    except (OSError, pa.ArrowException):
        return None
    return _footer(parquet.schema_arrow.metadata, parquet.metadata.num_rows)


def _footer(metadata: dict[bytes, bytes] | None, rows: int) -> ShardFooter:
    key = (metadata or {}).get(JOB_KEY_METADATA)
    return ShardFooter(None if key is None else key.decode(errors="replace"), (metadata or {}).get(RANGES_METADATA),
                       rows)  # fmt: skip


def finished_shard(out_dir: Path, index: int, keys: Collection[str], scalar: bool) -> FinishedShard | None:
    """Shard `index` when it is a complete shard of this job — its key one of `keys`, and with `scalar` (int8 /
    uint8) ranges it carries — else None (absent, unreadable, another job's)."""
    pa = import_pyarrow()
    path = out_dir / shard_name(index)
    footer = shard_footer(path)
    if footer is None or footer.key not in keys:
        return None
    ranges = None if footer.ranges is None else decode_ranges(footer.ranges)
    if scalar and ranges is None:
        return None
    try:
        ids = pa.parquet.read_table(path, columns=["id"]).column("id").to_pylist()
    except (OSError, pa.ArrowException, KeyError):
        return None
    return FinishedShard(ids, ranges)


@contextlib.contextmanager
def exclusive_writer(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the directory `out_dir` (which exists) while the block runs; InputError at once when
    another process holds it. The kernel releases it when this process ends, even by SIGKILL. Where the platform has
    no ``flock`` (Windows), nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"--output {out_dir}: another minibert embed job is writing it; wait for that one to finish (then "
                "run this command again: it resumes or finds the job complete), or name another --output"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_temporaries(out_dir: Path) -> None:
    """Delete what an interrupted run left half-written (temporary files are never read)."""
    for leftover in out_dir.glob(f"{_TEMPORARY_PREFIX}*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def remove_shards(out_dir: Path, keep: Collection[str] = ()) -> None:
    """Delete the shard files of `out_dir` but those named in `keep`."""
    for shard in out_dir.glob("part-*.parquet"):
        if shard.name not in keep:
            shard.unlink()


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of `out_dir`, None when there is none; InputError when it is not one of ours."""
    path = out_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except RecursionError:
        raise InputError(f"{path}: not a minibert embed manifest (JSON nested too deeply); use --overwrite or another "
                         "--output") from None  # fmt: skip
    except (OSError, ValueError) as exc:  # UnicodeDecodeError, JSONDecodeError, an integer of 5,000 digits
        raise InputError(
            f"{path}: not a readable minibert embed manifest ({exc}); use --overwrite or another --output"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a {FORMAT} manifest; use --overwrite or another --output")
    return manifest


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_atomic(out_dir / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def listed_shards(out_dir: Path, manifest: dict[str, Any]) -> list[tuple[str, int]]:
    """(file, rows) of each shard a complete manifest lists; InputError unless they are what a finished job writes:
    ``part-00000.parquet``, ``part-00001.parquet``, … each with a positive row count, adding up to its ``rows``."""
    listed = manifest.get("shards")
    if (problem := _shard_list_problem(listed, manifest.get("rows"))) is not None:
        raise InputError(
            f"{out_dir / MANIFEST}: {problem}, not what minibert embed writes; run the same minibert embed command "
            "again to repair it"
        )
    return [(shard["file"], shard["rows"]) for shard in listed]


def _shard_list_problem(listed: Any, rows: Any) -> str | None:
    if not isinstance(listed, list) or not listed:
        return "no shard list"
    for index, shard in enumerate(listed):
        if not isinstance(shard, dict) or shard.get("file") != shard_name(index) or not _count(shard.get("rows")):
            return f"shard entry {index} is not {{'file': {shard_name(index)!r}, 'rows': a positive integer}}"
    if not _count(rows) or rows != sum(shard["rows"] for shard in listed):
        return f"'rows' ({rows!r}) is not the sum of the shards' rows"
    return None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def read_complete_manifest(out_dir: Path) -> dict[str, Any]:
    """The manifest of a finished ``minibert embed`` output; InputError when there is none or the job is not done."""
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise InputError(f"{out_dir}: no {MANIFEST}; not a minibert embed output directory")
    if manifest.get("status") != "complete":
        raise InputError(f"{out_dir}: the embed job is not finished; run the same minibert embed command again")
    return manifest


def read_shards(
    out_dir: Path, manifest: dict[str, Any], keys: Collection[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """(ids, embeddings [n, width]) of the shards a complete `manifest` lists, in order, each checked to hold the rows
    the manifest says and, given `keys`, to carry one of them (to be a shard of that job)."""
    pa = import_pyarrow()
    ids: list[str] = []
    parts = []
    for name, rows in listed_shards(out_dir, manifest):
        path = out_dir / name
        try:
            table = pa.parquet.read_table(path, columns=["id", "embedding"])
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: cannot be read ({exc})") from None
        if keys is not None and _footer(table.schema.metadata, table.num_rows).key not in keys:
            raise InputError(
                f"{path}: not a shard of the job {MANIFEST} describes (its job key differs: a file of another "
                "output?); run the same minibert embed command again to redo it"
            )
        if table.num_rows != rows:
            raise InputError(f"{path}: {table.num_rows} rows where the manifest says {rows}")
        ids += table.column("id").to_pylist()
        embedding = table.column("embedding").combine_chunks()
        parts.append(embedding.values.to_numpy(zero_copy_only=False).reshape(table.num_rows, -1))
    return ids, np.concatenate(parts)


def read_output(
    out_dir: str | os.PathLike[str], keys: Collection[str] | None = None
) -> tuple[dict[str, Any], list[str], np.ndarray]:
    """(manifest, ids, embeddings [n, width]) of a complete ``minibert embed`` output directory, shards in order
    (:func:`read_shards`: given `keys`, each shard must carry one of them)."""
    out_dir = Path(out_dir)
    manifest = read_complete_manifest(out_dir)
    ids, embeddings = read_shards(out_dir, manifest, keys)
    return manifest, ids, embeddings
