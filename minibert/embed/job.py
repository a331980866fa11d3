"""``minibert embed``: a corpus of any size streamed into Parquet shards, resumable — the one job, whoever computes.

The job cuts the input's passages into shards of ``shard_size`` rows (shard *k* = passages [k·S, (k+1)·S)) and,
within a shard, into batches of ``batch_size``. :func:`run_embed_job` owns everything but the embedding itself: the
manifest, resuming, the int8 / uint8 ranges, writing the shards and the summary. A :class:`Runner` only produces
each shard's float32 rows, in input order: :class:`~minibert.embed.local.LocalRunner` in this process,
:class:`~minibert.embed.ray.RayRunner` on a Ray cluster. Killed at any moment and started again, a job gives the
rows an uninterrupted run gives:

1. the manifest is written (atomically) before any shard; a manifest that describes another job (changed input,
   model, sizes, precision, runner, minibert version) is refused, or replaced with ``overwrite``;
2. the input is read again from the start; a shard whose file is complete, carries this job's key and holds
   exactly the ids the input gives for it is kept (the local runner does not compute it); any other is embedded
   and written (temporary name, then rename), so it is visible only when complete;
3. at the end the manifest records each shard's rows and the status "complete"; running the job again then does
   nothing.

int8 / uint8 codes use one set of ranges for the whole corpus: the per-dimension min and max of the first shard's
float embeddings (sentence-transformers' ``quantize_embeddings`` with the first shard as
``calibration_embeddings``), stored in the manifest before the first shard is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..loading.identity import model_identity
from ..progress import progress
from . import shards
from .contract import EmbedSettings, Runner
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


def describe_job(model: Any, model_name: str, source_identity: dict[str, Any], settings: EmbedSettings) -> dict:
    """The part of the manifest that determines the rows; a resumed job must match it exactly."""
    from ..version import __version__

    return {
        "format": shards.FORMAT,
        "minibert_version": __version__,
        "model": {
            "name": model_name,
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


def job_key(description: dict) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """The keys (dotted) whose values differ between two job descriptions."""
    names = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            names.append(f"{prefix}{key}")
    return names


def calibration_ranges(embeddings: np.ndarray) -> np.ndarray:
    """[2, d]: each dimension's min and max over `embeddings` (quantize_embeddings' calibration rule)."""
    return np.stack([embeddings.min(axis=0), embeddings.max(axis=0)])


def prepare_output(out_dir: Path, description: dict, overwrite: bool) -> dict | None:
    """Make `out_dir` ready for the job; returns its existing manifest when that is this job's (to resume or to find
    complete), None when the job starts afresh. Refuses a directory that holds something else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--output {out_dir}: is a file; name a directory (it is created if missing)")
    out_dir.mkdir(parents=True, exist_ok=True)
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
    else:
        job = {key: manifest.get(key) for key in description}
        if job != description:
            changed = ", ".join(_differences(job, description))
            raise InputError(
                f"--output {out_dir} holds another job's output (changed: {changed}); run the command that made it, "
                "or pass --overwrite to start over, or name another --output"
            )
    shards.remove_temporaries(out_dir)
    return manifest


def already_complete(out_dir: Path, manifest: dict | None) -> bool:
    """True when the manifest says complete and every shard it lists is there with its row count."""
    if manifest is None or manifest.get("status") != "complete":
        return False
    pq = shards.import_pyarrow().parquet
    try:
        return all(pq.ParquetFile(out_dir / s["file"]).metadata.num_rows == s["rows"] for s in manifest["shards"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


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
    of `model`); resumes a killed run, does nothing for a finished one (module docstring)."""
    runner = LocalRunner(model) if runner is None else runner
    runner.check(source)
    settings = settings.checked()
    out_dir = Path(out_dir)
    started = time.monotonic()
    identity, lines = input_identity(source)
    description = {**describe_job(model, model_name, identity, settings), **runner.description}
    key = job_key(description)
    manifest = prepare_output(out_dir, description, overwrite)
    if already_complete(out_dir, manifest):
        done = manifest["rows"]
        return Summary(rows=done, embedded=0, seconds=0.0, shards=len(manifest["shards"]), nothing_to_do=True)
    manifest = {"ranges": None, **(manifest or description), "status": "running"}
    shards.write_manifest(out_dir, manifest)

    ranges = None if manifest["ranges"] is None else np.asarray(manifest["ranges"], np.float32)
    total = parquet_rows(source) if lines is None else lines
    written: list[dict[str, Any]] = []
    embedded = 0
    with (
        progress(total, "embedding", show_progress, unit="rows") as advance,
        contextlib.closing(runner.shards(source, settings, description["model"]["identity"])) as produced,
    ):
        for index, shard in enumerate(produced):
            if shards.finished_shard_ids(out_dir, index, key) == shard.ids:
                advance(len(shard.ids))
            else:
                rows = shard.rows(advance)  # [n, d] float32
                if settings.precision in SCALAR_PRECISIONS and ranges is None:
                    ranges = calibration_ranges(rows)
                    manifest["ranges"] = ranges.tolist()
                    shards.write_manifest(out_dir, manifest)
                stored = stored_rows(rows, settings.precision, ranges)
                shards.write_shard(out_dir, index, shards.shard_table(shard.ids, stored, settings.precision, key),
                                   settings.precision)  # fmt: skip
                embedded += len(shard.ids)
            written.append({"file": shards.shard_name(index), "rows": len(shard.ids)})
    if not written:
        raise InputError(f"--input {source.path}: no passages")
    rows_total = sum(s["rows"] for s in written)
    seconds = time.monotonic() - started
    report = runner.report()
    shards.write_manifest(out_dir, {**manifest, "status": "complete", "rows": rows_total, "shards": written,
                                    "seconds": round(seconds, 3), **report})  # fmt: skip
    return Summary(rows=rows_total, embedded=embedded, seconds=seconds, shards=len(written), report=report)


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
