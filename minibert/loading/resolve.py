"""Model resolution: turn a name or path into a local model directory, offline first.

``resolve_model_dir`` looks, in order, at

1. a local directory (``~`` expanded);
2. minibert's own cache, ``$MINIBERT_HOME/models/<org>--<name>/`` (default ``~/.cache/minibert``),
   a plain model directory filled by :func:`minibert.loading.download.download`;
3. the Hugging Face cache, read offline with huggingface_hub's layout:
   ``<hub cache>/models--<org>--<name>/refs/main`` holds a revision, the files live in
   ``snapshots/<revision>/``. The hub cache is ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub`` — the same order
   huggingface_hub uses, so models fetched by sentence-transformers or transformers are found;
4. the Hugging Face Hub through ``huggingface_hub.snapshot_download`` — only when huggingface_hub is
   installed (extra ``minibert[hub]``, imported lazily) and ``HF_HUB_OFFLINE`` is not set — fetching only
   the files minibert reads (configs, ``model.safetensors``, tokenizer files, Pooling/Dense modules);

and otherwise raises :class:`~minibert.errors.ModelNotFoundError` listing every place tried.

Names follow sentence-transformers: a name without ``/`` is a short name of the
``sentence-transformers`` organisation (``all-MiniLM-L6-v2`` → ``sentence-transformers/all-MiniLM-L6-v2``).

Where it differs:

* sentence-transformers maps a short name to ``sentence-transformers/`` only for its own models and
  otherwise asks the hub; minibert always does (no network needed to decide), so
  ``bert-base-uncased`` means ``sentence-transformers/bert-base-uncased``. Use the full id for other
  organisations.
* hub ids are validated strictly (``org/name`` of ``[A-Za-z0-9._-]``, no ``..`` or ``--``, no leading or
  trailing ``.``/``-``): an invalid id is an :class:`~minibert.errors.InputError`, so a path where a
  hub id is expected can never reach outside a cache directory.
* only the ``main`` revision of the HF cache is read; if ``refs/main`` is missing, a lone snapshot is
  used. A snapshot counts only when it holds ``config.json``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InputError, InputTypeError, ModelNotFoundError
from .files import stat_failure

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SHORT_DEFAULT = DEFAULT_MODEL.split("/", 1)[1]  # how the CLI options name it
SHORT_NAME_ORG = "sentence-transformers"

# Files snapshot_download fetches: what minibert reads, never .bin / onnx / openvino / h5 / msgpack.
HUB_ALLOW_PATTERNS = [
    "*.json",
    "model.safetensors",
    "vocab.txt",
    "tokenizer.json",
    "*_Pooling/*",
    "*_Dense/config.json",
    "*_Dense/model.safetensors",
]
REQUIRED_FILES = ("config.json", "model.safetensors")

_ID_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?")
_REVISION = re.compile(r"[A-Za-z0-9._-]+")
_TRUE = {"1", "true", "yes", "on"}


# ---------------------------------------------------------------------------------------------- names


def canonical_model_id(name: str) -> str:
    """``org/name`` for a hub id or a short sentence-transformers name; InputError when it is not one."""
    if not isinstance(name, str):
        raise InputTypeError(f"a model name must be a str, got {type(name).__name__}")
    model_id = name.strip()
    if model_id and "/" not in model_id:
        model_id = f"{SHORT_NAME_ORG}/{model_id}"
    parts = model_id.split("/")
    valid = (
        len(parts) == 2
        and all(_ID_PART.fullmatch(part) for part in parts)
        and ".." not in model_id
        and "--" not in model_id
    )
    if not valid:
        raise InputError(
            f"{name!r} is not a model id: expected 'org/name' or a short sentence-transformers name, "
            "made of letters, digits, '.', '_' and '-' (no '..' or '--', not starting or ending with '.' or '-'); "
            "to load a local directory, pass its path"
        )
    return model_id


def env_path(var: str) -> Path | None:
    """The path an environment variable names (``~`` expanded), None when it is unset or blank."""
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser() if value else None


def minibert_home() -> Path:
    """minibert's cache root: ``$MINIBERT_HOME``, default ``~/.cache/minibert``."""
    return env_path("MINIBERT_HOME") or Path.home() / ".cache" / "minibert"


def minibert_model_dir(model_id: str) -> Path:
    """Where :func:`download` keeps a model: ``minibert_home()/models/<org>--<name>``."""
    org, name = canonical_model_id(model_id).split("/")
    return minibert_home() / "models" / f"{org}--{name}"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if (hub_cache := env_path("HF_HUB_CACHE")) is not None:
        return hub_cache
    if (hf_home := env_path("HF_HOME")) is not None:
        return hf_home / "hub"
    cache_root = env_path("XDG_CACHE_HOME") or Path.home() / ".cache"
    return cache_root / "huggingface" / "hub"


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def is_complete(model_dir: Path) -> bool:
    """Whether `model_dir` holds the files every model needs (:data:`REQUIRED_FILES`)."""
    return all((model_dir / name).is_file() for name in REQUIRED_FILES)


# ----------------------------------------------------------------------------------------- HF cache


