"""The CPU contenders, each a function texts -> embeddings [n, d]: minibert (NumPy), sentence-transformers (torch
fp32) and ONNX Runtime (an export of the transformers encoder between minibert's tokenizer and pooling).

A contender whose packages are not installed raises :class:`Unavailable` when it is made: the report names it
in one line instead of failing the run.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..pooling import after_pooling, pool

if TYPE_CHECKING:
    from ..model import SentenceTransformer
    from ..packing import PaddedBatch

MINIBERT = "minibert (NumPy)"
REFERENCE = "sentence-transformers (torch fp32)"
ONNX = "ONNX Runtime (CPU, fp32)"


class Unavailable(Exception):
    """A contender that cannot run here (not installed); reported as a line, not an error."""


@dataclass
class Contender:
    name: str
    encode: Callable[[list[str]], np.ndarray]  # texts -> embeddings [n, d] float32


def minibert_contender(model: SentenceTransformer, batch_size: int) -> Contender:
    return Contender(MINIBERT, lambda texts: model.encode(texts, batch_size=batch_size))


def reference_contender(model_dir: Path, batch_size: int) -> Contender:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc}; pip install sentence-transformers)") from None
    reference = SentenceTransformer(str(model_dir), device="cpu")
    return Contender(REFERENCE, lambda texts: reference.encode(texts, batch_size=batch_size, show_progress_bar=False))


def export_onnx(model_dir: Path, path: Path, input_names: Sequence[str], sample: PaddedBatch) -> None:
    """torch.onnx.export of transformers' AutoModel: `input_names` → last_hidden_state, dynamic batch and
    sequence axes, the TorchScript exporter (dynamo=False: the dynamo one needs onnxscript)."""
    import torch
    from transformers import AutoModel

    hf_model = AutoModel.from_pretrained(model_dir).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(input_names, inputs, strict=True))).last_hidden_state

    wrapper = LastHiddenState().eval()  # a fresh Module is in training mode (dropout) until told otherwise
    args = tuple(torch.from_numpy(getattr(sample, name)) for name in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*input_names, "last_hidden_state")}
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(
            wrapper,
            args,
            str(tmp),
            input_names=list(input_names),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            **legacy,
        )
    os.replace(tmp, path)


def onnx_contender(model: SentenceTransformer, batch_size: int, cache_dir: Path) -> Contender:
    """ONNX Runtime on CPU: minibert's tokenizer → the exported encoder on the padded batch → its real tokens →
    minibert's pooling, Dense, Normalize. The export is cached in `cache_dir`, keyed on the weights and versions."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc}; pip install onnxruntime onnx)") from None
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise Unavailable(f"not available: exporting the model needs torch and transformers ({exc})") from None

    config = model.config
    input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if config.type_vocab_size else [])
    weights_file = model.model_dir / "model.safetensors"
    stat = weights_file.stat()
    key = f"{weights_file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{input_names}|{torch.__version__}"
    key += f"|{transformers.__version__}"
    path = cache_dir / f"{model.model_dir.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    if not path.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        sample = model.tokenize(["a short one", "and a somewhat longer sentence to pad the first one"]).to_padded()
        export_onnx(model.model_dir, path, input_names, sample)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first, as the other two do
        out = np.empty((len(texts), config.embedding_dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = model.tokenize([texts[i] for i in rows])
            padded = batch.to_padded()
            (hidden,) = session.run(["last_hidden_state"], {name: getattr(padded, name) for name in input_names})
            packed = hidden[padded.attention_mask.astype(bool)]  # [B, T, C] -> [N, C], the real tokens in packed order
            pooled = pool(packed, batch.cu_seqlens, config.pooling_modes)  # [B, C · modes]
            out[rows] = after_pooling(pooled, model.weights.dense, config, normalized=False)
        return out

    return Contender(ONNX, encode)
