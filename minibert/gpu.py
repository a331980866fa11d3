"""The GPU forward: torch for the GEMMs (cuBLAS), minibert's Triton kernels for attention and pooling.

Same contract as the NumPy forward — the same :class:`~minibert.config.ModelConfig`, the same canonical
weight tree (its arrays moved to the device once, in the chosen dtype) and the same tokenized batch —
but packed end to end: the batch's real tokens are concatenated ([N] ids, ``cu_seqlens`` offsets), so no
FLOP is spent on padding. Attention is :func:`~minibert.kernels.attention.varlen_attention` (MPNet's
relative-position bias is gathered inside it by offset), pooling is
:func:`~minibert.kernels.pooling.mean_pool` / :func:`~minibert.kernels.pooling.cls_pool`. LayerNorm and the
exact GELU are torch ops; the pooled vectors come back to the host, where the Dense modules and Normalize
run in NumPy, as on the CPU path (minibert.model). float32 runs with TF32 off, so it matches the reference
at DESIGN.md's fp32 bound; float16 / bfloat16 store activations in that dtype and accumulate in fp32.

With ``TRITON_INTERPRET=1`` in the environment before triton is imported, the same code runs on CPU
tensors (``device="cpu", backend="triton"``): that is how CI checks it without a GPU.

Shape letters: N = tokens of the whole batch (packed), B = sequences, C = hidden size, H = heads,
D = head size, F = FFN size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import numpy as np

from .config import ModelConfig
from .errors import BackendUnavailableError, InputError, UnsupportedModelError
from .forward import relative_position_bucket
from .tokenizer import Batch
from .weights import Weights

DTYPES = ("float32", "float16", "bfloat16")
GPU_POOLING_MODES = ("mean", "cls")


def _import_torch_and_kernels():
    try:
        import torch
        import triton  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the Triton backend needs torch and triton ({exc.name} is missing); pip install 'minibert[gpu]'"
        ) from None
    return torch


def resolve_device(device: str, dtype: str):
    """Check that the backend can run on `device` in `dtype`; returns (torch.device, torch.dtype)."""
    torch = _import_torch_and_kernels()
    if dtype not in DTYPES:
        raise BackendUnavailableError(f"dtype={dtype!r} is not supported; use one of {', '.join(DTYPES)}")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(
            f"device={device!r} is not a device name torch knows ({exc}); use 'cuda', 'cuda:N' or 'cpu'"
        ) from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            f"device={device!r}: torch sees no CUDA GPU (torch {torch.__version__}); "
            "use device='cpu', or install a CUDA build of torch on a machine with a GPU"
        )
    if target.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise BackendUnavailableError(
            "backend='triton' on device='cpu' runs the kernels in Triton's interpreter, which needs "
            "TRITON_INTERPRET=1 in the environment before triton is first imported"
        )
    if target.type not in ("cuda", "cpu"):
        raise BackendUnavailableError(f"device={device!r} is not supported by the Triton backend (cuda or cpu)")
    return target, getattr(torch, dtype)


def _to_device(tree, device, dtype, fp32_fields=()):
    """The same dataclass with every NumPy array replaced by a tensor on `device` (fp32_fields stay float32)."""
    import torch

    def convert(name, value):
        if isinstance(value, np.ndarray):  # weights may be read-only views of the mapped file: torch gets a copy
            host = torch.from_numpy(value if value.flags.writeable else value.copy())
            return host.to(device, torch.float32 if name in fp32_fields else dtype)
        if isinstance(value, tuple):
            return tuple(_to_device(item, device, dtype, fp32_fields) for item in value)
        return value

    fields = dataclasses.fields(tree)
    return dataclasses.replace(tree, **{f.name: convert(f.name, getattr(tree, f.name)) for f in fields})


def position_ids(input_ids, cu_seqlens, padding_idx: int | None):
    """Position of every packed token inside its sequence: [N] -> [N] (RoBERTa-style when padding_idx is set)."""
    import torch

    lengths = cu_seqlens[1:] - cu_seqlens[:-1]  # [B]
    starts = torch.repeat_interleave(cu_seqlens[:-1].long(), lengths.long())  # [N]: each token's sequence start
    if padding_idx is None:
        return torch.arange(input_ids.shape[0], device=input_ids.device) - starts
    real = (input_ids != padding_idx).long()  # [N]
    count = torch.cumsum(real, 0)  # [N], running over the whole pack
    before = count[starts] - real[starts]  # [N]: real tokens in earlier sequences
    return (count - before) * real + padding_idx


def relative_bias_table(relative_attention_bias, max_seqlen: int):
    """MPNet's bias by offset k - q: [NB, H] -> [H, 2 · max_seqlen - 1] (float32, contiguous)."""
    import torch

    offsets = np.arange(-(max_seqlen - 1), max_seqlen)  # k - q
    buckets = relative_position_bucket(offsets, relative_attention_bias.shape[0], max_distance=128)
    index = torch.from_numpy(buckets).to(relative_attention_bias.device)
    return relative_attention_bias[index].T.contiguous()  # [2S - 1, H] -> [H, 2S - 1]