def _hf_cache_lookup(model_id: str) -> tuple[Path | None, str]:
    """(the snapshot dir or None, what was found) for the HF cache; reads files only."""
    org, name = canonical_model_id(model_id).split("/")
    repo_dir = hf_cache_dir() / f"models--{org}--{name}"
    if not repo_dir.is_dir():
        return None, f"{repo_dir} does not exist"
    snapshots = repo_dir / "snapshots"
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        try:
            revision = ref.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            return None, f"{ref} is unreadable ({exc})"
        if not _REVISION.fullmatch(revision) or ".." in revision:
            return None, f"{ref} holds no valid revision ({revision[:60]!r})"
        snapshot = snapshots / revision
        if not snapshot.is_dir():
            return None, f"{ref} points at {revision}, but {snapshot} does not exist"
    else:
        try:
            candidates = sorted(p for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []
        except OSError as exc:
            return None, f"{snapshots} cannot be listed ({exc.strerror or exc})"
        if len(candidates) != 1:
            return None, f"{ref} is missing and {snapshots} holds {len(candidates)} snapshots (need exactly one)"
        snapshot = candidates[0]
    if not (snapshot / "config.json").is_file():
        return None, f"{snapshot} has no config.json"
    return snapshot, f"found {snapshot}"


def find_in_hf_cache(model_id: str) -> Path | None:
    """The cached ``main`` snapshot of `model_id` in the Hugging Face cache (offline), or None."""
    return _hf_cache_lookup(model_id)[0]


# ------------------------------------------------------------------------------------------------ hub


def hub_unavailable_reason() -> str | None:
    """Why the hub cannot be used now (None when it can)."""
    if hub_offline():
        return "skipped: HF_HUB_OFFLINE is set"
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        return "skipped: huggingface_hub is not installed (pip install 'minibert[hub]')"
    return None


def snapshot_download(model_id: str, **kwargs: object) -> Path:
    """huggingface_hub's snapshot_download of the files minibert reads (:data:`HUB_ALLOW_PATTERNS`)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model_id, allow_patterns=HUB_ALLOW_PATTERNS, **kwargs))


def short_error(exc: BaseException) -> str:
    """An exception as one short line: its type and the first 300 characters of its message."""
    text = " ".join(str(exc).split())[:300].rstrip(".")
    return f"{type(exc).__name__}: {text}"


def _from_hub(model_id: str) -> tuple[Path | None, str]:
    """(the snapshot dir fetched into the HF cache or None, what happened)."""
    if (reason := hub_unavailable_reason()) is not None:
        return None, reason
    try:
        snapshot = snapshot_download(model_id, cache_dir=str(hf_cache_dir()))
    except Exception as exc:
        return None, f"failed: {short_error(exc)}"
    if not (snapshot / "config.json").is_file():
        return None, f"fetched {snapshot}, but it has no config.json"
    return snapshot, f"fetched {snapshot}"


# ---------------------------------------------------------------------------------------- resolution


def _unfollowable(path: Path) -> str | None:
    """Why `path` names something that cannot be followed — a symbolic link loop, a link to nothing, a
    directory that cannot be searched — or None (it exists, or plainly does not)."""
    try:
        path.stat()
    except OSError as exc:
        why = stat_failure(path, exc)
        return None if why is None else f"{path} {why}"
    return None


def looks_like_path(text: str) -> bool:
    """Whether a model name is meant as a path (starts with /, ./, ../ or ~, or has more than one separator)."""
    if text.startswith(("/", "./", "../", "~")) or text in (".", ".."):
        return True
    seps = {os.sep, os.altsep} - {None}
    if os.sep != "/" and text.startswith((".\\", "..\\")):
        return True
    return sum(text.count(sep) for sep in seps) > 1


def resolve_model_dir(name_or_path: str | os.PathLike) -> Path:
    """The local model directory for a path, hub id or short name.

    Order: an existing local directory; minibert's cache; the Hugging Face cache; the hub (only with
    huggingface_hub installed and HF_HUB_OFFLINE unset). Raises ModelNotFoundError listing what was tried,
    InputError for a name that is neither a path nor a valid model id.
    """
    is_pathlike = not isinstance(name_or_path, str)
    try:
        text = os.fspath(name_or_path)
    except TypeError:
        text = None
    if not isinstance(text, str):
        raise InputTypeError(f"a model name or path must be a str or path, got {type(name_or_path).__name__}")
    if not text.strip():
        raise InputError("the model name is empty; pass a local directory, a hub id or a short name")
    local = Path(text).expanduser()
    if local.is_dir():
        return local.resolve()
    if local.exists():
        raise ModelNotFoundError(f"{local} is a file, not a model directory; pass the directory that holds config.json")
    problem = _unfollowable(local)
    if is_pathlike or looks_like_path(text):
        if problem is not None:
            raise ModelNotFoundError(f"model directory {problem}; pass an existing directory that holds config.json")
        raise ModelNotFoundError(
            f"model directory {local} does not exist; pass an existing directory that holds config.json "
            "and model.safetensors, or a hub id such as 'sentence-transformers/all-MiniLM-L6-v2'"
        )

    model_id = canonical_model_id(text)
    tried = [f"local directory: {problem or f'{local.absolute()} (does not exist)'}"]

    cached = minibert_model_dir(model_id)
    if (cached / "config.json").is_file():
        return cached
    what = "has no config.json" if cached.is_dir() else "does not exist"
    tried.append(f"minibert cache (MINIBERT_HOME): {cached} ({what})")

    snapshot, what = _hf_cache_lookup(model_id)
    if snapshot is not None:
        return snapshot
    tried.append(f"Hugging Face cache (HF_HUB_CACHE / HF_HOME): {what}")

    snapshot, what = _from_hub(model_id)
    if snapshot is not None:
        return snapshot
    tried.append(f"Hugging Face Hub {model_id} ({what})")

    short = model_id.removeprefix(f"{SHORT_NAME_ORG}/")
    places = "\n".join(f"  - {line}" for line in tried)
    raise ModelNotFoundError(
        f"model {text!r} ({model_id}) was not found. Tried:\n{places}\n"
        f"To fix: run `minibert download {short}` on a machine with internet (and copy {minibert_home()} "
        "here or point MINIBERT_HOME at it), install huggingface_hub and unset HF_HUB_OFFLINE to fetch it "
        "from the hub, or pass a local model directory."
    )
