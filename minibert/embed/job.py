"""``minibert embed``: a corpus of any size streamed into Parquet shards, resumable — the one job, whoever computes.

The job cuts the input's passages into shards of ``shard_size`` rows (shard *k* = passages [k·S, (k+1)·S)) and,
within a shard, into batches of ``batch_size``. :func:`run_embed_job` owns everything but the embedding itself: the
manifest, resuming, the int8 / uint8 ranges, writing the shards and the summary. A :class:`Runner` only produces
each shard's float32 rows, in input order: :class:`~minibert.embed.local.LocalRunner` in this process,
:class:`~minibert.embed.ray.RayRunner` on a Ray cluster. Killed at any moment and started again, a job gives the
rows an uninterrupted run gives:

0. one job writes a directory at a time: a second one started on it while the first runs is refused at once
   (an exclusive lock on the directory, :func:`~minibert.embed.shards.exclusive_writer`);
1. the manifest is written (atomically) before any shard; a manifest that describes another job (changed input,
   model identity, sizes, precision, runner, minibert version: :func:`describe_job`) is refused, or replaced with
   ``overwrite``. The model is compared by its identity hash, not by how its name was spelled (``dir``, ``dir/``,
   ``./dir`` and an absolute path are one model); the manifest records the name for people, outside the job's key;
2. the input is read again from the start; a shard whose file is complete, carries this job's key (and, int8 /
   uint8, the ranges of this job) and holds exactly the ids the input gives for it is kept (the local runner does
   not compute it); any other is embedded and written (temporary name, then rename), so it is visible only when
   complete. Shard files beyond the input's last shard are removed;
3. at the end the manifest records each shard's rows and the status "complete"; running the job again then does
   nothing — when the manifest's shard list is the one a finished job writes, the files on disk are exactly those
   and each carries this job's key and the listed row count (:func:`already_complete`). Anything else (a truncated
   shard, an edited or half-copied manifest) is repaired by step 2.

int8 / uint8 codes use one set of ranges for the whole corpus: the per-dimension min and max of the first shard's
float embeddings (sentence-transformers' ``quantize_embeddings`` with the first shard as
``calibration_embeddings``). Each int8 / uint8 shard carries the ranges its codes were made with, and a resumed job
takes them from the first shard (computing that shard again when it is not finished): a manifest's copy of the
ranges, written when the job completes, is for people and is never read back.

Outputs written before the model's name left the job's key are still this job's (:func:`job_keys`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..loading.identity import model_identity
from ..progress import progress
from . import shards
from .contract import EmbedSettings, Runner, Shard
from .inputs import CorpusInput, input_identity, parquet_rows
from .local import LocalRunner
from .shards import SCALAR_PRECISIONS, stored_rows


@dataclass(frozen=True)
class Summary:
    rows: int  # rows in the output
    embedded: int  # rows embedded by this run (the rest were already done)
    seconds: float
    shards: int
    nothing_to_do: bool = False  # the job was complete already
    report: dict[str, Any] = field(default_factory=dict)  # the runner's (Runner.report)


def describe_job(model: Any, source_identity: dict[str, Any], settings: EmbedSettings) -> dict[str, Any]:
    """The part of the manifest that determines the rows; a resumed job must match it exactly. The model is its
    identity and what follows from it, not its name (:func:`named` adds that for the manifest)."""
    from ..version import __version__

    return {
        "format": shards.FORMAT,
        "minibert_version": __version__,
        "model": {
            "identity": model_identity(model.config),
            "dimension": model.get_embedding_dimension(),
            "normalized": settings.normalize or model.config.normalize,
            "similarity_fn_name": model.similarity_fn_name,
            "document_prompt": model.resolve_prompt(prompt_name="document"),
        },
        "input": source_identity,
        "precision": settings.precision,
        "batch_size": settings.batch_size,
        "shard_size": settings.shard_size,
        "normalize_embeddings": settings.normalize,
    }


def job_key(description: dict[str, Any]) -> str:
    """The key each shard of the job `description` carries."""
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def job_keys(description: dict[str, Any], manifest: dict[str, Any] | None) -> tuple[str, ...]:
    """The keys a shard of the job `description` may carry, its own (:func:`job_key`) first; then the key minibert
    gave the same job when the model's name was part of it (the name `manifest` records), so that an output made
    then still resumes, is found complete and is read by ``search`` / ``eval``."""
    name = _model_part(manifest).get("name")
    if not isinstance(name, str):
        return (job_key(description),)
    return job_key(description), job_key(named(description, name))


def named(description: dict[str, Any], model_name: str) -> dict[str, Any]:
    """`description` as the manifest holds it: with the model's name as it was given, for people."""
    return {**description, "model": {**description["model"], "name": model_name}}


