"""``minibert search`` and ``minibert eval`` from a finished ``minibert embed`` output instead of re-embedding.

The output is used only when it is exactly what the command would compute: made by the same model (its identity
hash), float32, not normalized beyond the model's own rule, from the same corpus file (its SHA-256); its rows are
then put in the corpus's passage order by id. Anything else is an InputError saying what differs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..loading.identity import model_identity
from ..retrieval.corpus import Passage
from .inputs import input_identity, open_input
from .shards import read_output


def corpus_embeddings_from_output(
    model: Any, passages: list[Passage], corpus_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> np.ndarray:
    """float32 [n, d]: the rows of `out_dir` for `passages` (read from `corpus_path`), in passage order."""
    where = f"--embeddings {out_dir}"
    manifest, ids, rows = read_output(Path(out_dir))
    job_model, job_input = manifest["model"], manifest["input"]
    if job_model["identity"] != model_identity(model.config):
        raise InputError(f"{where} was embedded by model {job_model['name']!r}, not this --model; pass that model")
    if manifest["precision"] != "float32" or manifest["normalize_embeddings"]:
        raise InputError(
            f"{where} holds {manifest['precision']} rows{' (normalized)' if manifest['normalize_embeddings'] else ''}; "
            "search and eval need the model's own float32 rows (minibert embed without --precision / --normalize)"
        )
    identity, _ = input_identity(open_input(corpus_path))
    if identity["sha256"] != job_input["sha256"]:
        raise InputError(f"{where} was embedded from {job_input['path']}, whose contents differ from {corpus_path}")
    row_of = {pid: row for row, pid in enumerate(ids)}
    if len(row_of) != len(ids):
        raise InputError(f"{where} holds a duplicate id; search needs one row per passage")
    missing = [p.id for p in passages if p.id not in row_of]
    if missing or len(ids) != len(passages):
        raise InputError(
            f"{where} holds {len(ids)} rows for {len(passages)} passages"
            + (f" (first missing id: {missing[0]!r})" if missing else "")
            + "; embed the corpus with the same --id-field / --text-field / --title-field"
        )
    return rows[[row_of[p.id] for p in passages]]
