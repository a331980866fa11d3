"""The server's published contract, fuzzed: schemathesis reads `GET /openapi.json` of a real `minibert serve` on
127.0.0.1 and sends it requests generated from the document — valid ones and ones the schema forbids, with and without
the API key, and wrong methods. Every response must be a status the document lists for the operation, with a body of
the documented schema; no 5xx; a forbidden request refused, a valid one accepted (the document is narrowed to the
served model's names, width, vocabulary and prompts, and to the server's limits); each answered within 5 s."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.serve.helpers import Server

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_every_response_keeps_the_published_contract(make_bert_dir, tmp_path):
    running = Server("--model", f"tiny={make_bert_dir('tiny')}", "--max-client-batch-size", "8", "--api-key", "k")
    try:
        fuzz = [
            str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color", "run", f"{running.url}/openapi.json",
            "--checks", "all", "--mode", "all", "--phases", "coverage,fuzzing", "--max-examples", "60",
            "--seed", "22", "--max-response-time", "5", "--workers", "1", "--header", "Authorization: Bearer k",
            "--report-dir", str(tmp_path),
        ]  # fmt: skip
        done = subprocess.run(fuzz, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0 and "No issues found" in done.stdout, done.stdout[-8000:] + done.stderr[-2000:]
        statuses = set(re.findall(r"minibert\.serve: POST /\S+ (\d+) ", "".join(running.log)))
        assert {"200", "400", "401", "413", "422"} <= statuses, statuses  # it reached every kind of answer
        assert httpx.get(f"{running.url}/openapi.json").json()["paths"]["/embed"]["post"]["security"]
    finally:
        assert running.stop() == 0
    assert not [line for line in running.log if "Traceback" in line or " 500 " in line]