def stored_description(manifest: dict[str, Any], description: dict[str, Any]) -> dict[str, Any]:
    """The values `manifest` holds for the keys of `description`, without the model's name (not part of a job)."""
    stored = {key: manifest.get(key) for key in description}
    if isinstance(stored.get("model"), dict):
        stored["model"] = {key: value for key, value in stored["model"].items() if key != "name"}
    return stored


def _model_part(manifest: dict[str, Any] | None) -> dict[str, Any]:
    model = (manifest or {}).get("model")
    return model if isinstance(model, dict) else {}


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The keys (dotted) whose values differ between two job descriptions."""
    names = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            names.append(f"{prefix}{key}")
    return names


def calibration_ranges(embeddings: np.ndarray) -> np.ndarray:
    """[2, d]: each dimension's min and max over `embeddings` (quantize_embeddings' calibration rule)."""
    return np.stack([embeddings.min(axis=0), embeddings.max(axis=0)])


@contextlib.contextmanager
def open_output(out_dir: Path) -> Iterator[None]:
    """`out_dir` created if missing and locked for this job while the block runs (module docstring, step 0)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--output {out_dir}: is a file; name a directory (it is created if missing)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with shards.exclusive_writer(out_dir):
        yield


def prepare_output(out_dir: Path, description: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """Make `out_dir` (locked: :func:`open_output`) ready for the job; returns its existing manifest when that is this
    job's (to resume or to find complete), None when the job starts afresh. Refuses a directory that holds something
    else."""
    if overwrite and (out_dir / shards.MANIFEST).exists():
        shards.remove_shards(out_dir)
        (out_dir / shards.MANIFEST).unlink()
    manifest = shards.read_manifest(out_dir)
    if manifest is None:
        foreign = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("."))
        if foreign:
            raise InputError(
                f"--output {out_dir}: holds {', '.join(foreign[:3])}{' …' if len(foreign) > 3 else ''} but no "
                f"{shards.MANIFEST}; name a new or empty directory"
            )
    elif changed := differences(stored_description(manifest, description), description):
        raise InputError(
            f"--output {out_dir} holds another job's output (changed: {', '.join(changed)}); run the command that made "
            "it, or pass --overwrite to start over, or name another --output"
        )
    shards.remove_temporaries(out_dir)
    return manifest


def already_complete(out_dir: Path, manifest: dict[str, Any] | None, keys: tuple[str, ...], scalar: bool) -> bool:
    """True when the manifest says complete and lists the shards a finished job writes, the shard files on disk are
    exactly those, and each carries one of this job's `keys` and the listed rows (int8 / uint8, `scalar`: all the
    same ranges)."""
    if manifest is None or manifest.get("status") != "complete":
        return False
    try:
        listed = shards.listed_shards(out_dir, manifest)
    except InputError:
        return False
    if {p.name for p in out_dir.glob("part-*.parquet")} != {name for name, _ in listed}:
        return False
    footers = [shards.shard_footer(out_dir / name) for name, _ in listed]
    if any(f is None or f.key not in keys or f.rows != rows for f, (_, rows) in zip(footers, listed, strict=True)):
        return False
    return not scalar or len({f.ranges for f in footers}) == 1


