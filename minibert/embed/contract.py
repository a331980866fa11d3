"""What the corpus job and its runners agree on: the settings that determine the rows, and what a runner hands over.

:func:`minibert.embed.job.run_embed_job` owns the job; a :class:`Runner` only produces each shard's rows
(:class:`~minibert.embed.local.LocalRunner` in this process, :class:`~minibert.embed.ray.RayRunner` through Ray).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..errors import positive_int
from ..quantization import check_precision
from .inputs import CorpusInput


@dataclass(frozen=True)
class EmbedSettings:
    """What determines the rows besides the model and the input."""

    batch_size: int = 32
    shard_size: int = 10_000
    precision: str = "float32"
    normalize: bool = False

    def checked(self) -> EmbedSettings:
        return EmbedSettings(
            batch_size=positive_int("--batch-size", self.batch_size),
            shard_size=positive_int("--shard-size", self.shard_size),
            precision=check_precision(self.precision),
            normalize=bool(self.normalize),
        )


class Shard(NamedTuple):
    """One shard as a runner hands it over: its passages' ids and a call that returns their float32 rows [n, d] (the
    model's embeddings, not quantized), calling ``advance(k)`` as k rows are done; not called for a shard already
    written."""

    ids: list[str]
    rows: Callable[[Callable[[int], None]], np.ndarray]


class Runner(Protocol):
    """What computes the rows of a job (:class:`~minibert.embed.local.LocalRunner`,
    :class:`~minibert.embed.ray.RayRunner`)."""

    # {} or {"runner": NAME}; joins the job's description: a job resumes only with the runner that began it (and
    # search / eval take the "runner" key from the manifest: it does not determine the rows beyond float rounding)
    description: dict[str, Any]

    def check(self, source: CorpusInput) -> None:
        """InputError for an input this runner cannot read; called before the output is touched."""

    def shards(self, source: CorpusInput, settings: EmbedSettings, identity: str) -> Iterator[Shard]:
        """The input's shards of ``settings.shard_size`` passages, in order; `identity` is the model's
        (:func:`~minibert.loading.identity.model_identity`), for runners that load it elsewhere."""

    def report(self) -> dict[str, Any]:
        """What the finished manifest and the summary say about how the rows were computed ({}: nothing)."""
