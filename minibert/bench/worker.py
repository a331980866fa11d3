"""One benchmark contender in a process of its own: ``python -m minibert.bench.worker SPEC`` and its parent's handle.

Measured as deployed: each runtime alone in its process — its thread pools, its allocator and its BLAS its own —
while the other contenders' processes sit blocked on a pipe, idle. In one process a runtime's spinning or waking
thread pool (torch's OpenMP threads, OpenBLAS's workers, ONNX Runtime's) slows whichever contender runs next.

SPEC is a JSON object: ``task`` (``"rerank"``), ``contender`` (a name of :mod:`minibert.bench.contenders`),
``model_dir``, ``batch_size`` and ``cache_dir`` (ONNX Runtime's exports). The child builds the contender and writes
one pickled reply on its protocol pipe — ``("ready", None)`` or ``("unavailable", why)`` — then answers each pickled
``(method, args)`` it reads with ``("ok", result)`` or ``("error", traceback)``. The protocol runs on the stdout the
child was started with; the child's own file descriptor 1 is pointed at stderr, so a library that prints cannot
corrupt it. Both ends are this package's code, so the pipe carries pickles.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

from .contenders import (
    MINIBERT,
    ONNX,
    REFERENCE,
    CrossContender,
    Unavailable,
    minibert_cross_contender,
    onnx_cross_contender,
    reference_cross_contender,
)

METHODS = ("predict", "rank")  # what a rerank contender answers


def build_contender(spec: dict[str, Any]) -> CrossContender:
    """The contender SPEC names, built in this process (raises :class:`Unavailable`)."""
    if spec.get("task") != "rerank":
        raise ValueError(f"unknown task {spec.get('task')!r}")
    name, model_dir, batch_size = spec["contender"], Path(spec["model_dir"]), int(spec["batch_size"])
    if name == MINIBERT:
        from ..cross_encoder import CrossEncoder

        return minibert_cross_contender(CrossEncoder(model_dir), batch_size)
    if name == REFERENCE:
        return reference_cross_contender(model_dir, batch_size)
    if name == ONNX:
        return onnx_cross_contender(model_dir, batch_size, Path(spec["cache_dir"]))
    raise ValueError(f"unknown contender {name!r}")


def _serve(spec: dict[str, Any], replies: BinaryIO, requests: BinaryIO) -> None:
    def reply(*message: object) -> None:
        pickle.dump(message, replies)
        replies.flush()

    try:
        contender = build_contender(spec)
    except Unavailable as exc:
        reply("unavailable", str(exc))
        return
    reply("ready", None)
    while True:
        try:
            method, args = pickle.load(requests)
        except EOFError:  # the parent closed the pipe: done
            return
        try:
            if method not in METHODS:
                raise ValueError(f"unknown method {method!r}")
            reply("ok", getattr(contender, method)(*args))
        except Exception:  # handed to the parent, which raises it there
            reply("error", traceback.format_exc())


def main() -> None:
    replies = os.fdopen(os.dup(1), "wb")  # the protocol keeps the original stdout
    os.dup2(2, 1)  # anything printed goes to stderr
    sys.stdout = sys.stderr
    _serve(json.loads(sys.argv[1]), replies, sys.stdin.buffer)


class ContenderProcess:
    """The parent's handle on one worker: :meth:`call` runs a contender's method there and returns its result."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import minibert

        env = dict(os.environ)
        package_root = str(Path(minibert.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.name = spec["contender"]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "minibert.bench.worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        status, value = self._read()
        if status == "unavailable":
            self.close()
            raise Unavailable(value)

    def _read(self) -> tuple[str, Any]:
        try:
            return pickle.load(self._process.stdout)
        except EOFError:
            code = self._process.wait()
            raise RuntimeError(f"the {self.name} benchmark process exited (code {code}); its stderr is above") from None

    def call(self, method: str, *args: Any) -> Any:
        pickle.dump((method, args), self._process.stdin)
        self._process.stdin.flush()
        status, value = self._read()
        if status == "error":
            raise RuntimeError(f"{self.name} failed in its benchmark process:\n{value}")
        return value

    def close(self) -> None:
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        self._process.wait()

    def contender(self) -> CrossContender:
        """A contender whose calls run in this process."""
        return CrossContender(
            self.name,
            lambda pairs: self.call("predict", pairs),
            lambda query, documents: self.call("rank", query, documents),
        )


if __name__ == "__main__":
    main()
