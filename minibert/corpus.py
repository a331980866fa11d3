"""Corpora for ``minibert search``: reading passage files and caching their embeddings.

Three file formats, chosen by extension (case-insensitive):

* ``.tsv`` — ``id<TAB>text`` per line. The id is everything before the first tab; further tabs
  stay in the text.
* ``.jsonl`` — one JSON object per line with a required string ``text``, an optional string
  ``title`` and an optional ``_id`` (or ``id``), a string or an integer. Without one, the id is the
  passage's 0-based index among the non-blank lines (as for plain text).
* anything else — plain text, one passage per line; the id is the passage's 0-based index among
  the non-blank lines.

Files are UTF-8 (a leading byte-order mark is tolerated). Blank lines are skipped in every format,
lines may end in ``\\n`` or ``\\r\\n``, and surrounding whitespace is stripped from ids and texts.
Every problem with a corpus file is an :class:`~minibert.errors.InputError` whose message names the
file and, where there is one, the line (1-based, counting every physical line).

Embeddings of a corpus are cached as ``<cache_dir>/<key>.npy`` where the key is a SHA-256 over the
model's fingerprint and the corpus file's bytes, so an edited corpus or a different model never hits
a stale entry, while moving or touching the file does not invalidate it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .files import hash_file

__all__ = [
    "Passage",
    "corpus_cache_key",
    "load_cached_embeddings",
    "read_corpus",
    "save_cached_embeddings",
]

_BOM = b"\xef\xbb\xbf"
_CACHE_KEY_RE = re.compile(r"[0-9A-Za-z_-]+")
_CACHE_KEY_VERSION = b"minibert-corpus-embeddings-v1"


@dataclass(frozen=True)
class Passage:
    """One passage of a corpus: its id, its text and an optional title."""

    id: str
    text: str
    title: str = ""

    @property
    def embed_text(self) -> str:
        """The string to embed: ``title + " " + text`` when there is a title, else the text (BEIR's rule)."""
        if self.title:
            return f"{self.title} {self.text}".strip()
        return self.text


# --------------------------------------------------------------------------------------------------
# Reading


def read_corpus(path: str | os.PathLike[str]) -> list[Passage]:
    """Read a corpus file into passages, in file order; the format is chosen by the extension.

    Raises :class:`InputError` for a missing file, a directory, undecodable bytes, a malformed line,
    a duplicate id, or a file with no passages.
    """
    p = Path(path)
    text = _read_text(p)
    suffix = p.suffix.lower()
    if suffix == ".tsv":
        passages = _parse_tsv(p, text)
    elif suffix == ".jsonl":
        passages = _parse_jsonl(p, text)
    else:
        passages = _parse_plain(text)
    if not passages:
        raise InputError(f"corpus {p} has no passages")
    return passages


def _read_text(p: Path) -> str:
    """The file's contents as text: UTF-8 with an optional BOM, undecodable bytes reported by offset."""
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"corpus file {p} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"corpus path {p} is a directory, not a file") from None
    except OSError as e:
        if p.is_dir():  # Windows reports a directory as PermissionError
            raise InputError(f"corpus path {p} is a directory, not a file") from None
        raise InputError(f"cannot read corpus file {p}: {e.strerror or e}") from None
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = start + e.start
        line = data.count(b"\n", 0, offset) + 1
        raise InputError(
            f"corpus file {p} is not valid UTF-8: undecodable byte 0x{data[offset]:02x} at byte offset {offset} "
            f"(line {line})"
        ) from None


def _lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) for each non-blank line; only ``\\n`` (and ``\\r\\n``) split lines."""
    return [(i, line) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _parse_plain(text: str) -> list[Passage]:
    return [Passage(id=str(index), text=line.strip()) for index, (_, line) in enumerate(_lines(text))]


def _parse_tsv(p: Path, text: str) -> list[Passage]:
    passages: list[Passage] = []
    seen: dict[str, int] = {}
    for lineno, line in _lines(text):
        pid, tab, rest = line.partition("\t")
        if not tab:
            raise InputError(f"corpus {p}, line {lineno}: expected 'id<TAB>text', found no tab")
        pid, rest = pid.strip(), rest.strip()
        if not pid:
            raise InputError(f"corpus {p}, line {lineno}: empty id before the tab")
        if not rest:
            raise InputError(f"corpus {p}, line {lineno}: passage {pid!r} has empty text")
        _check_unique(p, lineno, pid, seen)
        passages.append(Passage(id=pid, text=rest))
    return passages


def _parse_jsonl(p: Path, text: str) -> list[Passage]:
    passages: list[Passage] = []
    seen: dict[str, int] = {}
    for index, (lineno, line) in enumerate(_lines(text)):
        where = f"corpus {p}, line {lineno}"
        try:
            obj: Any = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object, got {_json_type(obj)}")
        if "text" not in obj:
            raise InputError(f"{where}: missing required field 'text'")
        body = obj["text"]
        if not isinstance(body, str):
            raise InputError(f"{where}: field 'text' must be a string, got {_json_type(body)}")
        title = obj.get("title")
        if title is None:
            title = ""
        elif not isinstance(title, str):
            raise InputError(f"{where}: field 'title' must be a string, got {_json_type(title)}")
        body, title = body.strip(), title.strip()
        if not body and not title:
            raise InputError(f"{where}: passage has empty text and no title")
        pid = _jsonl_id(where, obj, index)
        _check_unique(p, lineno, pid, seen)
        passages.append(Passage(id=pid, text=body, title=title))
    return passages


def _jsonl_id(where: str, obj: dict[str, Any], index: int) -> str:
    for field in ("_id", "id"):
        if field in obj:
            raw = obj[field]
            if isinstance(raw, bool) or not isinstance(raw, (str, int)):
                raise InputError(f"{where}: field {field!r} must be a string or an integer, got {_json_type(raw)}")
            pid = str(raw).strip()
            if not pid:
                raise InputError(f"{where}: field {field!r} is empty")
            return pid
    return str(index)


def _check_unique(p: Path, lineno: int, pid: str, seen: dict[str, int]) -> None:
    if pid in seen:
        raise InputError(f"corpus {p}, line {lineno}: duplicate id {pid!r} (first used on line {seen[pid]})")
    seen[pid] = lineno


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --------------------------------------------------------------------------------------------------
# Embedding cache


def corpus_cache_key(model_fingerprint: str, corpus_path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest over the model fingerprint and the corpus file's bytes (read in chunks).

    Depends on content only: the same bytes at another path or with another mtime give the same key.
    """
    h = hashlib.sha256()
    h.update(_CACHE_KEY_VERSION + b"\0")
    fp = model_fingerprint.encode("utf-8")
    h.update(len(fp).to_bytes(8, "big") + fp)
    p = Path(corpus_path)
    try:
        hash_file(p, h)
    except FileNotFoundError:
        raise InputError(f"corpus file {p} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"corpus path {p} is a directory, not a file") from None
    except OSError as e:
        raise InputError(f"cannot read corpus file {p}: {e.strerror or e}") from None
    return h.hexdigest()


def _cache_file(cache_dir: str | os.PathLike[str], key: str) -> Path:
    if not _CACHE_KEY_RE.fullmatch(key):
        raise InputError(f"invalid cache key {key!r}: expected letters, digits, '_' or '-'")
    return Path(cache_dir) / f"{key}.npy"


def load_cached_embeddings(cache_dir: str | os.PathLike[str], key: str, n_rows: int) -> np.ndarray | None:
    """The cached ``(n_rows, dim)`` float embeddings for ``key``, or None when absent, unreadable or mismatched."""
    path = _cache_file(cache_dir, key)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(arr, np.ndarray):  # a .npz archive under the .npy name
        close = getattr(arr, "close", None)
        if close is not None:
            close()
        return None
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        return None
    if not np.issubdtype(arr.dtype, np.floating):
        return None
    return arr


def save_cached_embeddings(cache_dir: str | os.PathLike[str], key: str, embeddings: np.ndarray) -> Path:
    """Write ``embeddings`` to ``<cache_dir>/<key>.npy`` atomically (temp file + ``os.replace``); return the path.

    Creates ``cache_dir`` as needed. A failed write leaves no temp file behind.
    """
    path = _cache_file(cache_dir, key)
    arr = np.asarray(embeddings)
    if arr.ndim != 2:
        raise InputError(f"embeddings to cache must be 2-D (rows, dim), got shape {arr.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return path
