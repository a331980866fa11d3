"""What the corpus-job tests share: running the command line and checking its one error line."""

from __future__ import annotations

import subprocess

from tests.helpers import MINIBERT


def run_cli(*args: str, timeout: int = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(MINIBERT), *args], capture_output=True, text=True, timeout=timeout, env=env)


def embed(model_dir, corpus, out, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("embed", "--model", str(model_dir), "--input", str(corpus), "--output", str(out), *extra)


def one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """The command failed with status 1 and one ``minibert: error:`` line (besides the progress bar) holding each
    of `fragments`: a clear refusal, not a traceback."""
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("embedding:")]  # the bar
    assert len(lines) == 1 and lines[0].startswith("minibert: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
