"""What a benchmark row says about where it ran: the CPU, the versions, the checkout's commit, the sgemm peak."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from .paths import REPO_ROOT, in_checkout
from .timing import wall_seconds


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_counts() -> tuple[int, int]:
    """(physical cores, hardware threads); cores are distinct (physical id, core id) pairs of /proc/cpuinfo."""
    threads = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        physical = core = ""
        for line in [*Path("/proc/cpuinfo").read_text().splitlines(), ""]:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "physical id":
                physical = value
            elif key == "core id":
                core = value
            elif not key and core:
                cores.add((physical, core))
                physical = core = ""
    except OSError:
        pass
    return (len(cores) or threads), threads


def machine_description() -> str:
    cores, threads = cpu_counts()
    return f"{cpu_name()}, {cores} cores, {threads} threads"


def versions() -> str:
    """Versions of what the contenders run on, as installed."""
    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        parts.append(f"{blas['name']} {blas['version']}")
    except Exception:  # older numpy has no mode="dicts"; the BLAS is then simply not named
        pass
    for distribution in ("torch", "transformers", "sentence-transformers", "onnxruntime"):
        try:  # installed, whether or not this process imported it (the contenders run in workers)
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        torch = sys.modules.get("torch") if distribution == "torch" else None
        threads = f" ({torch.get_num_threads()} threads here)" if torch is not None else ""
        parts.append(f"{distribution} {version}{threads}")
    from ..version import __version__

    parts.append(f"minibert {__version__}{checkout_commit()}")
    return ", ".join(parts)


def checkout_commit() -> str:
    """' (commit abc1234[, modified])' when running from a git checkout, so rows from different commits differ."""
    if not in_checkout():
        return ""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no", "--", "minibert"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" (commit {commit}{', modified' if dirty else ''})" if commit else ""


def sgemm_peak_gflops(hidden_size: int, intermediate_size: int, rows: int = 4096, repeats: int = 5) -> float:
    """Best GFLOP/s of np.matmul over BERT-shaped float32 products: [rows, C]@[C, 3C], [rows, C]@[C, F],
    [rows, F]@[F, C]; each timed `repeats` times after one untimed call."""
    C, F = hidden_size, intermediate_size
    rng = np.random.default_rng(0)
    best = 0.0
    for k, n in ((C, 3 * C), (C, F), (F, C)):
        a = rng.standard_normal((rows, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        product = functools.partial(np.matmul, a, b, out=np.empty((rows, n), dtype=np.float32))
        product()
        for _ in range(repeats):
            best = max(best, 2 * rows * k * n / wall_seconds(product) / 1e9)
    return best
