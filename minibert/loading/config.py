"""One config for a model directory.

Reads a sentence-transformers model directory once — ``config.json`` (the transformer),
``modules.json`` (the module pipeline), ``sentence_bert_config.json`` (max_seq_length,
do_lower_case), ``N_Pooling/config.json`` (pooling modes), ``N_Dense/config.json`` (dense layers),
the presence of a Normalize module and ``config_sentence_transformers.json`` (score function, prompts,
default prompt name) — and folds it into the frozen :class:`ModelConfig`. Nothing downstream re-reads JSON.

BERT, DistilBERT, MPNet and ELECTRA differ in how they name config keys (mapped here onto BERT's names) and
in four pieces of math, which become flags rather than architecture checks in the forward pass:
token-type embeddings (BERT, ELECTRA), RoBERTa-style position ids (MPNet), a relative-position
attention bias (MPNet) and embeddings narrower than the encoder, projected to its width (ELECTRA's
``embedding_size``).

A directory whose config.json names a sequence-classification architecture (``BertForSequenceClassification``,
``ElectraForSequenceClassification``) is a cross-encoder when it has no ``modules.json`` or is saved in
sentence-transformers 6's CrossEncoder layout: its :class:`HeadConfig` says the head's shape and the activation
sentence-transformers' ``CrossEncoder`` applies to its logits, looked up where and in the order it looks.

Follows sentence-transformers' own loading rules (``SentenceTransformer._load_sbert_model``,
``Transformer``, ``Pooling``): a directory without ``modules.json`` is a plain transformers model,
which sentence-transformers wraps with mean pooling. Differs where the reference is loose: a ``max_seq_length``
larger than the position table is clamped to it (the reference would crash on such inputs); a
``similarity_fn_name`` it does not know (a multi-vector "maxsim") is refused, not ignored; a Pooling module
with ``include_prompt: false`` is refused (minibert pools over every token, prompt tokens included).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, UnsupportedModelError
from .files import present, read_json, read_json_object

logger = logging.getLogger(__name__)

# sentence-transformers' legacy boolean pooling keys, in its concatenation order.
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
POOLING_MODES = tuple(_LEGACY_POOLING_KEYS.values())
# sentence-transformers' Dense and CrossEncoder activations (torch.nn module class names) that minibert implements.
DENSE_ACTIVATIONS = {"Tanh": "tanh", "Identity": "identity", "ReLU": "relu", "Sigmoid": "sigmoid", "GELU": "gelu"}
# sentence-transformers' single-vector similarity functions (SentenceTransformer.SUPPORTED_SIMILARITY_FN_NAMES).
SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")


@dataclass(frozen=True)
class ModelConfig:
    """Everything the tokenizer, forward pass and pooling need to know about a model."""

    model_dir: Path
    model_type: str
    vocab_size: int
    hidden_size: int
    embedding_size: int  # the embedding tables' width; ≠ hidden_size: projected to it (ELECTRA's embeddings_project)
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str  # "gelu" (exact, erf) or "relu"
    layer_norm_eps: float
    max_position_embeddings: int
    type_vocab_size: int  # 0: the architecture has no token-type embeddings (DistilBERT, MPNet)
    pad_token_id: int
    position_padding_idx: int | None  # set: RoBERTa-style position ids from the input ids (MPNet)
    relative_attention_num_buckets: int  # > 0: a shared relative-position attention bias (MPNet)
    max_seq_length: int
    do_lower_case: bool
    pooling_modes: tuple[str, ...]
    dense_layers: tuple[DenseConfig, ...]
    normalize: bool
    similarity_fn_name: str | None  # as config_sentence_transformers.json declares it, if it does
    prompts: dict[str, str]  # config_sentence_transformers.json's prompts (name -> text), as declared; not mutated
    default_prompt_name: str | None  # the prompt encode() applies when none is asked for, as declared
    head: HeadConfig | None  # a cross-encoder's classification head on [CLS]; None for a bi-encoder

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def embedding_dim(self) -> int:
        """Width of the sentence embedding: the last Dense layer's, else the pooling modes' concatenation."""
        return self.dense_layers[-1].out_features if self.dense_layers else self.hidden_size * len(self.pooling_modes)


def _config_int(cfg: dict[str, Any], key: str, path: Path, default: int | None = None) -> int:
    if key not in cfg and default is None:
        raise ModelLoadError(f"{path}: required key '{key}' is missing")
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelLoadError(f"{path}: '{key}' must be a positive integer, found {value!r}")
    return value


@dataclass(frozen=True)
class _Architecture:
    """How one architecture spells its config, and the math in which it differs from BERT (as flags)."""

    keys: dict[str, str]  # canonical field -> this architecture's config.json key
    token_type_embeddings: bool
    position_padding_idx: int | None  # RoBERTa-style positions, counted from padding_idx + 1
    relative_attention_bias: bool  # MPNet's shared, bucketed relative-position bias
    layer_norm_eps: float | None = None  # fixed by the architecture instead of read from config.json


_BERT_KEYS = {
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_hidden_layers",
    "num_attention_heads": "num_attention_heads",
    "intermediate_size": "intermediate_size",
    "hidden_act": "hidden_act",
}
ARCHITECTURES = {
    "bert": _Architecture(
        _BERT_KEYS, token_type_embeddings=True, position_padding_idx=None, relative_attention_bias=False
    ),
    "distilbert": _Architecture(
        {
            "hidden_size": "dim",
            "num_hidden_layers": "n_layers",
            "num_attention_heads": "n_heads",
            "intermediate_size": "hidden_dim",
            "hidden_act": "activation",
        },
        token_type_embeddings=False,
        position_padding_idx=None,
        relative_attention_bias=False,
        layer_norm_eps=1e-12,
    ),
    # BERT's encoder; embeddings of their own width (embedding_size), projected to hidden_size when they differ.
    "electra": _Architecture(
        _BERT_KEYS, token_type_embeddings=True, position_padding_idx=None, relative_attention_bias=False
    ),
    # transformers' MPNetEmbeddings hard-codes padding_idx = 1 for its position ids.
    "mpnet": _Architecture(
        _BERT_KEYS, token_type_embeddings=False, position_padding_idx=1, relative_attention_bias=True
    ),
}
ACTIVATIONS = ("gelu", "relu")


# transformers' sequence-classification models minibert runs as cross-encoders: the activation inside each head
# (BertPooler: tanh(dense(h_CLS)), then classifier; ElectraClassificationHead: dense, GELU, out_proj) and the
# model_type it belongs to.
HEADS = {"BertForSequenceClassification": ("bert", "tanh"), "ElectraForSequenceClassification": ("electra", "gelu")}


@dataclass(frozen=True)
class HeadConfig:
    """A cross-encoder's head: dense → activation → out on the [CLS] row, then sentence-transformers' activation."""

    architecture: str  # a key of HEADS
    activation: str  # inside the head: "tanh" (BERT's pooler) or "gelu" (ELECTRA's)
    num_labels: int
    activation_fn: str  # on the logits, as sentence-transformers' CrossEncoder picks it: a value of DENSE_ACTIVATIONS


def _num_labels(cfg: dict[str, Any], path: Path) -> int:
    """As transformers' PretrainedConfig: the size of id2label when saved, else num_labels, else 2."""
    id2label = cfg.get("id2label")
    if isinstance(id2label, dict) and id2label:
        return len(id2label)
    return _config_int(cfg, "num_labels", path, 2)


