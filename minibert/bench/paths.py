"""Where the bench runs from and writes to: the source checkout it may sit in, its folder under MINIBERT_HOME."""

from __future__ import annotations

from pathlib import Path

from ..loading.resolve import minibert_home

REPO_ROOT = Path(__file__).resolve().parents[2]


def in_checkout() -> bool:
    """True when minibert runs from a source checkout (benchmarks/ beside the package)."""
    return (REPO_ROOT / "benchmarks").is_dir() and (REPO_ROOT / "pyproject.toml").is_file()


def bench_home() -> Path:
    """$MINIBERT_HOME/bench: the built random-init models, the stdlib corpus, the ONNX exports."""
    return minibert_home() / "bench"


def default_csv() -> Path:
    """benchmarks/results.csv (the long-format rows of every benchmark) in a checkout, else ./minibert-bench.csv."""
    return REPO_ROOT / "benchmarks" / "results.csv" if in_checkout() else Path.cwd() / "minibert-bench.csv"


def default_plot(name: str = "cpu") -> Path:
    """benchmarks/<name>.png in a checkout, else ./minibert-bench.png (./minibert-bench-<what follows "cpu-">.png
    for another name)."""
    if in_checkout():
        return REPO_ROOT / "benchmarks" / f"{name}.png"
    suffix = name.removeprefix("cpu").removeprefix("-")
    return Path.cwd() / (f"minibert-bench-{suffix}.png" if suffix else "minibert-bench.png")
