"""The GPU backend: torch for the GEMMs (cuBLAS), minibert's Triton kernels for the rest of the encoder.

Same contract as the NumPy backend (:class:`minibert.encoder.contract.Encoder`): the same
:class:`~minibert.loading.config.ModelConfig`, the same canonical weight tree (its arrays moved to the device once,
in the chosen dtype) and the tokenizer's :class:`~minibert.packing.PackedBatch` in, pooled vectors [B, C · modes]
out. The batch is already packed, so no FLOP is spent on padding and nothing is stripped here: ids, position ids
(computed on the host by the batch, as for the NumPy backend) and ``cu_seqlens`` are copied to the device once. The
offsets are checked once per batch, on the host (:class:`~minibert.kernels.checks.Segments`): the attention kernel
of every layer and the pooling kernel take them checked, so no launch reads them back from the device. Attention is
:func:`~minibert.kernels.attention.varlen_attention` (MPNet's relative-position bias is gathered inside it by
offset), pooling is :func:`~minibert.kernels.pooling.mean_pool` / :func:`~minibert.kernels.pooling.cls_pool`, which
L2-normalize in the same kernel when the facade asks (:func:`minibert.encoder.pooling.normalize_while_pooling`).
Every LayerNorm is :func:`~minibert.kernels.layernorm.layer_norm` with the residual add and the preceding GEMM's
bias fused in (the GEMMs run without a bias epilogue), and the exact GELU is
:func:`~minibert.kernels.gelu.bias_gelu_`, adding the intermediate GEMM's bias in place; torch runs the GEMMs
(cuBLAS), the embedding gathers and a ReLU model's activation. The pooled vectors come back to the host, where the
Dense modules and Normalize run in NumPy for both backends (:func:`minibert.encoder.pooling.after_pooling`). float32
runs with TF32 off, so it matches the reference at the fp32 bound (ARCHITECTURE.md, "Tolerances"); float16 /
bfloat16 store activations in that dtype and accumulate in fp32.

With ``TRITON_INTERPRET=1`` in the environment before triton is imported, the same code runs on CPU
tensors (``device="cpu", backend="triton"``): that is how CI checks it without a GPU.

Shape letters: N = tokens of the whole batch (packed), B = sequences, C = hidden size, H = heads,
D = head size, F = FFN size.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from ..errors import BackendUnavailableError, InputError, UnsupportedModelError
from ..loading.config import ModelConfig
from ..loading.weights import HeadWeights, Weights
from ..packing import PackedBatch
from .positions import relative_position_bucket

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


def interpreting() -> bool:
    """Whether the kernels run in Triton's interpreter (``TRITON_INTERPRET=1``), as the kernels' own checks say."""
    from ..kernels.checks import interpreting as kernels_interpreting

    return kernels_interpreting()


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
    if target.type == "cpu" and not interpreting():
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


def relative_bias_table(relative_attention_bias, max_seqlen: int):
    """MPNet's bias by offset k - q: [NB, H] -> [H, 2 · max_seqlen - 1] (float32, contiguous)."""
    import torch

    offsets = np.arange(-(max_seqlen - 1), max_seqlen)  # k - q
    buckets = relative_position_bucket(offsets, relative_attention_bias.shape[0], max_distance=128)
    index = torch.from_numpy(buckets).to(relative_attention_bias.device)
    return relative_attention_bias[index].T.contiguous()  # [2S - 1, H] -> [H, 2S - 1]


