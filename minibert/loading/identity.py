"""A model's identity: one hash of everything that determines its embeddings.

:func:`model_identity` is a SHA-256 over every value of the model's :class:`~minibert.loading.config.ModelConfig` —
architecture, sizes, eps, activation, max_seq_length, lower-casing, pooling modes, each Dense module's shape and
activation, Normalize, the score function, prompts; a value added to the config later is covered without a change
here — and the bytes of every file the weights and the tokenizer are read from: model.safetensors, each Dense
module's model.safetensors, and the tokenizer files present. Paths are not part of it: a copy of a model directory
elsewhere has the same identity. The embedding cache (:mod:`minibert.retrieval.cache`) and the corpus job's
manifest (:mod:`minibert.embed.job`) key on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from .config import ModelConfig
from .files import hash_file, present
from .safetensors import WEIGHTS_FILE
from .tokenizer import TOKENIZER_SOURCE_FILES


def _config_values(config: ModelConfig) -> str:
    """The config's values as canonical JSON, without the paths it was read from."""

    def without_paths(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_paths(v) for k, v in value.items() if not isinstance(v, Path)}
        if isinstance(value, (list, tuple)):
            return [without_paths(v) for v in value]
        return value

    return json.dumps(without_paths(dataclasses.asdict(config)), sort_keys=True)


def model_identity(config: ModelConfig) -> str:
    """SHA-256 hex digest of everything that determines a model's embeddings: its config values and the bytes of
    its weight files (main and Dense) and tokenizer files."""
    digest = hashlib.sha256(_config_values(config).encode())
    files = [config.model_dir / WEIGHTS_FILE, *(dense.path / WEIGHTS_FILE for dense in config.dense_layers)]
    files += [config.model_dir / name for name in TOKENIZER_SOURCE_FILES if present(config.model_dir / name)]
    for path in files:
        digest.update(f"\0{path.relative_to(config.model_dir)}\0".encode())
        hash_file(path, digest)
    return digest.hexdigest()
