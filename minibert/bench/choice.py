"""What a --model value names: a random-init BERT shape (built once under the bench folder) — an embedding model, or
with --task rerank a cross-encoder — or any name or directory minibert resolves (downloaded with
minibert.loading.download.download when it is a model id not found locally)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelNotFoundError
from ..loading.config import load_config
from ..loading.download import download
from ..loading.resolve import DEFAULT_MODEL, looks_like_path, resolve_model_dir
from ..testing.models import build_cross_encoder_dir, build_random_model, legacy_pooling
from ..testing.tables import ACTIVATION_IDENTITY, BERT_SHAPES
from .options import RERANK_DEFAULT
from .paths import bench_home

# Special --model values: random-init BERT shapes (speed does not depend on the weights' values).
RANDOM_SHAPES = {
    "bert-base-shape": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
RANDOM_SEED = 0
RANDOM_MAX_SEQ_LENGTH = 256
# Special --model values of --task rerank: random-init BertForSequenceClassification shapes (minibert.testing's
# BERT_SHAPES), one label, raw logits (Identity) as the ms-marco cross-encoders score, max_length 512.
RANDOM_CROSS_ENCODERS = {RERANK_DEFAULT: "minilm-l6"}


def resolve_bench_model(name: str) -> tuple[str, Path]:
    """(label, directory) for a --model value."""
    if name in RANDOM_SHAPES:
        shape = RANDOM_SHAPES[name]
        label = f"{name} (random-init {shape['num_hidden_layers']} × {shape['hidden_size']})"
        return label, random_bert(bench_home() / f"{name}-seed{RANDOM_SEED}", shape)
    return name, model_dir(name)


def resolve_bench_cross_encoder(name: str) -> tuple[str, Path]:
    """(label, directory) for a --model value of --task rerank."""
    if name in RANDOM_CROSS_ENCODERS:
        shape = BERT_SHAPES[RANDOM_CROSS_ENCODERS[name]]
        label = f"{name} (random-init {shape['num_hidden_layers']} × {shape['hidden_size']} cross-encoder)"
        return label, random_cross_encoder(RANDOM_CROSS_ENCODERS[name])
    return name, model_dir(name)


def random_cross_encoder(shape: str) -> Path:
    """A seeded random-init BERT cross-encoder of `shape` (a key of BERT_SHAPES) with all-MiniLM-L6-v2's tokenizer
    (BERT's uncased WordPiece, as the ms-marco cross-encoders have), built under the bench folder once."""
    return build_cross_encoder_dir(
        bench_home(), "bert", shape, model_dir(DEFAULT_MODEL), activation=ACTIVATION_IDENTITY, seed=RANDOM_SEED
    )


def random_bert(dest: Path, shape: dict[str, int]) -> Path:
    """A seeded random-init BERT of `shape` with all-MiniLM-L6-v2's tokenizer (mean pooling, max_seq_length 256),
    built at `dest` once."""
    tokenizer_dir = model_dir(DEFAULT_MODEL)
    config = dict(vocab_size=load_config(tokenizer_dir).vocab_size, max_position_embeddings=512, **shape)
    return build_random_model(
        dest,
        "bert",
        config,
        tokenizer_dir,
        pooling=legacy_pooling("mean", shape["hidden_size"]),
        max_seq_length=RANDOM_MAX_SEQ_LENGTH,
        seed=RANDOM_SEED,
    )


def model_dir(name: str) -> Path:
    """The directory minibert resolves `name` to, downloading a model id that is not found locally."""
    try:
        return resolve_model_dir(name)
    except ModelNotFoundError:
        if looks_like_path(name):
            raise
        return download(name)
