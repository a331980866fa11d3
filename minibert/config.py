"""One config for a model directory.

Reads a sentence-transformers model directory once — ``config.json`` (the transformer),
``modules.json`` (the module pipeline), ``sentence_bert_config.json`` (max_seq_length,
do_lower_case), ``N_Pooling/config.json`` (pooling modes) and the presence of a Normalize module —
and folds it into the frozen :class:`ModelConfig`. Nothing downstream re-reads JSON.

Follows sentence-transformers' own loading rules (``SentenceTransformer._load_sbert_model``,
``Transformer``, ``Pooling``): a directory without ``modules.json`` is a plain transformers model,
which sentence-transformers wraps with mean pooling. Differs in one place: a ``max_seq_length``
larger than the position table is clamped to it (the reference would crash on such inputs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelLoadError, UnsupportedModelError

SUPPORTED_ARCHITECTURES = ("bert",)

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


@dataclass(frozen=True)
class ModelConfig:
    """Everything the tokenizer, forward pass and pooling need to know about a model."""

    model_dir: Path
    model_type: str
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str
    layer_norm_eps: float
    max_position_embeddings: int
    type_vocab_size: int
    pad_token_id: int
    max_seq_length: int
    do_lower_case: bool
    pooling_modes: tuple[str, ...]
    normalize: bool
    similarity_fn_name: str

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def embedding_dim(self) -> int:
        """Width of the sentence embedding: the pooling modes concatenate hidden-size vectors."""
        return self.hidden_size * len(self.pooling_modes)


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning every failure into a ModelLoadError that names the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: file is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot be read ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from None


def _require_object(value: Any, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _positive_int(cfg: dict[str, Any], key: str, path: Path, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelLoadError(f"{path}: '{key}' must be a positive integer, found {value!r}")
    return value


def _transformer_fields(path: Path) -> dict[str, Any]:
    """The transformer's hyper-parameters from config.json, validated."""
    cfg = _require_object(read_json(path), path)
    model_type = cfg.get("model_type")
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"{path}: model_type {model_type!r} is not supported; minibert supports "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    hidden_size = _positive_int(cfg, "hidden_size", path)
    heads = _positive_int(cfg, "num_attention_heads", path)
    if hidden_size % heads:
        raise ModelLoadError(f"{path}: hidden_size {hidden_size} is not divisible by num_attention_heads {heads}")
    hidden_act = cfg.get("hidden_act", "gelu")
    if hidden_act != "gelu":
        raise UnsupportedModelError(f"{path}: hidden_act {hidden_act!r} is not supported (only 'gelu')")
    position_type = cfg.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise UnsupportedModelError(
            f"{path}: position_embedding_type {position_type!r} is not supported (only 'absolute')"
        )
    eps = cfg.get("layer_norm_eps", 1e-12)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ModelLoadError(f"{path}: 'layer_norm_eps' must be a positive number, found {eps!r}")
    return {
        "model_type": model_type,
        "vocab_size": _positive_int(cfg, "vocab_size", path),
        "hidden_size": hidden_size,
        "num_hidden_layers": _positive_int(cfg, "num_hidden_layers", path),
        "num_attention_heads": heads,
        "intermediate_size": _positive_int(cfg, "intermediate_size", path),
        "hidden_act": hidden_act,
        "layer_norm_eps": float(eps),
        "max_position_embeddings": _positive_int(cfg, "max_position_embeddings", path),
        "type_vocab_size": _positive_int(cfg, "type_vocab_size", path, default=2),
        "pad_token_id": cfg.get("pad_token_id") or 0,
    }