def _trusted_activation(declared: object, path: Path) -> str | None:
    """A declared activation (a torch.nn class path) as a value of DENSE_ACTIVATIONS; None for one that
    sentence-transformers would not import (not under ``torch.``): it warns and looks further, and so does minibert."""
    if not isinstance(declared, str) or not declared.startswith("torch."):
        logger.warning("%s: activation %r is not a torch.nn class; ignored, as sentence-transformers does", path,
                       declared)  # fmt: skip
        return None
    activation = DENSE_ACTIVATIONS.get(declared.rsplit(".", 1)[-1])
    if activation is None:
        raise UnsupportedModelError(
            f"{path}: the cross-encoder's activation {declared!r} is not supported; "
            f"minibert implements torch.nn {', '.join(DENSE_ACTIVATIONS)}"
        )
    return activation


def _score_activation(cfg: dict[str, Any], path: Path, num_labels: int, saved: dict[str, Any] | None) -> str:
    """The activation sentence-transformers' CrossEncoder (6.2) applies to the logits, looked up in its order:
    `saved` (config_sentence_transformers.json, the modules.json layout) ``activation_fn``; config.json's
    ``sentence_transformers.activation_fn``; when that key is absent, the legacy
    ``sbert_ce_default_activation_function``; else Sigmoid for one label and Identity for more. An untrusted name in
    the first falls through to the next; in the second or third, to the default."""
    declared = (saved or {}).get("activation_fn")
    if declared is not None and (activation := _trusted_activation(declared, path)) is not None:
        return activation
    st = cfg.get("sentence_transformers")
    if isinstance(st, dict) and "activation_fn" in st:
        declared = st["activation_fn"]
    else:
        declared = cfg.get("sbert_ce_default_activation_function")
    activation = _trusted_activation(declared, path) if declared is not None else None
    return activation or ("sigmoid" if num_labels == 1 else "identity")


