"""``minibert search`` and ``minibert eval`` from a finished ``minibert embed`` output instead of re-embedding.

The output is used only when its rows are exactly the ones the command would compute. The command describes the
job that would have made them (:func:`expected_job`, with :func:`minibert.embed.job.describe_job`) and every part
that determines the rows must be the manifest's:

- the model: its identity hash, dimension, normalization and score function, and its document prompt (not how its
  name was spelled);
- float32 rows, not ``--normalize``d;
- the corpus file: its SHA-256 and size, and its format as the command reads it;
- the field names the rows were computed from. ``search`` and ``eval`` read a corpus with
  :func:`~minibert.retrieval.corpus.read_corpus`'s fields: for ``.jsonl`` the passage is the ``text`` field with the
  ``title`` field, so the job's ``--text-field`` / ``--title-field`` must be those; ``.tsv`` and plain text have no
  field names (``id<TAB>text``, a passage per line), so whatever ``--*-field`` the job was given changed nothing and
  is not compared. The id field is checked through the ids themselves: the output's ids, in order, must be the
  corpus's passages' (each row is then the passage at its position, whatever ``--id-field`` said);
- the manifest says "complete", lists the shards a finished job writes, and each shard holds the rows it lists and
  carries the key of the job described (:func:`minibert.embed.job.job_keys`), so a shard copied in from another
  output, or a manifest edited since, is refused.

What does not change the rows beyond float32 rounding (batch and shard size, the minibert version, the runner, where
the corpus file was) is taken from the manifest. Anything else is one InputError naming what differs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..retrieval.corpus import Passage
from .contract import EmbedSettings
from .inputs import input_identity, open_input
from .job import describe_job, differences, job_keys, stored_description
from .shards import read_complete_manifest, read_shards

_NAMED_FIELD_FORMATS = ("jsonl", "parquet")  # the formats whose passages are read from named fields
_NOT_DETERMINING = ("minibert_version", "batch_size", "shard_size", "runner")  # rows equal to float32 rounding


def corpus_embeddings_from_output(
    model: Any, passages: list[Passage], corpus_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> np.ndarray:
    """float32 [n, d]: the rows of `out_dir` for `passages` (read from `corpus_path`), in passage order; InputError
    unless they are what this command would compute (module docstring)."""
    where = f"--embeddings {out_dir}"
    manifest = read_complete_manifest(Path(out_dir))
    expected = expected_job(model, corpus_path, manifest)
    check_same_job(where, corpus_path, stored_description(manifest, expected), expected)
    ids, rows = read_shards(Path(out_dir), manifest, job_keys(expected, manifest))
    check_same_ids(where, ids, passages)
    return rows


def expected_job(model: Any, corpus_path: str | os.PathLike[str], manifest: dict[str, Any]) -> dict[str, Any]:
    """The job description of `model`'s own float32 rows of the corpus file `corpus_path` as ``search`` reads it,
    with what does not determine the rows taken from `manifest` (module docstring)."""
    identity, _ = input_identity(open_input(corpus_path))
    stored_input = manifest.get("input") if isinstance(manifest.get("input"), dict) else {}
    fields = stored_input.get("fields")
    if identity["format"] in _NAMED_FIELD_FORMATS:
        fields = {**identity["fields"], "id": fields.get("id") if isinstance(fields, dict) else None}
    corpus = {**identity, "path": stored_input.get("path"), "fields": fields}
    passed = {key: manifest[key] for key in _NOT_DETERMINING if key in manifest}
    return {**describe_job(model, corpus, EmbedSettings()), **passed}


def check_same_job(
    where: str, corpus_path: str | os.PathLike[str], stored: dict[str, Any], expected: dict[str, Any]
) -> None:
    """InputError naming what differs between the job that made an output (`stored`) and the one this command would
    run (`expected`); the most telling difference first."""
    changed = differences(stored, expected)
    if not changed:
        return
    model, precision = stored.get("model"), stored.get("precision")
    if "model.identity" in changed:
        name = model.get("name") if isinstance(model, dict) else None
        raise InputError(f"{where} was embedded by model {name!r}, not this --model; pass that model")
    if "precision" in changed or "normalize_embeddings" in changed:
        normalized = " (normalized)" if stored.get("normalize_embeddings") else ""
        raise InputError(
            f"{where} holds {precision} rows{normalized}; search and eval need the model's own float32 rows "
            "(minibert embed without --precision / --normalize)"
        )
    if "input.sha256" in changed or "input.bytes" in changed:
        raise InputError(f"{where} was embedded from {_stored_path(stored)}, whose contents differ from {corpus_path}")
    if fields := [name.rsplit(".", 1)[1] for name in changed if name.startswith("input.fields.")]:
        raise InputError(
            f"{where} was embedded with other field names ({', '.join(f'--{f}-field' for f in fields)}) than search "
            "and eval read (text, title); embed the corpus without those options"
        )
    raise InputError(f"{where} was not made by the job this command would run (differs: {', '.join(changed)}); "
                     "embed the corpus again with this model")  # fmt: skip


def _stored_path(stored: dict[str, Any]) -> str:
    corpus = stored.get("input")
    return str(corpus.get("path")) if isinstance(corpus, dict) else "another corpus"


def check_same_ids(where: str, ids: list[str], passages: list[Passage]) -> None:
    """InputError unless `ids` are the passages' ids in order (one row per passage, at its position)."""
    wanted = [p.id for p in passages]
    if ids == wanted:
        return
    row = next((i for i, (got, want) in enumerate(zip(ids, wanted, strict=False)) if got != want), None)
    mismatch = "" if row is None else f", row {row} is {ids[row]!r} where the corpus has {wanted[row]!r}"
    raise InputError(
        f"{where} holds {len(ids)} rows for {len(passages)} passages{mismatch}; embed the corpus with the ids search "
        "reads (no --id-field other than _id / id)"
    )
