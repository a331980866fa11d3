"""The backend contract: what every encoder backend implements, and how the facade is given one.

A backend takes the tokenizer's :class:`~minibert.packing.PackedBatch` (real tokens end to end, ``cu_seqlens``
offsets) and returns float32 NumPy arrays on the host:

- :meth:`Encoder.embed` — the Pooling module's output, [B, C · modes]; when asked, each row L2-normalized (the
  facade asks only when nothing comes between pooling and Normalize, so a backend may fuse it into its pooling:
  :func:`minibert.encoder.pooling.normalize_while_pooling`);
- :meth:`Encoder.token_embeddings` — the last hidden states of the batch's tokens, [N, C];
- :meth:`Encoder.logits` — a cross-encoder's: its head (:mod:`minibert.encoder.head`) on each pair's [CLS] row,
  [B, labels] (the backend may compute the last layer for those rows alone; a bi-encoder's backend need not have it).

Dense, Normalize (when not fused), truncation and quantization run after, in the facade, the same for every
backend. The backends: :class:`minibert.encoder.cpu.NumpyEncoder`, :class:`minibert.encoder.gpu.GpuEncoder`; the
benchmark's ONNX Runtime contender (:mod:`minibert.bench.contenders`) is a third. ``SentenceTransformer(...,
encoder=factory)`` takes any :data:`EncoderFactory`: called once with the model's config and weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..loading.config import ModelConfig
from ..loading.weights import Weights
from ..packing import PackedBatch


class Encoder(Protocol):
    """A packed batch in, float32 rows out (module docstring). Safe to call from several threads at once."""

    def embed(self, batch: PackedBatch, normalize_rows: bool) -> np.ndarray:  # [N] tokens -> [B, C · modes]
        ...

    def token_embeddings(self, batch: PackedBatch) -> np.ndarray:  # [N] tokens -> [N, C]
        ...

    def logits(self, batch: PackedBatch) -> np.ndarray:  # a cross-encoder's [N] pair tokens -> [B, labels]
        ...


EncoderFactory = Callable[[ModelConfig, Weights], Encoder]