def forward_packed(input_ids, cu_seqlens, max_seqlen: int, w: Weights, cfg: ModelConfig):
    """The encoder on packed tokens: ids [N], offsets [B + 1] -> last hidden states [N, C] in the weights' dtype."""
    import torch
    import torch.nn.functional as F

    from .kernels.attention import varlen_attention

    N, C, H = input_ids.shape[0], cfg.hidden_size, cfg.num_attention_heads
    eps = cfg.layer_norm_eps
    activation = {"gelu": F.gelu, "relu": F.relu}[cfg.hidden_act]
    positions = position_ids(input_ids, cu_seqlens, cfg.position_padding_idx)  # [N]
    hidden = w.word_embeddings[input_ids] + w.position_embeddings[positions]  # [N, C]
    if w.token_type_embeddings is not None:
        hidden = hidden + w.token_type_embeddings[0]  # single sentences: token type 0
    hidden = F.layer_norm(hidden, (C,), w.embeddings_layernorm_weight, w.embeddings_layernorm_bias, eps)
    rel_bias = None
    if w.relative_attention_bias is not None:
        rel_bias = relative_bias_table(w.relative_attention_bias, max_seqlen)  # [H, 2S - 1]
    for layer in w.layers:
        mixed_qkv = torch.addmm(layer.qkv_bias, hidden, layer.qkv_weight)  # [N, C] -> [N, 3C]
        query, key, value = mixed_qkv.view(N, 3, H, C // H).unbind(1)  # 3 × [N, H, D], strided views
        context_layer = varlen_attention(query, key, value, cu_seqlens, max_seqlen, rel_bias=rel_bias)  # [N, H, D]
        attention_output = torch.addmm(
            layer.attention_output_bias, context_layer.view(N, C), layer.attention_output_weight
        )
        hidden = F.layer_norm(
            attention_output + hidden, (C,), layer.attention_layernorm_weight, layer.attention_layernorm_bias, eps
        )  # [N, C]
        intermediate_output = activation(torch.addmm(layer.intermediate_bias, hidden, layer.intermediate_weight))
        layer_output = torch.addmm(layer.output_bias, intermediate_output, layer.output_weight)  # [N, F] -> [N, C]
        hidden = F.layer_norm(
            layer_output + hidden, (C,), layer.output_layernorm_weight, layer.output_layernorm_bias, eps
        )
    return hidden


def pool_packed(hidden, cu_seqlens, cfg: ModelConfig, normalize: bool):
    """The configured pooling modes on packed states, optionally L2-normalized: [N, C] -> float32 [B, C · modes]."""
    import torch

    from .kernels.pooling import cls_pool, mean_pool

    fused = normalize and len(cfg.pooling_modes) == 1  # the kernels normalize one mode's vector in place
    pooled = [
        (mean_pool if mode == "mean" else cls_pool)(hidden, cu_seqlens, normalize=fused) for mode in cfg.pooling_modes
    ]
    embeddings = torch.cat(pooled, dim=-1)
    return torch.nn.functional.normalize(embeddings, dim=-1) if normalize and not fused else embeddings


class GpuEncoder:
    """Embeds tokenized batches on a torch device with the Triton kernels."""

    def __init__(self, config: ModelConfig, weights: Weights, device: str, dtype: str) -> None:
        for mode in config.pooling_modes:
            if mode not in GPU_POOLING_MODES:
                raise UnsupportedModelError(
                    f"{config.model_dir}: pooling mode {mode!r} has no GPU kernel (the Triton backend pools "
                    f"{' and '.join(GPU_POOLING_MODES)}); use the NumPy backend (device='cpu') for this model"
                )
        self.config = config
        self.device, self.dtype = resolve_device(device, dtype)
        # Dense heads run on the host, in NumPy, after pooling; the bias table stays fp32 (the kernel reads fp32)
        encoder = dataclasses.replace(weights, dense=())
        self.weights = _to_device(encoder, self.device, self.dtype, fp32_fields=("relative_attention_bias",))

    def pool(self, batch: Batch, normalize: bool) -> np.ndarray:
        """A padded batch from the tokenizer -> pooled float32 embeddings [B, C · modes] (L2-normalized if asked)."""
        import torch

        mask = batch.attention_mask.astype(bool)  # [B, T]
        lengths = mask.sum(axis=1)  # [B]
        cu_seqlens = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)  # [B + 1]
        with torch.inference_mode(), _tf32_off(torch):
            input_ids = torch.from_numpy(batch.input_ids[mask]).to(self.device)  # [N]
            cu = torch.from_numpy(cu_seqlens).to(self.device)
            hidden = forward_packed(input_ids, cu, int(lengths.max()), self.weights, self.config)  # [N, C]
            return pool_packed(hidden, cu, self.config, normalize).cpu().numpy()  # [B, C · modes]


@contextlib.contextmanager
def _tf32_off(torch):
    """fp32 GEMMs in full precision (TF32 would cost ~1e-3 relative), restored afterwards."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
