"""The live reference's numbers for a packed batch: transformers' outputs at its real tokens (torch imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..packing import PackedBatch


def transformers_outputs(model_dir: Path, batch: PackedBatch, **kwargs):
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


def reference_hidden_states(model_dir: Path, batch: PackedBatch) -> np.ndarray:
    """transformers' last_hidden_state at a PackedBatch's real tokens: [N, C]."""
    output, real = transformers_outputs(model_dir, batch)
    return output.last_hidden_state.numpy()[real]
