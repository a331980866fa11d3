"""The server's published contract, fuzzed: schemathesis reads `GET /openapi.json` of a real `minibert serve` on
127.0.0.1 and sends it requests generated from the document — valid ones and ones the schema forbids, with and without
the API key, and wrong methods. Every response must be a status the document lists for the operation, with a body of
the documented schema; no 5xx; a forbidden request refused, a valid one accepted (the document is narrowed to the
served models' names, width, vocabulary and prompts, and to the server's limits); each answered within 5 s. The
server serves an embedding model and a reranker, so the embedding and the rerank routes are all fuzzed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.serve.helpers import Server

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_every_response_keeps_the_published_contract(make_bert_dir, make_cross_encoder_dir, tmp_path):
    running = Server(
        "--model", f"tiny={make_bert_dir('tiny')}", "--model", f"rerank={make_cross_encoder_dir('bert', 'tiny')}",
        "--max-client-batch-size", "8", "--max-client-rerank-documents", "8", "--api-key", "k",
    )  # fmt: skip
    try:
        fuzz = [
            str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color", "run", f"{running.url}/openapi.json",
            "--checks", "all", "--mode", "all", "--phases", "coverage,fuzzing", "--max-examples", "60",
            "--seed", "22", "--max-response-time", "5", "--workers", "1", "--header", "Authorization: Bearer k",
            "--report-dir", str(tmp_path),
        ]  # fmt: skip
        done = subprocess.run(fuzz, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0 and "No issues found" in done.stdout, done.stdout[-8000:] + done.stderr[-2000:]
        log = "".join(running.log)
        for route in ("/embed", "/v1/embeddings", "/rerank", "/v1/rerank"):  # each reached every kind of answer
            statuses = set(re.findall(rf"minibert\.serve: POST {route} (\d+) ", log))
            assert {"200", "400", "401", "413", "422"} <= statuses, (route, statuses)
        assert httpx.get(f"{running.url}/openapi.json").json()["paths"]["/embed"]["post"]["security"]
    finally:
        assert running.stop() == 0
    assert not [line for line in running.log if "Traceback" in line or " 500 " in line]
