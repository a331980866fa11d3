"""The embedding model tests/embed's job and fault tests run on: a tiny random-init BERT, mean pooling, normalized."""

from __future__ import annotations

from pathlib import Path

import pytest

import minibert
from minibert.testing import legacy_pooling


@pytest.fixture(scope="module")
def model_dir(make_bert_dir) -> Path:
    return make_bert_dir("tiny", pooling=legacy_pooling("mean", 32), normalize=True)


@pytest.fixture(scope="module")
def model(model_dir):
    return minibert.SentenceTransformer(model_dir)