def _head(cfg: dict[str, Any], path: Path, model_type: str, saved: dict[str, Any] | None) -> HeadConfig | None:
    """The classification head config.json's ``architectures`` names, if any (None: a bi-encoder's encoder);
    `saved`: config_sentence_transformers.json of a cross-encoder saved in the modules.json layout."""
    architectures = cfg.get("architectures") or []
    named = [a for a in architectures if isinstance(a, str) and a.endswith("ForSequenceClassification")]
    if not named:
        return None
    architecture = named[0]
    if architecture not in HEADS:
        raise UnsupportedModelError(
            f"{path}: architecture {architecture!r} is not supported; minibert's cross-encoders are "
            f"{', '.join(HEADS)}"
        )
    head_model_type, activation = HEADS[architecture]
    if head_model_type != model_type:
        raise ModelLoadError(f"{path}: architecture {architecture} does not go with model_type {model_type!r}")
    num_labels = _num_labels(cfg, path)
    return HeadConfig(architecture, activation, num_labels, _score_activation(cfg, path, num_labels, saved))


def _transformer_fields(path: Path) -> dict[str, Any]:
    """The transformer's hyper-parameters from config.json, validated and under canonical names."""
    cfg = read_json_object(path)
    model_type = cfg.get("model_type")
    if model_type is None:
        raise UnsupportedModelError(
            f"{path}: has no 'model_type'; minibert supports {', '.join(ARCHITECTURES)} (a transformers config.json)"
        )
    arch = ARCHITECTURES.get(model_type) if isinstance(model_type, str) else None
    if arch is None:
        raise UnsupportedModelError(
            f"{path}: model_type {model_type!r} is not supported; minibert supports {', '.join(ARCHITECTURES)}"
        )
    fields: dict[str, Any] = {
        name: _config_int(cfg, key, path) for name, key in arch.keys.items() if name != "hidden_act"
    }
    if fields["hidden_size"] % fields["num_attention_heads"]:
        raise ModelLoadError(
            f"{path}: {arch.keys['hidden_size']} {fields['hidden_size']} is not divisible by "
            f"{arch.keys['num_attention_heads']} {fields['num_attention_heads']}"
        )
    hidden_act = cfg.get(arch.keys["hidden_act"], "gelu")
    if hidden_act not in ACTIVATIONS:
        raise UnsupportedModelError(
            f"{path}: {arch.keys['hidden_act']} {hidden_act!r} is not supported ({' or '.join(ACTIVATIONS)})"
        )
    position_type = cfg.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise UnsupportedModelError(
            f"{path}: position_embedding_type {position_type!r} is not supported (only 'absolute')"
        )
    eps = arch.layer_norm_eps or cfg.get("layer_norm_eps", 1e-12)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (eps > 0 and math.isfinite(eps)):
        raise ModelLoadError(f"{path}: 'layer_norm_eps' must be a positive number, found {eps!r}")
    buckets = _config_int(cfg, "relative_attention_num_buckets", path, 32) if arch.relative_attention_bias else 0
    vocab_size = _config_int(cfg, "vocab_size", path)
    pad_token_id = cfg.get("pad_token_id")
    pad_token_id = 0 if pad_token_id is None else pad_token_id
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int) or not 0 <= pad_token_id < vocab_size:
        raise ModelLoadError(
            f"{path}: 'pad_token_id' must be an integer id below vocab_size {vocab_size}, found {pad_token_id!r}"
        )
    max_position_embeddings = _config_int(cfg, "max_position_embeddings", path)
    padding_idx = arch.position_padding_idx
    if max_position_embeddings - (0 if padding_idx is None else padding_idx + 1) < 2:
        raise ModelLoadError(
            f"{path}: 'max_position_embeddings' {max_position_embeddings} leaves room for fewer than 2 tokens"
        )
    C = fields["hidden_size"]
    embedding_size = _config_int(cfg, "embedding_size", path, C) if model_type == "electra" else C
    return {
        **fields,
        "embedding_size": embedding_size,
        "model_type": model_type,
        "vocab_size": vocab_size,
        "hidden_act": hidden_act,
        "layer_norm_eps": float(eps),
        "max_position_embeddings": max_position_embeddings,
        "type_vocab_size": _config_int(cfg, "type_vocab_size", path, 2) if arch.token_type_embeddings else 0,
        "pad_token_id": pad_token_id,
        "position_padding_idx": padding_idx,
        "relative_attention_num_buckets": buckets,
    }


