"""The embedding cache of ``minibert search`` and ``minibert eval``: a corpus's rows on disk, keyed by everything that
determines them.

:func:`cache_key` is the one place a key is made. It is a SHA-256 over

- a format version and minibert's version (a new release may compute last bits differently);
- the model's identity (:func:`minibert.loading.identity.model_identity`): every value of its config and the
  bytes of every file its weights and tokenizer are read from;
- the texts that were embedded, in order, exactly as parsed. So the same bytes parsed as .txt and as .tsv give
  different keys, and a corpus read from a pipe is keyed on what was read, never on a second (empty) read.

Paths are not part of the key: a copy of a model or a corpus elsewhere hits the same entries.

Entries are ``<cache_dir>/<key>.npy`` files of float32 ``[n, d]``, written atomically (a temporary file renamed
over the entry). :func:`load_embeddings` serves an entry only when it is exactly what the caller needs — the
expected shape, float32, every value finite; anything else (a missing, truncated, foreign or corrupted file) is
a miss, recomputed by the caller and overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..loading.config import ModelConfig
from ..loading.identity import model_identity
from ..version import __version__

KEY_VERSION = "minibert-embeddings-v2"
_KEY = re.compile(r"[0-9a-f]{64}")


def cache_key(config: ModelConfig, texts: Sequence[str]) -> str:
    """The key of the embeddings of `texts` (in order, as parsed) by the model of `config`."""
    digest = hashlib.sha256(f"{KEY_VERSION}\0{__version__}\0{model_identity(config)}\0".encode())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little") + data)  # length-prefixed: texts cannot run together
    return digest.hexdigest()


def _entry(cache_dir: str | os.PathLike[str], key: str) -> Path:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InputError(f"invalid cache key {key!r}: expected the 64 hex digits cache_key() returns")
    return Path(cache_dir) / f"{key}.npy"


def load_embeddings(cache_dir: str | os.PathLike[str], key: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The cached float32 `shape` rows for `key`, or None: no entry, or one that is not exactly that (unreadable,
    truncated, another shape or dtype, a non-finite value, pickled objects)."""
    path = _entry(cache_dir, key)
    try:
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(rows, np.ndarray):  # an .npz archive under the .npy name
        rows.close()
        return None
    if rows.shape != tuple(shape) or rows.dtype != np.float32 or not np.isfinite(rows).all():
        return None
    return rows


def save_embeddings(cache_dir: str | os.PathLike[str], key: str, embeddings: np.ndarray) -> Path:
    """Write float32 [n, d] `embeddings` as the entry for `key`, atomically; returns its path. Creates `cache_dir`.

    OSError propagates (a cache directory that cannot be made or written): the caller decides whether that is
    fatal. A failed write leaves no temporary file and the previous entry, if any, in place.
    """
    path = _entry(cache_dir, key)
    rows = np.asarray(embeddings)
    if rows.ndim != 2 or rows.dtype != np.float32:
        raise InputError(f"embeddings to cache must be float32 [rows, dim], got {rows.dtype} {rows.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, rows, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return path