def forward_packed(input_ids, position_ids, token_type_ids, segments, w: Weights, cfg: ModelConfig):
    """The encoder on packed tokens: ids, positions, types [N] on the device, checked segments (B sequences)
    -> last hidden states [N, C] in the weights' dtype.

    Every LayerNorm is :func:`~minibert.kernels.layernorm.layer_norm` with the sum before it fused in: the
    embeddings' (word + token type) + position, and each sub-layer's bias-less GEMM output + its bias + the
    sub-layer's input (BERT, DistilBERT and MPNet are all post-LN). The exact GELU runs with the intermediate
    GEMM's bias added, in place (:func:`~minibert.kernels.gelu.bias_gelu_`); ReLU models keep torch's addmm + relu.
    """
    import torch

    from ..kernels.attention import varlen_attention
    from ..kernels.gelu import bias_gelu_
    from ..kernels.layernorm import layer_norm

    N, C, H = input_ids.shape[0], cfg.hidden_size, cfg.num_attention_heads
    eps = cfg.layer_norm_eps
    embeddings = w.word_embeddings[input_ids]  # [N, E], a fresh tensor (gather)
    if w.token_type_embeddings is not None:
        embeddings += w.token_type_embeddings[token_type_ids]  # HF: (word + token type) + position
    hidden = layer_norm(
        embeddings,
        w.embeddings_layernorm_weight,
        w.embeddings_layernorm_bias,
        eps=eps,
        residual=w.position_embeddings[position_ids],
        out=embeddings,
    )  # [N, E]
    if w.embeddings_project_weight is not None:  # ELECTRA: [N, E] -> [N, C]
        hidden = torch.addmm(w.embeddings_project_bias, hidden, w.embeddings_project_weight)
    rel_bias = None
    if w.relative_attention_bias is not None:
        rel_bias = relative_bias_table(w.relative_attention_bias, segments.max_seqlen)  # [H, 2S - 1]
    for layer in w.layers:
        mixed_qkv = torch.addmm(layer.qkv_bias, hidden, layer.qkv_weight)  # [N, C] -> [N, 3C]
        query, key, value = mixed_qkv.view(N, 3, H, C // H).unbind(1)  # 3 × [N, H, D], strided views
        context_layer = varlen_attention(query, key, value, segments, rel_bias=rel_bias)  # [N, H, D]
        attention_output = torch.mm(context_layer.view(N, C), layer.attention_output_weight)  # [N, C], bias below
        hidden = layer_norm(
            attention_output,
            layer.attention_layernorm_weight,
            layer.attention_layernorm_bias,
            eps=eps,
            residual=hidden,
            input_bias=layer.attention_output_bias,
            out=attention_output,
        )  # LN(attention_output + bias + hidden): [N, C]
        if cfg.hidden_act == "gelu":
            intermediate_output = bias_gelu_(torch.mm(hidden, layer.intermediate_weight), layer.intermediate_bias)
        else:  # relu
            intermediate_output = torch.relu_(torch.addmm(layer.intermediate_bias, hidden, layer.intermediate_weight))
        layer_output = torch.mm(intermediate_output, layer.output_weight)  # [N, F] -> [N, C], bias below
        hidden = layer_norm(
            layer_output,
            layer.output_layernorm_weight,
            layer.output_layernorm_bias,
            eps=eps,
            residual=hidden,
            input_bias=layer.output_bias,
            out=layer_output,
        )  # LN(layer_output + bias + hidden): [N, C]
    return hidden


def pool_packed(hidden, segments, cfg: ModelConfig, normalize: bool):
    """The configured pooling modes on packed states, L2-normalized in the kernel when asked (one mode only):
    [N, C] -> float32 [B, C · modes]."""
    import torch

    from ..kernels.pooling import cls_pool, mean_pool

    kernels = {"mean": mean_pool, "cls": cls_pool}
    return torch.cat([kernels[mode](hidden, segments, normalize=normalize) for mode in cfg.pooling_modes], dim=-1)


class GpuEncoder:
    """The Triton backend (the contract: :class:`minibert.encoder.contract.Encoder`): a packed batch -> its pooled
    vectors, computed on a torch device, returned on the host."""

    def __init__(self, config: ModelConfig, weights: Weights, device: str, dtype: str) -> None:
        for mode in config.pooling_modes:
            if mode not in GPU_POOLING_MODES:
                raise UnsupportedModelError(
                    f"{config.model_dir}: pooling mode {mode!r} has no GPU kernel (the Triton backend pools "
                    f"{' and '.join(GPU_POOLING_MODES)}); use the NumPy backend (device='cpu') for this model"
                )
        self.config = config
        self.device, self.dtype = resolve_device(device, dtype)
        import torch
        # Dense heads run on the host, in NumPy; the bias table stays fp32 (the kernel reads fp32), and so does a
        # cross-encoder's head (on the fp32 [CLS] rows)
        encoder = dataclasses.replace(weights, dense=(), head=None)
        self.weights = _to_device(encoder, self.device, self.dtype, fp32_fields=("relative_attention_bias",))
        self.head = None if weights.head is None else _to_device(weights.head, self.device, torch.float32)

    def hidden_states(self, batch: PackedBatch):
        """The packed batch's last hidden states on the device: [N, C] in the backend's dtype, and its segments."""
        import torch

        from ..kernels.checks import Segments

        segments = Segments.from_host(batch.cu_seqlens, self.device)  # checked on the host, copied once
        ids, positions, types = (
            torch.from_numpy(a).to(self.device)
            for a in (batch.input_ids, batch.position_ids(self.config.position_padding_idx), batch.token_type_ids)
        )
        return forward_packed(ids, positions, types, segments, self.weights, self.config), segments

    def token_embeddings(self, batch: PackedBatch) -> np.ndarray:
        """[N] tokens -> their last hidden states [N, C], float32 on the host."""
        import torch

        with torch.inference_mode(), _tf32_off(torch):
            hidden, _ = self.hidden_states(batch)  # [N, C]
            return hidden.float().cpu().numpy()

    def embed(self, batch: PackedBatch, normalize_rows: bool) -> np.ndarray:
        """[N] tokens -> pooled float32 [B, C · modes] on the host, L2-normalized in the pooling kernel when asked."""
        import torch

        with torch.inference_mode(), _tf32_off(torch):
            hidden, segments = self.hidden_states(batch)  # [N, C]
            return pool_packed(hidden, segments, self.config, normalize_rows).cpu().numpy()

    def logits(self, batch: PackedBatch) -> np.ndarray:
        """A cross-encoder's packed pairs -> its head's logits [B, labels], float32 on the host: the [CLS] rows
        (:func:`~minibert.kernels.pooling.cls_pool`, fp32) and the head computed on the device."""
        import torch

        from ..kernels.pooling import cls_pool

        with torch.inference_mode(), _tf32_off(torch):
            hidden, segments = self.hidden_states(batch)  # [N, C]
            cls_rows = cls_pool(hidden, segments, normalize=False)  # [B, C] float32
            return head_logits(cls_rows, self.head, self.config.head.activation).cpu().numpy()


def head_logits(cls_rows, head: HeadWeights, activation: str):
    """The head of :mod:`minibert.encoder.head` on the device: dense → tanh (BERT's pooler) or the exact GELU
    (:func:`~minibert.kernels.gelu.bias_gelu_`, ELECTRA's) → out; [B, C] -> [B, labels]."""
    import torch

    from ..kernels.gelu import bias_gelu_

    if activation == "gelu":
        hidden = bias_gelu_(torch.mm(cls_rows, head.dense_weight), head.dense_bias)  # [B, C]
    else:  # tanh
        hidden = torch.tanh_(torch.addmm(head.dense_bias, cls_rows, head.dense_weight))  # [B, C]
    return torch.addmm(head.out_bias, hidden, head.out_weight)  # [B, labels]


@contextlib.contextmanager
def _tf32_off(torch):
    """fp32 GEMMs in full precision (TF32 would cost ~1e-3 relative), restored afterwards."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
