"""Dynamic batching: requests queue up; one batcher packs their inputs into forward batches under a token budget.

Follows text-embeddings-inference's batching: a request's inputs join a queue, and a single worker takes inputs
from the front — across requests, in arrival order — until the next one would pass ``max_batch_tokens`` (real
tokens: the batch is packed, so padding costs nothing), sorts them by length and runs the forward off the event
loop (a worker thread; the NumPy forward uses every core). Each request waits for its own rows, which come back
in its own order. A request may span several batches, and a batch several requests.

A job is one request's sequences for one model, of either kind (:class:`~minibert.serve.served.ServedModel`): an
embedding model's texts, or a reranker's query-document pairs with their token types. A batch holds one model's
sequences only (a job of another model waits for a later batch), packed and run by that model's ``pack`` and
``forward``: for an embedding model the facade's embed stage without Normalize (Dense modules included), after
which each request runs its finish stage on its own rows — its ``dimensions``, then its normalization (TEI's
``normalize``, default: the model directory's) — the same stages, in the same order, as
``SentenceTransformer.encode``; for a reranker ``CrossEncoder.logits``, after which each request applies its
activation (``CrossEncoder.scores``), as ``CrossEncoder.predict`` does.

A request whose client has gone away (``is_disconnected``) when its first input reaches the front is dropped
before any of it is computed.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from .metrics import Metrics
from .served import Sequences, ServedModel


class ClientGone(Exception):
    """The request was dropped before it was computed: its client had disconnected."""


@dataclass(eq=False)
class Job:
    """One request's inputs for one model, and where their rows go."""

    served: ServedModel
    inputs: Sequences  # the inputs' token ids, special tokens included (and a reranker's token types)
    is_disconnected: Callable[[], Awaitable[bool]]
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    scheduled: int = 0  # inputs handed to a batch so far
    finished: int = 0  # inputs whose rows are in `rows`
    rows: np.ndarray | None = None  # [n, w]: embeddings before Normalize, or a reranker's logits

    @property
    def sequences(self) -> list[list[int]]:
        return self.inputs.token_ids


class Batcher:
    """The queue and its one worker (:meth:`run`, a task for the server's lifetime)."""

    def __init__(self, max_batch_tokens: int, metrics: Metrics) -> None:
        self.max_batch_tokens = max_batch_tokens
        self.metrics = metrics
        self._queue: collections.deque[Job] = collections.deque()
        self._wakeup = asyncio.Event()

    def submit(self, job: Job) -> asyncio.Future:
        """Queue `job`; the future gets its rows [n, w] (embeddings before Normalize, or logits)."""
        self._queue.append(job)
        self.metrics.queue_depth.inc(len(job.sequences))
        self._wakeup.set()
        return job.future

    async def run(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            taken = await self._take()
            if taken:
                await self._compute(taken)

    async def _take(self) -> list[tuple[Job, int]]:
        """(job, input index) pairs for the next batch: one model's inputs from the front of the queue, in order,
        within the token budget (always at least one input)."""
        taken: list[tuple[Job, int]] = []
        tokens = 0
        served = None
        for job in list(self._queue):
            if job.future.done():  # its handler gave up on it
                self._remove(job)
                continue
            if job.scheduled == 0 and await self._gone(job):
                self._drop(job)
                continue
            if served is None:
                served = job.served
            elif job.served is not served:
                continue
            while job.scheduled < len(job.sequences):
                length = len(job.sequences[job.scheduled])
                if taken and tokens + length > self.max_batch_tokens:
                    return taken
                taken.append((job, job.scheduled))
                tokens += length
                job.scheduled += 1
                self.metrics.queue_depth.dec()
            self._remove(job)
        return taken

    @staticmethod
    async def _gone(job: Job) -> bool:
        """Whether the job's client has disconnected; a connection that cannot tell counts as still there."""
        try:
            return await job.is_disconnected()
        except Exception:
            return False

    def _remove(self, job: Job) -> None:
        """Out of the queue; inputs it had not handed to a batch no longer wait."""
        self._queue.remove(job)
        self.metrics.queue_depth.dec(len(job.sequences) - job.scheduled)
        job.scheduled = len(job.sequences)

    def _drop(self, job: Job) -> None:
        self.metrics.dropped.inc()
        job.future.set_exception(ClientGone())
        self._remove(job)

    async def _compute(self, taken: list[tuple[Job, int]]) -> None:
        served = taken[0][0].served
        taken.sort(key=lambda item: len(item[0].sequences[item[1]]), reverse=True)  # by length, as encode() does
        typed = taken[0][0].inputs.token_types is not None  # a reranker's pairs (one model: all jobs alike)
        types = [job.inputs.token_types[i] for job, i in taken] if typed else None
        batch = served.pack([job.sequences[i] for job, i in taken], types)
        self.metrics.batch_size.observe(len(taken))
        self.metrics.batch_tokens.observe(len(batch.input_ids))
        try:
            rows = await asyncio.to_thread(served.forward, batch)  # [B, w]
        except Exception as exc:  # a bug or a resource failure: every request in the batch gets it, not a hang
            for job in {job for job, _ in taken}:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        self.metrics.tokens.labels(served.name).inc(len(batch.input_ids))
        for (job, i), row in zip(taken, rows, strict=True):
            if job.future.done():
                continue
            if job.rows is None:
                job.rows = np.empty((len(job.sequences), rows.shape[1]), dtype=np.float32)
            job.rows[i] = row
            job.finished += 1
            if job.finished == len(job.sequences):
                job.future.set_result(job.rows)
