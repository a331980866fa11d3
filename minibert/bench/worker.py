"""One benchmark contender in a process of its own: ``python -m minibert.bench.worker SPEC`` and its parent's handle.

Measured as deployed: each runtime alone in its process — its thread pools, its allocator and its BLAS its own —
while the other contenders' processes sit blocked on a pipe, idle. In one process a runtime's spinning or waking
thread pool (torch's OpenMP threads, OpenBLAS's workers, ONNX Runtime's) slows whichever contender runs next.

SPEC is a JSON object: ``task`` (``"embed"`` or ``"rerank"``), ``contender`` (a name of
:mod:`minibert.bench.contenders`), ``model_dir``, ``batch_size`` and ``cache_dir`` (ONNX Runtime's exports). The
child builds the contender and writes one pickled reply on its protocol pipe — ``("ready", None)`` or
``("unavailable", why)`` — then answers each pickled ``(method, args)`` it reads with ``("ok", (result, seconds))``,
the call's wall seconds timed in the child (so the pipe is not counted: it would be, at a few milliseconds a query),
or ``("error", traceback)``. The protocol runs on the stdout the
child was started with; the child's own file descriptor 1 is pointed at stderr, so a library that prints cannot
corrupt it. Both ends are this package's code, so the pipe carries pickles.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from .contenders import (
    MINIBERT,
    ONNX,
    REFERENCE,
    Contender,
    CrossContender,
    Unavailable,
    available,
    max_gaps,
    minibert_contender,
    minibert_cross_contender,
    onnx_contender,
    onnx_cross_contender,
    reference_contender,
    reference_cross_contender,
)
from .timing import alternating, call_seconds

METHODS = {"embed": ("encode",), "rerank": ("predict", "rank")}  # what each task's contenders answer


def build_contender(spec: dict[str, Any]) -> Contender | CrossContender:
    """The contender SPEC names, built in this process (raises :class:`Unavailable`)."""
    task, name = spec.get("task"), spec["contender"]
    if task not in METHODS:
        raise ValueError(f"unknown task {task!r}")
    if name not in CONTENDERS:
        raise ValueError(f"unknown contender {name!r}")
    model_dir, batch_size = Path(spec["model_dir"]), int(spec["batch_size"])
    if task == "embed":
        if name == MINIBERT:
            from ..model import SentenceTransformer

            return minibert_contender(SentenceTransformer(model_dir), batch_size)
        if name == REFERENCE:
            return reference_contender(model_dir, batch_size)
        return onnx_contender(model_dir, batch_size, Path(spec["cache_dir"]))
    if name == MINIBERT:
        from ..cross_encoder import CrossEncoder

        return minibert_cross_contender(CrossEncoder(model_dir), batch_size)
    if name == REFERENCE:
        return reference_cross_contender(model_dir, batch_size)
    return onnx_cross_contender(model_dir, batch_size, Path(spec["cache_dir"]))


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
            if method not in METHODS[spec["task"]]:
                raise ValueError(f"unknown method {method!r}")
            function = getattr(contender, method)
            start = time.perf_counter()
            result = function(*args)
            reply("ok", (result, time.perf_counter() - start))  # as timing.wall_seconds times a call
        except Exception:  # handed to the parent, which raises it there
            reply("error", traceback.format_exc())


def main() -> None:
    replies = os.fdopen(os.dup(1), "wb")  # the protocol keeps the original stdout
    os.dup2(2, 1)  # anything printed goes to stderr
    sys.stdout = sys.stderr
    _serve(json.loads(sys.argv[1]), replies, sys.stdin.buffer)


class ContenderProcess:
    """The parent's handle on one worker: :meth:`call` runs a contender's method there and returns its result and
    the seconds it took there."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import minibert

        env = dict(os.environ)
        package_root = str(Path(minibert.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.name, self.task = spec["contender"], spec["task"]
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

    def call(self, method: str, *args: Any) -> tuple[Any, float]:
        """(result, seconds in the worker) of the contender's `method` on `args`."""
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

    def contender(self) -> Contender | CrossContender:
        """The contender, its calls running in the worker (:class:`WorkerCall`: timed there)."""
        if self.task == "embed":
            return Contender(self.name, WorkerCall(self, "encode"))
        return CrossContender(self.name, WorkerCall(self, "predict"), WorkerCall(self, "rank"))


CONTENDERS = (MINIBERT, REFERENCE, ONNX)
SETTLE_S = 0.5  # idle seconds before each contender's round: the previous one's thread pools stop spinning


@contextlib.contextmanager
def worker_contenders(
    task: str, model_dir: Path, batch_size: int, cache_dir: Path, unavailable: dict[str, str]
) -> Iterator[list[Contender | CrossContender]]:
    """The contenders of `task`, in order, each in a worker (one that cannot run here is named in `unavailable`
    instead); the workers exit when the block does."""
    spec = {"task": task, "model_dir": str(model_dir), "batch_size": batch_size, "cache_dir": str(cache_dir)}
    loaders = [(name, lambda name=name: ContenderProcess({**spec, "contender": name})) for name in CONTENDERS]
    processes: list[ContenderProcess] = available(loaders, unavailable)
    try:
        yield [process.contender() for process in processes]
    finally:
        for process in processes:
            process.close()


def gaps_and_rates(
    calls: Mapping[str, Callable[[list], Any]], items: list, parity: list, rounds: int, progress: str
) -> tuple[dict[str, float | None], dict[str, list[float]]]:
    """Each contender's max |Δ| against sentence-transformers on `parity` (also the warm-up), then its rate on
    `items` (items per second of one call) over `rounds` alternating rounds, each after :data:`SETTLE_S` idle."""
    max_diff = max_gaps({name: call(parity) for name, call in calls.items()})
    rates = {name: lambda call=call: len(items) / call_seconds(call, items) for name, call in calls.items()}
    return max_diff, alternating(rates, rounds, progress, pause_s=SETTLE_S)


class WorkerCall:
    """One method of a worker's contender: called, its result; :meth:`seconds`, how long the worker took
    (:func:`~minibert.bench.timing.call_seconds` uses it)."""

    def __init__(self, process: ContenderProcess, method: str) -> None:
        self.process, self.method = process, method

    def __call__(self, *args: Any) -> Any:
        return self.process.call(self.method, *args)[0]

    def seconds(self, *args: Any) -> float:
        return self.process.call(self.method, *args)[1]


if __name__ == "__main__":
    main()