def run_embed_job(
    model: Any,
    model_name: str,
    source: CorpusInput,
    out_dir: str | os.PathLike[str],
    settings: EmbedSettings,
    *,
    runner: Runner | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Summary:
    """Embed `source` into `out_dir` with `runner` (default: this process, :class:`~minibert.embed.local.LocalRunner`
    of `model`); resumes a killed run, does nothing for a finished one (module docstring). `model_name` is recorded
    in the manifest, for people; the job is the model's identity."""
    runner = LocalRunner(model) if runner is None else runner
    runner.check(source)
    settings = settings.checked()
    out_dir = Path(out_dir)
    started = time.monotonic()
    identity, lines = input_identity(source)
    description = {**describe_job(model, identity, settings), **runner.description}
    with open_output(out_dir):
        found = prepare_output(out_dir, description, overwrite)
        keys = job_keys(description, found)
        if already_complete(out_dir, found, keys, settings.precision in SCALAR_PRECISIONS):
            return Summary(rows=found["rows"], embedded=0, seconds=0.0, shards=len(found["shards"]),
                           nothing_to_do=True)  # fmt: skip
        manifest = {**named(description, model_name), "status": "running"}
        shards.write_manifest(out_dir, manifest)
        total = parquet_rows(source) if lines is None else lines
        with (
            progress(total, "embedding", show_progress, unit="rows") as advance,
            contextlib.closing(runner.shards(source, settings, description["model"]["identity"])) as produced,
        ):
            written, embedded, ranges = _write_shards(out_dir, produced, settings, keys, advance)
        if not written:
            raise InputError(f"--input {source.path}: no passages")
        shards.remove_shards(out_dir, keep={s["file"] for s in written})  # any beyond the input's last shard
        rows_total = sum(s["rows"] for s in written)
        seconds = time.monotonic() - started
        report = runner.report()
        shards.write_manifest(out_dir, {**manifest, "status": "complete", "rows": rows_total, "shards": written,
                                        "ranges": None if ranges is None else ranges.tolist(),
                                        "seconds": round(seconds, 3), **report})  # fmt: skip
    return Summary(rows=rows_total, embedded=embedded, seconds=seconds, shards=len(written), report=report)


def _write_shards(
    out_dir: Path,
    produced: Iterator[Shard],
    settings: EmbedSettings,
    keys: tuple[str, ...],
    advance: Callable[[int], None],
) -> tuple[list[dict[str, Any]], int, np.ndarray | None]:
    """Each shard a runner `produced` kept or written (module docstring, step 2): (the manifest's shard list, the rows
    embedded, the int8 / uint8 ranges)."""
    scalar = settings.precision in SCALAR_PRECISIONS
    ranges = None  # int8 / uint8: the first shard's, as found or as computed
    written: list[dict[str, Any]] = []
    embedded = 0
    for index, shard in enumerate(produced):
        done = shards.finished_shard(out_dir, index, keys, scalar)
        if done is not None and done.ids == shard.ids and (ranges is None or np.array_equal(done.ranges, ranges)):
            ranges = done.ranges if ranges is None else ranges
            advance(len(shard.ids))
        else:
            rows = shard.rows(advance)  # [n, d] float32
            if scalar and ranges is None:
                ranges = calibration_ranges(rows)
            table = shards.shard_table(shard.ids, stored_rows(rows, settings.precision, ranges), settings.precision,
                                       keys[0], ranges)  # fmt: skip
            shards.write_shard(out_dir, index, table, settings.precision)
            embedded += len(shard.ids)
        written.append({"file": shards.shard_name(index), "rows": len(shard.ids)})
    return written, embedded, ranges


def print_summary(summary: Summary, out_dir: str | os.PathLike[str]) -> None:
    """The line a finished ``minibert embed`` prints on stderr."""
    if summary.nothing_to_do:
        print(f"{out_dir}: already complete ({summary.rows} rows in {summary.shards} shards); nothing to do",
              file=sys.stderr)  # fmt: skip
        return
    rate = summary.embedded / max(summary.seconds, 1e-9)
    resumed = f", {summary.rows - summary.embedded} already done" if summary.embedded < summary.rows else ""
    print(
        f"embedded {summary.embedded} rows in {summary.seconds:.1f} s ({rate:.1f} docs/s){resumed}; "
        f"{summary.rows} rows in {summary.shards} shards in {out_dir}",
        file=sys.stderr,
    )
    for runner, details in summary.report.items():
        print(f"({runner}: {', '.join(f'{key} {value}' for key, value in details.items())})", file=sys.stderr)