def _pooling_modes(path: Path) -> tuple[str, ...]:
    """Pooling modes from a Pooling module's config.json (new ``pooling_mode`` or legacy booleans)."""
    cfg = read_json_object(path)
    if "pooling_mode" in cfg:
        raw = cfg["pooling_mode"]
        modes = (raw,) if isinstance(raw, str) else tuple(raw) if isinstance(raw, list) else ()
        if not modes or not all(isinstance(mode, str) for mode in modes):
            raise ModelLoadError(
                f"{path}: 'pooling_mode' must be a mode name or a non-empty list of them "
                f"({', '.join(POOLING_MODES)}), found {raw!r}"
            )
    else:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS.items() if cfg.get(key, False))
        modes = modes or ("mean",)
    for mode in modes:
        if mode not in POOLING_MODES:
            raise UnsupportedModelError(
                f"{path}: pooling mode {mode!r} is not supported; expected one of {', '.join(POOLING_MODES)}"
            )
    if cfg.get("include_prompt", True) is not True:
        raise UnsupportedModelError(
            f"{path}: include_prompt=false (pooling that leaves out the prompt's tokens) is not supported; "
            "minibert pools over every token, prompt included"
        )
    return modes



@dataclass(frozen=True)
class DenseConfig:
    """A sentence-transformers Dense module: activation(x W + b) [+ x or x R], weights in its own directory."""

    path: Path
    in_features: int
    out_features: int
    bias: bool
    activation: str  # a value of DENSE_ACTIVATIONS
    use_residual: bool