def _pooling_modes(path: Path) -> tuple[str, ...]:
    """Pooling modes from a Pooling module's config.json (new ``pooling_mode`` or legacy booleans)."""
    cfg = _require_object(read_json(path), path)
    if "pooling_mode" in cfg:
        raw = cfg["pooling_mode"]
        modes = (raw,) if isinstance(raw, str) else tuple(raw)
    else:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS.items() if cfg.get(key, False))
        modes = modes or ("mean",)
    for mode in modes:
        if mode not in POOLING_MODES:
            raise UnsupportedModelError(
                f"{path}: pooling mode {mode!r} is not supported; expected one of {', '.join(POOLING_MODES)}"
            )
    if cfg.get("include_prompt", True) is not True:
        raise UnsupportedModelError(f"{path}: include_prompt=false is not supported")
    return modes


def _pipeline(model_dir: Path) -> tuple[tuple[str, ...], bool]:
    """(pooling modes, normalize) from modules.json; plain transformers dirs get mean pooling."""
    modules_path = model_dir / "modules.json"
    if not modules_path.exists():
        return ("mean",), False
    modules = read_json(modules_path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelLoadError(f"{modules_path}: expected a JSON list of module objects")
    pooling: tuple[str, ...] | None = None
    normalize = False
    for index, module in enumerate(modules):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        subdir = model_dir / str(module.get("path", ""))
        if kind == "Transformer" and index == 0:
            continue
        if kind == "Pooling" and pooling is None:
            pooling = _pooling_modes(subdir / "config.json")
        elif kind == "Normalize" and pooling is not None:
            normalize = True
        else:
            raise UnsupportedModelError(
                f"{modules_path}: module {index} of type {module.get('type')!r} is not supported here; "
                "minibert runs Transformer → Pooling → [Normalize]"
            )
    if pooling is None:
        raise UnsupportedModelError(f"{modules_path}: no Pooling module; minibert needs one")
    return pooling, normalize


def _sentence_bert_fields(model_dir: Path, max_position_embeddings: int) -> tuple[int, bool]:
    """(max_seq_length, do_lower_case) as sentence-transformers derives them."""
    st_path = model_dir / "sentence_bert_config.json"
    st_cfg = _require_object(read_json(st_path), st_path) if st_path.exists() else {}
    max_seq_length = st_cfg.get("max_seq_length")
    if max_seq_length is None:
        tok_path = model_dir / "tokenizer_config.json"
        tok_cfg = _require_object(read_json(tok_path), tok_path) if tok_path.exists() else {}
        model_max = tok_cfg.get("model_max_length", max_position_embeddings)
        max_seq_length = min(int(model_max), max_position_embeddings)
    elif isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 2:
        raise ModelLoadError(f"{st_path}: 'max_seq_length' must be an integer ≥ 2, found {max_seq_length!r}")
    do_lower_case = st_cfg.get("do_lower_case", False)
    if not isinstance(do_lower_case, bool):
        raise ModelLoadError(f"{st_path}: 'do_lower_case' must be true or false, found {do_lower_case!r}")
    return min(max_seq_length, max_position_embeddings), do_lower_case


def _similarity_fn_name(model_dir: Path) -> str:
    """The score function the model was trained for, as sentence-transformers records it (default cosine)."""
    path = model_dir / "config_sentence_transformers.json"
    cfg = _require_object(read_json(path), path) if path.exists() else {}
    name = cfg.get("similarity_fn_name") or "cosine"
    if name not in ("cosine", "dot"):
        raise UnsupportedModelError(f"{path}: similarity_fn_name {name!r} is not supported (cosine or dot)")
    return name


def load_config(model_dir: str | Path) -> ModelConfig:
    """Build the one ModelConfig for a sentence-transformers (or plain transformers) directory."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir}: not a directory")
    fields = _transformer_fields(model_dir / "config.json")
    pooling_modes, normalize = _pipeline(model_dir)
    max_seq_length, do_lower_case = _sentence_bert_fields(model_dir, fields["max_position_embeddings"])
    return ModelConfig(
        model_dir=model_dir,
        max_seq_length=max_seq_length,
        do_lower_case=do_lower_case,
        pooling_modes=pooling_modes,
        normalize=normalize,
        similarity_fn_name=_similarity_fn_name(model_dir),
        **fields,
    )
