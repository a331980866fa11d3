"""The layout ARCHITECTURE.md describes: the Triton kernels in the checkout's top-level kernels/, one per file, shipped
inside the wheel as minibert.kernels (setuptools' package-dir mapping), so the top-level import name `kernels` —
a PyPI distribution that transformers probes for — is not taken by an installed minibert."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers import ROOT


def test_transformers_still_imports_and_runs_beside_minibert_kernels():
    """The kernels live in the checkout's top-level kernels/ and import as minibert.kernels. From the repository
    root, where that folder is importable as `kernels` too, transformers (which probes for the PyPI distribution
    `kernels`) must not mistake it for that library, and keeps working with minibert's kernels imported."""
    code = """
import minibert.kernels.attention, minibert.kernels.pooling, torch
from transformers import BertConfig, BertModel
from transformers.utils.import_utils import is_kernels_available
model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37))
with torch.inference_mode():
    out = model(input_ids=torch.tensor([[101, 2000, 102]])).last_hidden_state
shape = 'x'.join(map(str, out.shape))
print(minibert.kernels.attention.__file__, is_kernels_available(), shape, bool(torch.isfinite(out).all()))
"""
    done = subprocess.run(  # from the repository root: the checkout's folders come first on sys.path
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "TRITON_INTERPRET": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    kernel_file, kernels_available, shape, finite = done.stdout.split()[-4:]
    assert Path(kernel_file).parent == ROOT / "kernels"
    assert (kernels_available, shape, finite) == ("False", "1x3x32", "True")


def test_the_wheel_ships_the_kernels_as_minibert_kernels(tmp_path):
    """The package-dir mapping: the wheel holds minibert/kernels/*.py and no top-level kernels package."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("minibert-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    kernel_files = {Path(name).name for name in names if name.startswith("minibert/kernels/")}
    assert {"__init__.py", "attention.py", "pooling.py", "checks.py"} <= kernel_files
    assert not [name for name in names if name.startswith("kernels/")]
    # every module of the package's rooms is shipped (pyproject lists the packages one by one)
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "minibert").rglob("*.py")}
    assert not modules - set(names), f"missing from the wheel: {sorted(modules - set(names))}"