def _dense_config(module_dir: Path, in_features: int) -> DenseConfig:
    path = module_dir / "config.json"
    cfg = read_json_object(path)
    declared_in = _config_int(cfg, "in_features", path)
    if declared_in != in_features:
        raise ModelLoadError(f"{path}: in_features is {declared_in}, but the module before it outputs {in_features}")
    activation_path = cfg.get("activation_function") or "torch.nn.modules.activation.Tanh"  # its default
    activation = DENSE_ACTIVATIONS.get(str(activation_path).rsplit(".", 1)[-1])
    if activation is None or not str(activation_path).startswith("torch."):
        raise UnsupportedModelError(
            f"{path}: activation_function {activation_path!r} is not supported; "
            f"minibert implements torch.nn {', '.join(DENSE_ACTIVATIONS)}"
        )
    return DenseConfig(
        path=module_dir,
        in_features=declared_in,
        out_features=_config_int(cfg, "out_features", path),
        bias=bool(cfg.get("bias", True)),
        activation=activation,
        use_residual=bool(cfg.get("use_residual", False)),
    )


def _module_dir(model_dir: Path, module: dict[str, Any], index: int, modules_path: Path) -> Path:
    """A module's directory: its ``path`` must stay inside the model directory (relative, no ``..``)."""
    rel = module.get("path", "")
    if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts or rel.startswith("~"):
        raise ModelLoadError(
            f"{modules_path}: module {index} has path {rel!r}; a module path must be a directory inside the model "
            "directory (relative, without '..')"
        )
    return model_dir / rel


def _pipeline(model_dir: Path, hidden_size: int) -> tuple[tuple[str, ...], tuple[DenseConfig, ...], bool]:
    """(pooling modes, dense layers, normalize) from modules.json; plain transformers dirs get mean pooling."""
    modules_path = model_dir / "modules.json"
    if not present(modules_path):
        return ("mean",), (), False
    modules = read_json(modules_path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelLoadError(f"{modules_path}: expected a JSON list of module objects")
    pooling: tuple[str, ...] | None = None
    dense: list[DenseConfig] = []
    normalize = False
    for index, module in enumerate(modules):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        subdir = _module_dir(model_dir, module, index, modules_path)
        if kind == "Transformer" and index == 0:
            continue
        if kind == "Pooling" and pooling is None:
            pooling = _pooling_modes(subdir / "config.json")
        elif kind == "Dense" and pooling is not None and not normalize:
            width = dense[-1].out_features if dense else hidden_size * len(pooling)
            dense.append(_dense_config(subdir, width))
        elif kind == "Normalize" and pooling is not None and not normalize:
            normalize = True
        else:
            raise UnsupportedModelError(
                f"{modules_path}: module {index} of type {module.get('type')!r} is not supported there; "
                "minibert runs Transformer → Pooling → Dense* → [Normalize]"
            )
    if pooling is None:
        raise UnsupportedModelError(f"{modules_path}: no Pooling module; minibert needs one")
    return pooling, tuple(dense), normalize


def _sentence_bert_fields(model_dir: Path, max_positions: int) -> tuple[int, bool]:
    """(max_seq_length, do_lower_case) as sentence-transformers derives them."""
    st_path = model_dir / "sentence_bert_config.json"
    st_cfg = read_json_object(st_path) if present(st_path) else {}
    max_seq_length = st_cfg.get("max_seq_length")
    if max_seq_length is None:
        tok_path = model_dir / "tokenizer_config.json"
        tok_cfg = read_json_object(tok_path) if present(tok_path) else {}
        model_max = tok_cfg.get("model_max_length", max_positions)
        if isinstance(model_max, bool) or not isinstance(model_max, (int, float)) or not model_max >= 2:
            raise ModelLoadError(f"{tok_path}: 'model_max_length' must be a number ≥ 2, found {model_max!r}")
        max_seq_length = int(min(model_max, max_positions))
    elif isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 2:
        raise ModelLoadError(f"{st_path}: 'max_seq_length' must be an integer ≥ 2, found {max_seq_length!r}")
    do_lower_case = st_cfg.get("do_lower_case", False)
    if not isinstance(do_lower_case, bool):
        raise ModelLoadError(f"{st_path}: 'do_lower_case' must be true or false, found {do_lower_case!r}")
    return min(max_seq_length, max_positions), do_lower_case


def _sentence_transformers_fields(model_dir: Path) -> dict[str, Any]:
    """similarity_fn_name, prompts and default_prompt_name from config_sentence_transformers.json (absent: none).

    A prompt that is null counts as "" (as sentence-transformers fills it). Whether default_prompt_name names a
    prompt is checked by the model, against these prompts merged with its own (minibert.model).
    """
    path = model_dir / "config_sentence_transformers.json"
    cfg = read_json_object(path) if present(path) else {}
    name = cfg.get("similarity_fn_name")
    if name is not None and name not in SIMILARITY_FN_NAMES:
        raise UnsupportedModelError(
            f"{path}: similarity_fn_name {name!r} is not supported ({', '.join(SIMILARITY_FN_NAMES)})"
        )
    prompts = cfg.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(text, (str, type(None))) for text in prompts.values()):
        raise ModelLoadError(f"{path}: 'prompts' must map prompt names to prompt texts (strings), found {prompts!r}")
    prompts = {prompt_name: text or "" for prompt_name, text in prompts.items()}
    default_prompt_name = cfg.get("default_prompt_name")
    if default_prompt_name is not None and not isinstance(default_prompt_name, str):
        raise ModelLoadError(f"{path}: 'default_prompt_name' must be a str or null, found {default_prompt_name!r}")
    return {"similarity_fn_name": name, "prompts": prompts, "default_prompt_name": default_prompt_name}


