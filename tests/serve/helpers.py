"""A real `minibert serve` process for the server's tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time

import httpx

from tests.helpers import MINIBERT


class Server:
    """A `minibert serve --port 0 …` process: its URL, its log lines, and a way to stop it."""

    def __init__(self, *args: str, env: dict | None = None) -> None:
        self.process = subprocess.Popen(
            [str(MINIBERT), "serve", "--port", "0", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        first = self.process.stderr.readline()
        match = re.search(r"at (http://[\d.]+:\d+)", first)
        assert match, f"no address in {first!r}"
        self.url = match.group(1)
        self.log: list[str] = []
        threading.Thread(target=lambda: self.log.extend(self.process.stderr), daemon=True).start()
        deadline = time.monotonic() + 120
        while httpx.get(f"{self.url}/health").status_code != 200:
            assert self.process.poll() is None and time.monotonic() < deadline, "".join(self.log)
            time.sleep(0.05)

    def post(self, path: str, body: object, **kwargs) -> httpx.Response:
        """POST `body` as JSON, non-ASCII characters as \\u escapes (so a lone surrogate can be sent, as any JSON
        encoder that escapes would send it)."""
        headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
        return httpx.post(f"{self.url}{path}", content=json.dumps(body), headers=headers, timeout=120, **kwargs)

    def metric(self, name: str, headers: dict | None = None) -> float:
        text = httpx.get(f"{self.url}/metrics", headers=headers).text
        values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
        return sum(values)

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)
