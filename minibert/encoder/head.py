"""A cross-encoder's classification head on the [CLS] rows, as transformers computes it (dropout off).

``BertForSequenceClassification``: the pooler ``tanh(h_CLS · W + b)``, then ``classifier``.
``ElectraForSequenceClassification``: ``classifier.dense``, exact GELU, ``classifier.out_proj``. Both are
dense → activation → out (:class:`~minibert.loading.weights.HeadWeights`); the activation is the config's
(:class:`~minibert.loading.config.HeadConfig`). Shapes: B = pairs, C = hidden size, L = labels.
"""

from __future__ import annotations

import numpy as np

from ..loading.config import HeadConfig
from ..loading.weights import HeadWeights
from .activations import ACTIVATION_FUNCTIONS


def logits(cls_rows: np.ndarray, head: HeadWeights, config: HeadConfig) -> np.ndarray:
    """[B, C] hidden states of the [CLS] tokens -> [B, L] float32 logits."""
    hidden = cls_rows @ head.dense_weight + head.dense_bias  # [B, C]
    hidden = ACTIVATION_FUNCTIONS[config.activation](hidden)  # [B, C]
    return (hidden @ head.out_weight + head.out_bias).astype(np.float32)  # [B, L]
