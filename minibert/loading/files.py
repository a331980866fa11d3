"""Reading files safely: what a path is, why it cannot be read, JSON with named errors, content hashes.

Model directories come from users and from caches, so every reader here says which file failed and why (a
missing file, a dangling link, a symlink loop, a directory, a FIFO that would block) as a
:class:`~minibert.errors.ModelLoadError`, instead of an ``OSError`` or a hang. :func:`hash_file` is the one
streaming SHA-256 reader (the download's checksum, the embedding cache's key).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError

HASH_CHUNK = 1 << 20


def present(path: Path) -> bool:
    """Whether a directory entry named `path` exists, even one that cannot be followed (a symlink loop or a
    dangling link): such a file is then reported by :func:`regular_file_size`, not silently skipped."""
    return os.path.lexists(path)


def stat_failure(path: Path, exc: OSError) -> str | None:
    """What a failed ``path.stat()`` means, in words that follow the path; None when it plainly does not exist."""
    if isinstance(exc, FileNotFoundError):
        return f"is a symbolic link to {os.readlink(path)!r}, which does not exist" if path.is_symlink() else None
    if exc.errno == errno.ELOOP:
        return f"is, or goes through, a symbolic link loop ({exc.strerror}); it cannot be read"
    return f"cannot be read ({exc.strerror or exc})"


def regular_file_size(path: Path) -> int:
    """The size of the regular file at `path` (symlinks followed), or a ModelLoadError that names the file and
    says why it cannot be read: missing, a dangling link, a symlink loop, a directory, or a FIFO / socket /
    device (which could block a read forever or never end)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ModelLoadError(f"{path}: {stat_failure(path, exc) or 'file is missing'}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ModelLoadError(f"{path}: is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise ModelLoadError(f"{path}: is not a regular file (a FIFO, socket or device); minibert reads only files")
    return info.st_size


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning every failure into a ModelLoadError that names the file."""
    if regular_file_size(path) == 0:
        raise ModelLoadError(f"{path}: file is empty (0 bytes), expected JSON")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot be read ({exc})") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """Parse a JSON file that must hold an object; every failure is a ModelLoadError naming the file."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def hash_file(path: Path, digest: Any | None = None) -> Any:
    """`digest` (a new SHA-256 when None) updated with the bytes of the file at `path`, read in 1 MiB chunks.
    OSError propagates: callers say what the file was for."""
    digest = hashlib.sha256() if digest is None else digest
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest
