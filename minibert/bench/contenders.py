"""The CPU contenders, each a function texts -> embeddings [n, d]: minibert (NumPy), sentence-transformers (torch
fp32) and ONNX Runtime (an export of the transformers encoder as a minibert backend, :class:`OnnxEncoder`, so that
minibert's facade tokenizes, batches and pools for it).

The cross-encoder contenders (:class:`CrossContender`, --task rerank) are the same three: minibert's
:class:`~minibert.cross_encoder.CrossEncoder`, sentence-transformers' ``CrossEncoder``, and ONNX Runtime as the same
:class:`OnnxEncoder` behind minibert's ``CrossEncoder`` (which tokenizes the pairs, batches, takes each pair's
[CLS] row and runs the classification head — two small NumPy GEMMs per batch — for it).

A contender whose packages are not installed raises :class:`Unavailable` when it is made: the report names it
in one line instead of failing the run.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..encoder.head import logits
from ..encoder.pooling import normalize, pool
from ..loading.config import ModelConfig
from ..loading.weights import Weights
from ..packing import PackedBatch

if TYPE_CHECKING:
    from ..cross_encoder import CrossEncoder
    from ..model import SentenceTransformer

# What the ONNX export is traced on: two sequences of different lengths ([CLS] a b [SEP], [CLS] a [SEP] + padding)
_EXPORT_IDS = [[101, 1037, 1038, 102], [101, 1037, 102]]

MINIBERT = "minibert (NumPy)"
REFERENCE = "sentence-transformers (torch fp32)"
ONNX = "ONNX Runtime (CPU, fp32)"


class Unavailable(Exception):
    """A contender that cannot run here (not installed); reported as a line, not an error."""


C = TypeVar("C")


def available(loaders: Sequence[tuple[str, Callable[[], C]]], unavailable: dict[str, str]) -> list[C]:
    """The contenders the loaders make, in order; each one that raises :class:`Unavailable` is named in
    `unavailable` (contender -> why) instead."""
    contenders = []
    for name, load in loaders:
        try:
            contenders.append(load())
        except Unavailable as exc:
            unavailable[name] = str(exc)
    return contenders


def max_gaps(outputs: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Each contender's max |Δ| against sentence-transformers' output of the same inputs (None when that one did
    not run)."""
    reference = outputs.get(REFERENCE)
    return {name: None if reference is None else float(np.abs(out - reference).max()) for name, out in outputs.items()}


@dataclass
class Contender:
    name: str
    encode: Callable[[list[str]], np.ndarray]  # texts -> embeddings [n, d] float32


Pair = tuple[str, str]


@dataclass
class CrossContender:
    name: str
    predict: Callable[[list[Pair]], np.ndarray]  # (query, passage) pairs -> scores [n] float32
    rank: Callable[[str, list[str]], object]  # one query and its candidates -> them ranked


def minibert_contender(model: SentenceTransformer, batch_size: int) -> Contender:
    return Contender(MINIBERT, lambda texts: model.encode(texts, batch_size=batch_size))


def _sentence_transformers() -> Any:
    """The sentence_transformers module, or :class:`Unavailable`."""
    try:
        import sentence_transformers
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc}; pip install sentence-transformers)") from None
    return sentence_transformers


def reference_contender(model_dir: Path, batch_size: int) -> Contender:
    reference = _sentence_transformers().SentenceTransformer(str(model_dir), device="cpu")
    return Contender(REFERENCE, lambda texts: reference.encode(texts, batch_size=batch_size, show_progress_bar=False))


def minibert_cross_contender(model: CrossEncoder, batch_size: int, name: str = MINIBERT) -> CrossContender:
    """minibert's CrossEncoder (whichever backend it was made with) as a contender called `name`."""
    return CrossContender(
        name,
        lambda pairs: model.predict(pairs, batch_size=batch_size, show_progress_bar=False),
        lambda query, documents: model.rank(query, documents, batch_size=batch_size, show_progress_bar=False),
    )


def reference_cross_contender(model_dir: Path, batch_size: int) -> CrossContender:
    """sentence-transformers' CrossEncoder, torch fp32 on CPU."""
    reference = _sentence_transformers().CrossEncoder(str(model_dir), device="cpu")
    return CrossContender(
        REFERENCE,
        lambda pairs: reference.predict(pairs, batch_size=batch_size, show_progress_bar=False),
        lambda query, documents: reference.rank(query, documents, batch_size=batch_size, show_progress_bar=False),
    )


def export_onnx(model_dir: Path, path: Path, input_names: Sequence[str], sample: Any) -> None:
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


class OnnxEncoder:
    """ONNX Runtime on CPU as a backend (:class:`minibert.encoder.contract.Encoder`): the exported transformers encoder
    on the padded batch, its real tokens pooled by minibert. The export is cached in `cache_dir`, keyed on the
    weights and versions."""

    def __init__(self, config: ModelConfig, weights: Weights, *, cache_dir: Path) -> None:
        import onnxruntime
        import torch
        import transformers

        self.config, self.weights = config, weights
        self.input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if config.type_vocab_size else [])
        weights_file = config.model_dir / "model.safetensors"
        stat = weights_file.stat()
        key = f"{weights_file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.input_names}|{torch.__version__}"
        key += f"|{transformers.__version__}"
        path = cache_dir / f"{config.model_dir.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
        if not path.is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            export_onnx(config.model_dir, path, self.input_names, PackedBatch.from_ids(_EXPORT_IDS, 0).to_padded())
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def token_embeddings(self, batch: PackedBatch) -> np.ndarray:
        padded = batch.to_padded()
        (hidden,) = self.session.run(["last_hidden_state"], {name: getattr(padded, name) for name in self.input_names})
        return hidden[padded.attention_mask.astype(bool)]  # [B, T, C] -> [N, C], the real tokens in packed order

    def embed(self, batch: PackedBatch, normalize_rows: bool) -> np.ndarray:
        pooled = pool(self.token_embeddings(batch), batch.cu_seqlens, self.config.pooling_modes)  # [B, C · modes]
        return normalize(pooled) if normalize_rows else pooled

    def logits(self, batch: PackedBatch) -> np.ndarray:
        cls_rows = self.token_embeddings(batch)[batch.cu_seqlens[:-1]]  # [B, C]
        return logits(cls_rows, self.weights.head, self.config.head)  # the head in NumPy


def onnx_encoder_factory(cache_dir: Path) -> Callable[[ModelConfig, Weights], OnnxEncoder]:
    """:class:`OnnxEncoder` as an ``encoder=`` factory of minibert's facades, or :class:`Unavailable` when ONNX
    Runtime, or the torch and transformers the export needs, are not installed."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc}; pip install onnxruntime onnx)") from None
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"not available: exporting the model needs torch and transformers ({exc})") from None
    return functools.partial(OnnxEncoder, cache_dir=cache_dir)


def onnx_contender(model_dir: Path, batch_size: int, cache_dir: Path) -> Contender:
    """ONNX Runtime on CPU behind minibert's facade: its tokenizer, batching, Dense and Normalize around
    :class:`OnnxEncoder`."""
    encoder = onnx_encoder_factory(cache_dir)
    from ..model import SentenceTransformer

    model = SentenceTransformer(model_dir, encoder=encoder)
    return Contender(ONNX, lambda texts: model.encode(texts, batch_size=batch_size))


def onnx_cross_contender(model_dir: Path, batch_size: int, cache_dir: Path) -> CrossContender:
    """ONNX Runtime on CPU behind minibert's CrossEncoder: its pair tokenizer, batching, [CLS] rows and head around
    :class:`OnnxEncoder` (the exported transformers encoder, ``AutoModel`` of the sequence-classification model)."""
    encoder = onnx_encoder_factory(cache_dir)
    from ..cross_encoder import CrossEncoder

    return minibert_cross_contender(CrossEncoder(model_dir, encoder=encoder), batch_size, ONNX)
