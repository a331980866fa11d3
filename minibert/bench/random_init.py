"""Seeded random-init models saved as sentence-transformers directories: THE builder for the tests and benchmarks.

:func:`build_random_model` makes a transformers model of a given type and sizes from torch's seeded RNG
(``AutoModel.from_config``), optionally with seeded noise on every 1-D parameter, and saves it with
``save_pretrained(safe_serialization=True)`` next to the files sentence-transformers reads: the tokenizer files
copied from another directory, ``modules.json`` (Transformer → Pooling, → Normalize when asked),
``sentence_bert_config.json`` (``max_seq_length``, ``do_lower_case`` false) and ``1_Pooling/config.json``.
The directory is built beside its destination and moved into place atomically (minibert.hub's
:func:`~minibert.hub.install_staged_dir`), so an interrupted build leaves nothing half-written; a destination
that is already complete is reused. torch and transformers are imported only when a model is built.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from ..hub import install_staged_dir, new_staging_dir

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
_POOLING_KEYS = {  # pooling mode -> its key in the legacy 1_Pooling/config.json format
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
}


def legacy_pooling(mode: str, width: int) -> dict:
    """A 1_Pooling/config.json in the legacy boolean format the published models use."""
    return {"word_embedding_dimension": width, **{key: m == mode for m, key in _POOLING_KEYS.items()}}


def _add_noise_(model) -> None:
    """Random-init models start with zero biases, unit LayerNorm weights and zero LayerNorm biases, which would
    hide any bug in how those are applied: give every 1-D parameter seeded noise (N(0, 0.1²)) too."""
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)


def _write_st_files(model_dir: Path, *, pooling: Mapping, normalize: bool, max_seq_length: int) -> None:
    """The sentence-transformers module files: Transformer → Pooling (→ Normalize)."""
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
    (model_dir / "1_Pooling").mkdir()
    (model_dir / "1_Pooling" / "config.json").write_text(json.dumps(dict(pooling)))


def build_random_model(
    dest: Path,
    model_type: str,
    config: Mapping[str, object],
    tokenizer_dir: Path,
    *,
    pooling: Mapping[str, object],
    max_seq_length: int,
    seed: int,
    normalize: bool = False,
    noise: bool = False,
) -> Path:
    """A seeded random-init transformers model saved at `dest` as a sentence-transformers directory; returns `dest`.

    Args:
        dest: the directory to make (an existing complete one, with modules.json, is returned as is).
        model_type: transformers' model type: "bert", "distilbert", "mpnet", …
        config: keyword arguments of that type's config class (sizes, vocab_size, special token ids).
        tokenizer_dir: where the tokenizer files (:data:`TOKENIZER_FILES`, those present) are copied from.
        pooling: the 1_Pooling/config.json (e.g. :func:`legacy_pooling`).
        max_seq_length: sentence_bert_config.json's truncation length.
        seed: torch.manual_seed before the model is made (and the noise drawn).
        normalize: whether modules.json ends with a Normalize module.
        noise: seeded N(0, 0.1²) noise on every 1-D parameter (biases, LayerNorm), drawn after the init.
    """
    dest = Path(dest)
    if (dest / "modules.json").is_file():
        return dest
    import torch
    from transformers import AutoConfig, AutoModel

    staged = new_staging_dir(dest)
    try:
        torch.manual_seed(seed)
        model = AutoModel.from_config(AutoConfig.for_model(model_type, **config))
        if noise:
            _add_noise_(model)
        model.save_pretrained(staged, safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (Path(tokenizer_dir) / name).is_file():
                shutil.copy(Path(tokenizer_dir) / name, staged / name)
        _write_st_files(staged, pooling=pooling, normalize=normalize, max_seq_length=max_seq_length)
        install_staged_dir(staged, dest)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return dest
