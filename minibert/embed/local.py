"""The local runner of ``minibert embed``: the rows of each shard computed in this process, ``batch_size`` at a time.

Every batch is ``model.encode_document`` of ``batch_size`` consecutive passages of a shard (:func:`embed_texts`, the
job's one rule for a batch, which the Ray actors follow too), so a row's value depends only on the input, the model
and the two sizes the manifest records: a resumed job's rows equal an uninterrupted one's bit for bit. A shard the
job finds already written is never computed.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..retrieval.corpus import Passage
from .contract import EmbedSettings, Shard
from .inputs import CorpusInput, iter_passages


def embed_texts(
    model: Any, texts: list[str], settings: EmbedSettings, advance: Callable[[int], None] = lambda n: None
) -> np.ndarray:
    """float32 [n, d]: `texts` embedded as documents, ``batch_size`` at a time (the job's one rule for a batch)."""
    rows = []
    for start in range(0, len(texts), settings.batch_size):
        batch = texts[start : start + settings.batch_size]
        rows.append(
            model.encode_document(batch, batch_size=settings.batch_size, normalize_embeddings=settings.normalize)
        )
        advance(len(batch))
    return np.concatenate(rows) if rows else np.empty((0, model.get_embedding_dimension()), np.float32)


def shards_of(passages: Iterator[Passage], size: int) -> Iterator[list[Passage]]:
    """The passages in consecutive lists of `size` (the last one shorter)."""
    while chunk := list(itertools.islice(passages, size)):
        yield chunk


class LocalRunner:
    """Computes a job's rows with `model` (a :class:`~minibert.model.SentenceTransformer`) in this process."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.description: dict[str, Any] = {}  # the local job's manifest names no runner

    def check(self, source: CorpusInput) -> None:
        """Every input format is read here."""

    def shards(self, source: CorpusInput, settings: EmbedSettings, identity: str) -> Iterator[Shard]:
        for passages in shards_of(iter_passages(source), settings.shard_size):
            texts = [p.embed_text for p in passages]
            yield Shard([p.id for p in passages], functools.partial(embed_texts, self.model, texts, settings))

    def report(self) -> dict[str, Any]:
        return {}