def _cross_encoder_head(model_dir: Path, model_type: str) -> HeadConfig | None:
    """The head of a cross-encoder directory: a plain transformers sequence classifier (no modules.json), or
    sentence-transformers 6's layout (modules.json, and config_sentence_transformers.json's model_type
    "CrossEncoder"); None for a bi-encoder, whatever its config.json's architectures say."""
    path = model_dir / "config.json"
    if not present(model_dir / "modules.json"):
        return _head(read_json_object(path), path, model_type, None)
    saved_path = model_dir / "config_sentence_transformers.json"
    saved = read_json_object(saved_path) if present(saved_path) else {}
    if saved.get("model_type") != "CrossEncoder":
        return None
    head = _head(read_json_object(path), path, model_type, saved)
    if head is None:
        raise UnsupportedModelError(f"{saved_path}: a CrossEncoder, but {path} names no sequence-classification head")
    return head


def load_config(model_dir: str | Path) -> ModelConfig:
    """Build the one ModelConfig for a sentence-transformers (or plain transformers) directory.

    Raises ModelLoadError (UnsupportedModelError for well-formed but unsupported contents) naming the file and
    the problem. The tokenizer files are checked where they are loaded (:mod:`minibert.loading.tokenizer`).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir}: not a directory")
    fields = _transformer_fields(model_dir / "config.json")
    head = _cross_encoder_head(model_dir, fields["model_type"])
    if head is None:
        pooling_modes, dense_layers, normalize = _pipeline(model_dir, fields["hidden_size"])
    else:  # a cross-encoder's head reads the [CLS] row
        pooling_modes, dense_layers, normalize = ("cls",), (), False
    padding_idx = fields["position_padding_idx"]
    max_positions = fields["max_position_embeddings"] - (0 if padding_idx is None else padding_idx + 1)
    max_seq_length, do_lower_case = _sentence_bert_fields(model_dir, max_positions)
    return ModelConfig(
        model_dir=model_dir,
        max_seq_length=max_seq_length,
        do_lower_case=do_lower_case,
        pooling_modes=pooling_modes,
        dense_layers=dense_layers,
        normalize=normalize,
        **_sentence_transformers_fields(model_dir),
        **fields,
        head=head,
    )
