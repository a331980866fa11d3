"""Every benchmark script answers --help and runs its --smoke configuration (CPU, Triton interpreter).

The GPU numbers need a GPU; these runs prove the scripts' code paths (corpus lengths, contenders, parity
checks against the reference, table and CSV output) work, so a GPU session can spend its time measuring.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPTS = ["bench_attention.py", "bench_pooling.py", "bench_e2e.py", "encode_speed.py", "parity_report.py"]
SMOKE = ["bench_attention.py", "bench_pooling.py", "bench_e2e.py"]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


@pytest.mark.parametrize("script", SMOKE)
def test_smoke_run(script, real_model_dir):
    result = run(script, "--smoke")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "max |Δ|" in result.stdout  # every script checks its contenders against a reference
    assert "Traceback" not in result.stderr
