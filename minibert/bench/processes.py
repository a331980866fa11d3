"""The measurements that need a fresh process: cold start (spawn to exit) and peak RSS (minibert.bench.rss_child).

The cold starts are `python -c` one-liners, so the timed process imports nothing but the contender itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .contenders import MINIBERT, REFERENCE
from .timing import wall_seconds

_COLD_START = {
    MINIBERT: "import sys, minibert\nminibert.SentenceTransformer(sys.argv[1]).encode(['{text}'])",
    REFERENCE: (
        "import sys\nfrom sentence_transformers import SentenceTransformer\n"
        "SentenceTransformer(sys.argv[1], device='cpu').encode(['{text}'])"
    ),
}


def _run_child(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return result


def cold_start_seconds(contender: str, model_dir: Path, repeats: int = 3) -> list[float]:
    """Wall seconds from spawning `python -c` (import, load, encode one sentence) to its exit, `repeats` times."""
    code = _COLD_START[contender].format(text="A cold start encodes one sentence.")
    return [wall_seconds(lambda: _run_child("-c", code, str(model_dir))) for _ in range(repeats)]


def peak_rss(model_dir: Path, texts: list[str], batch_size: int, repeats: int = 3) -> dict:
    """A fresh process encodes `texts` with minibert `repeats` times; returns what minibert.bench.rss_child
    prints: bytes after loading, after each repeat, and the peak."""
    with tempfile.TemporaryDirectory(prefix="minibert-bench-") as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        result = _run_child(
            "-m", "minibert.bench.rss_child", str(model_dir), str(texts_file), str(batch_size), str(repeats)
        )
    return json.loads(result.stdout.strip().splitlines()[-1])
