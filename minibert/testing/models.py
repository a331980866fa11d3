"""Seeded random-init models saved as sentence-transformers directories: the one builder for tests and benchmarks.

:func:`build_random_model` makes a transformers model of a given type and sizes from torch's seeded RNG
(``AutoModel.from_config``), optionally with seeded noise on every 1-D parameter, and saves it with
``save_pretrained(safe_serialization=True)`` next to the files sentence-transformers reads: the tokenizer files
copied from another directory, ``modules.json`` (Transformer → Pooling, → Normalize when asked),
``sentence_bert_config.json`` (``max_seq_length``, ``do_lower_case`` false) and ``1_Pooling/config.json``.
The directory is built beside its destination and moved into place atomically
(:func:`~minibert.loading.download.install_staged_dir`), under a lock, so an interrupted build leaves nothing
half-written and processes building the same model at once build it once; a destination that is already complete
is reused. :func:`build_model_dir` names the destination after everything that determines the weights, so a folder
of them is a cache shared by every test process and run.

Cross-encoders (rerankers) the same way: :func:`build_random_cross_encoder` makes a seeded random-init
``AutoModelForSequenceClassification`` (``BertForSequenceClassification``, ``ElectraForSequenceClassification``)
with noise on its 1-D parameters, saved as the published cross-encoders are, a plain transformers directory that
sentence-transformers' ``CrossEncoder`` loads: config.json (``num_labels``, and the activation keys CrossEncoder
reads when asked), model.safetensors, the tokenizer files with ``model_max_length`` (CrossEncoder's truncation
length) in tokenizer_config.json; optionally the files sentence-transformers 6's ``CrossEncoder.save`` adds.
:func:`build_cross_encoder_dir` names and caches them like :func:`build_model_dir`; :func:`scale_classifier` copies
one with its logits spread apart. torch and transformers are
imported only when a model is built.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from ..loading.download import install_staged_dir, new_staging_dir
from ..loading.resolve import is_complete
from .tables import ARCH_CONFIGS, ARCH_SHAPES, CROSS_ENCODER_CONFIGS, CROSS_ENCODER_SHAPES
from .tokenizers import TOKENIZER_BUILDERS, TOKENIZER_FILES

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

    def fill(staged: Path) -> None:
        _save_random_model(staged, "AutoModel", model_type, config, seed=seed, noise=noise)
        _copy_tokenizer(tokenizer_dir, staged)
        _write_st_files(staged, pooling=pooling, normalize=normalize, max_seq_length=max_seq_length)

    return _build_once(Path(dest), lambda d: (d / "modules.json").is_file(), fill)


def _save_random_model(
    out_dir: Path, auto_class: str, model_type: str, config: Mapping[str, object], *, seed: int, noise: bool
) -> None:
    """transformers' `auto_class` ("AutoModel", "AutoModelForSequenceClassification") from_config after
    torch.manual_seed(seed), noise on its 1-D parameters if asked, saved to `out_dir` as safetensors."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, auto_class).from_config(transformers.AutoConfig.for_model(model_type, **config))
    if noise:
        _add_noise_(model)
    model.save_pretrained(out_dir, safe_serialization=True)


def _copy_tokenizer(tokenizer_dir: Path, out_dir: Path) -> None:
    """Copy the tokenizer files (:data:`TOKENIZER_FILES`, those present) from `tokenizer_dir` into `out_dir`."""
    for name in TOKENIZER_FILES:
        if (Path(tokenizer_dir) / name).is_file():
            shutil.copy(Path(tokenizer_dir) / name, out_dir / name)


def _build_once(dest: Path, complete: Callable[[Path], bool], fill: Callable[[Path], None]) -> Path:
    """Make the directory `dest` unless `complete(dest)`: `fill` a staging directory beside it, then move that into
    place atomically, all under :func:`_locked` (and `complete` checked again there, so of processes building `dest`
    at once one builds it and the others reuse it). Returns `dest`."""
    if complete(dest):
        return dest
    with _locked(dest):
        if not complete(dest):  # else built by another process meanwhile
            staged = new_staging_dir(dest)
            try:
                fill(staged)
                install_staged_dir(staged, dest)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
    return dest


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """An exclusive lock on `dest`'s name (a lock file beside it), held while the block runs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# Default truncation of the built models: past what the ragged texts need, and for MPNet past 128 tokens (its
# log-spaced relative-position buckets start there).
MAX_SEQ_LENGTHS = {"bert": 128, "distilbert": 128, "mpnet": 384}
CROSS_ENCODER_MAX_LENGTH = 512  # the cross-encoders' default truncation: the published ones' model_max_length
_BUILD_VERSION = "1"  # part of every built model's name: change it when the builder changes what it writes


def hidden_width(shape: Mapping[str, int]) -> int:
    """The hidden size of a shape dict in BERT/MPNet's (``hidden_size``) or DistilBERT's (``dim``) key names."""
    return shape.get("hidden_size", shape.get("dim"))


def _versions() -> str:
    import torch
    import transformers

    return f"torch {torch.__version__}, transformers {transformers.__version__}"


def _seed_of(key: str) -> int:
    """The seed drawn from a model's arguments (their JSON)."""
    return zlib.crc32(key.encode()) % 2**31


def _cache_name(key: str, seed: int) -> str:
    """A built model's name: a hash of its arguments, seed, the builder's version and torch / transformers'."""
    return hashlib.sha256(f"{_BUILD_VERSION}|{key}|{seed}|{_versions()}".encode()).hexdigest()[:16]


def staged_tokenizer(base_dir: Path, arch: str, bert_tokenizer_dir: Path) -> Path:
    """The tokenizer files of `arch` (BERT's own, or a DistilBERT / MPNet tokenizer built from BERT's vocabulary by
    :mod:`minibert.testing.tokenizers`), made once under `base_dir`."""
    if arch not in TOKENIZER_BUILDERS:
        return Path(bert_tokenizer_dir)
    dest = Path(base_dir) / f"tokenizer-{arch}-{_BUILD_VERSION}"
    return _build_once(dest, Path.is_dir, lambda staged: TOKENIZER_BUILDERS[arch](Path(bert_tokenizer_dir), staged))


def build_model_dir(
    base_dir: Path,
    arch: str,
    shape: str,
    bert_tokenizer_dir: Path,
    *,
    pooling: Mapping[str, object] | None = None,
    normalize: bool = False,
    max_seq_length: int | None = None,
    seed: int | None = None,
) -> Path:
    """A seeded random-init `arch` model ("bert", "distilbert", "mpnet") of `shape` (a key of
    :data:`~minibert.testing.tables.ARCH_SHAPES`), noise on its 1-D parameters, saved as a sentence-transformers
    directory under `base_dir`, with the tokenizer the published models of that architecture have
    (:func:`staged_tokenizer`; `bert_tokenizer_dir` supplies BERT's uncased vocabulary, e.g. all-MiniLM-L6-v2's).

    Pooling defaults to mean, max_seq_length to :data:`MAX_SEQ_LENGTHS`, the seed to one drawn from the other
    arguments. The directory is named after all of them (and the torch / transformers versions): built once, then
    found again by any process.
    """
    sizes = ARCH_SHAPES[arch][shape]
    pooling = dict(pooling or legacy_pooling("mean", hidden_width(sizes)))
    max_seq_length = MAX_SEQ_LENGTHS[arch] if max_seq_length is None else max_seq_length
    key = json.dumps([arch, shape, pooling, normalize, max_seq_length], sort_keys=True)
    seed = _seed_of(key) if seed is None else seed
    name = _cache_name(key, seed)
    return build_random_model(
        Path(base_dir) / f"{arch}-{shape}-{name}",
        arch,
        {**ARCH_CONFIGS[arch], **sizes},
        staged_tokenizer(base_dir, arch, bert_tokenizer_dir),
        pooling=pooling,
        normalize=normalize,
        max_seq_length=max_seq_length,
        seed=seed,
        noise=True,
    )


# sentence-transformers 6's CrossEncoder directory: modules.json (one Transformer module, at the root), its
# sentence_bert_config.json (without it the module loads as a feature extractor) and config_sentence_transformers.json
# (without model_type "CrossEncoder" the directory is read as a SentenceTransformer and converted).
_CROSS_ENCODER_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"}
]
_CROSS_ENCODER_TRANSFORMER = {
    "transformer_task": "sequence-classification",
    "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
    "module_output_name": "scores",
}


def _write_cross_encoder_st_files(model_dir: Path, activation: str) -> None:
    """The files sentence-transformers 6.2's ``CrossEncoder.save`` adds to a transformers directory (less
    README.md and the ``__version__`` block of config_sentence_transformers.json)."""
    (model_dir / "modules.json").write_text(json.dumps(_CROSS_ENCODER_MODULES, indent=2))
    (model_dir / "sentence_bert_config.json").write_text(json.dumps(_CROSS_ENCODER_TRANSFORMER, indent=4))
    st_config = {"activation_fn": activation, "default_prompt_name": None, "model_type": "CrossEncoder", "prompts": {}}
    (model_dir / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2))


def _set_tokenizer_config(model_dir: Path, **values: object) -> None:
    """Set keys of `model_dir`'s tokenizer_config.json."""
    path = model_dir / "tokenizer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **values}, indent=2))


def build_random_cross_encoder(
    dest: Path,
    model_type: str,
    config: Mapping[str, object],
    tokenizer_dir: Path,
    *,
    seed: int,
    num_labels: int = 1,
    activation: str | None = None,
    legacy_activation: str | None = None,
    st_activation: str | None = None,
    max_length: int = CROSS_ENCODER_MAX_LENGTH,
    tokenizer_class: str | None = None,
    noise: bool = True,
) -> Path:
    """A seeded random-init transformers sequence-classification model saved at `dest` as a cross-encoder
    directory; returns `dest` (an existing complete one is returned as is).

    The activation arguments are dotted ``torch.nn`` class names (:data:`~minibert.testing.tables.ACTIVATION_IDENTITY`,
    :data:`~minibert.testing.tables.ACTIVATION_SIGMOID`), each written where one sentence-transformers version keeps
    it; with none, sentence-transformers' CrossEncoder applies Sigmoid when ``num_labels == 1``, else Identity.

    Args:
        dest: the directory to make.
        model_type: transformers' model type: "bert", "electra", …
        config: keyword arguments of that type's config class (sizes, vocab_size), besides num_labels.
        tokenizer_dir: where the tokenizer files (:data:`TOKENIZER_FILES`, those present) are copied from; they need a
            tokenizer_config.json.
        seed: torch.manual_seed before the model is made (and the noise drawn).
        num_labels: the classifier's outputs (config.json's ``id2label`` has that many entries).
        activation: config.json's ``sentence_transformers.activation_fn`` (written by sentence-transformers 4 and 5).
        legacy_activation: config.json's ``sbert_ce_default_activation_function`` (sentence-transformers < 4).
        st_activation: config_sentence_transformers.json's ``activation_fn``, with the modules.json and
            sentence_bert_config.json around it (sentence-transformers ≥ 6 saves this layout).
        max_length: tokenizer_config.json's ``model_max_length``, the truncation length CrossEncoder uses.
        tokenizer_class: tokenizer_config.json's ``tokenizer_class`` (None: the copied one).
        noise: seeded N(0, 0.1²) noise on every 1-D parameter (biases, LayerNorm), drawn after the init.
    """
    config = {**config, "num_labels": num_labels}
    if activation is not None:
        config["sentence_transformers"] = {"activation_fn": activation}
    if legacy_activation is not None:
        config["sbert_ce_default_activation_function"] = legacy_activation
    tokenizer_values = {"model_max_length": max_length}
    if tokenizer_class is not None:
        tokenizer_values["tokenizer_class"] = tokenizer_class

    def fill(staged: Path) -> None:
        _save_random_model(staged, "AutoModelForSequenceClassification", model_type, config, seed=seed, noise=noise)
        _copy_tokenizer(tokenizer_dir, staged)
        _set_tokenizer_config(staged, **tokenizer_values)
        if st_activation is not None:
            _write_cross_encoder_st_files(staged, st_activation)

    return _build_once(Path(dest), is_complete, fill)


# The tokenizer class the published cross-encoders of each architecture name (same WordPiece files and ids as BERT's).
_CROSS_ENCODER_TOKENIZER_CLASSES = {"bert": "BertTokenizer", "electra": "ElectraTokenizer"}


def build_cross_encoder_dir(
    base_dir: Path,
    arch: str,
    shape: str,
    bert_tokenizer_dir: Path,
    *,
    num_labels: int = 1,
    activation: str | None = None,
    legacy_activation: str | None = None,
    st_activation: str | None = None,
    max_length: int | None = None,
    seed: int | None = None,
) -> Path:
    """A seeded random-init `arch` cross-encoder ("bert", "electra") of `shape` (a key of
    :data:`~minibert.testing.tables.CROSS_ENCODER_SHAPES`), noise on its 1-D parameters, saved under `base_dir` by
    :func:`build_random_cross_encoder` with BERT's uncased WordPiece tokenizer from `bert_tokenizer_dir` (e.g.
    all-MiniLM-L6-v2's; ELECTRA's is the same vocabulary, named ``ElectraTokenizer`` as the published ones name it).

    max_length defaults to 512, the published cross-encoders' ``model_max_length`` (and BERT / ELECTRA's
    ``max_position_embeddings``). The seed defaults to one drawn from (arch, shape, num_labels) only, so directories
    that differ in the activation keys or max_length hold the same weights. The directory is named
    ``cross-{arch}-{shape}-{hash of all the arguments and the torch / transformers versions}``: built once, then
    found again by any process.
    """
    max_length = CROSS_ENCODER_MAX_LENGTH if max_length is None else max_length
    weights_key = json.dumps(["cross-encoder", arch, shape, num_labels])
    seed = _seed_of(weights_key) if seed is None else seed
    key = json.dumps(
        [weights_key, activation, legacy_activation, st_activation, max_length, _CROSS_ENCODER_TOKENIZER_CLASSES[arch]]
    )
    return build_random_cross_encoder(
        Path(base_dir) / f"cross-{arch}-{shape}-{_cache_name(key, seed)}",
        arch,
        {**CROSS_ENCODER_CONFIGS[arch], **CROSS_ENCODER_SHAPES[arch][shape]},
        bert_tokenizer_dir,
        seed=seed,
        num_labels=num_labels,
        activation=activation,
        legacy_activation=legacy_activation,
        st_activation=st_activation,
        max_length=max_length,
        tokenizer_class=_CROSS_ENCODER_TOKENIZER_CLASSES[arch],
    )


CLASSIFIER_WEIGHTS = ("classifier.weight", "classifier.out_proj.weight")  # BERT's, ELECTRA's last Linear


def scale_classifier(model_dir: Path, dest: Path, factor: float) -> Path:
    """A copy of cross-encoder `model_dir` at `dest` with its last Linear's weight × `factor`.

    A random-init cross-encoder's logits sit within ~1e-3 of each other, so rankings by them hinge on near-ties;
    scaled by 1000 they spread over units, and two implementations that agree to ~1e-4 rank alike. Returns `dest`.
    """
    import numpy as np
    from safetensors.numpy import load_file, save_file

    shutil.copytree(model_dir, dest)
    tensors = load_file(Path(model_dir) / "model.safetensors")
    (name,) = [n for n in CLASSIFIER_WEIGHTS if n in tensors]
    tensors[name] = tensors[name] * np.float32(factor)
    save_file(tensors, dest / "model.safetensors", metadata={"format": "pt"})
    return dest


DENSE_TYPE = "sentence_transformers.models.Dense"


def _pooling_output_dim(pooling: dict) -> int:
    """Pooling's output width, from a legacy (``pooling_mode_*`` booleans) or current (``pooling_mode``) config."""
    width = pooling.get("embedding_dimension", pooling.get("word_embedding_dimension"))
    mode = pooling.get("pooling_mode")
    if mode is not None:
        n_modes = 1 if isinstance(mode, str) else len(mode)
    else:
        n_modes = max(1, sum(bool(v) for k, v in pooling.items() if k.startswith("pooling_mode_")))
    return n_modes * width


def _module_kind(module: dict) -> str:
    return module["type"].rsplit(".", 1)[-1]


def add_dense(
    model_dir: Path,
    out_features: int,
    activation: str = "torch.nn.modules.activation.Tanh",
    *,
    dest_dir: Path,
    bias: bool = True,
    seed: int = 0,
) -> Path:
    """Copy ``model_dir`` to a new directory inside `dest_dir` and add a sentence-transformers Dense module to the copy.

    The Dense module goes after the Pooling module (and after any Dense modules already there) and before
    Normalize, at ``<index>_Dense`` (``2_Dense`` for the first one); its ``config.json`` has the keys
    sentence-transformers 6.2's ``Dense.save`` writes, and its ``model.safetensors`` holds ``linear.weight``
    [out, in] and ``linear.bias`` [out] drawn from a seeded normal × 0.05. (Published models' Dense configs
    carry only the first four keys; 6.2 adds ``module_input_name``/``module_output_name``.) ``activation`` is
    the dotted name of a ``torch.nn`` module class (``torch.nn.modules.linear.Identity`` for none). Returns the
    new directory.
    """
    import torch
    from safetensors.torch import save_file

    model_dir = Path(model_dir)
    new_dir = Path(tempfile.mkdtemp(prefix=f"{model_dir.name}-dense{out_features}-", dir=dest_dir))
    shutil.copytree(model_dir, new_dir, dirs_exist_ok=True)

    modules = json.loads((new_dir / "modules.json").read_text())
    kinds = [_module_kind(m) for m in modules]
    if "Pooling" not in kinds:
        raise ValueError(f"{model_dir}: modules.json has no Pooling module to put a Dense after")
    last = max(i for i, kind in enumerate(kinds) if kind in ("Pooling", "Dense"))
    if kinds[last] == "Dense":
        prev_cfg = json.loads((new_dir / modules[last]["path"] / "config.json").read_text())
        in_features = prev_cfg["out_features"]
    else:
        in_features = _pooling_output_dim(json.loads((new_dir / modules[last]["path"] / "config.json").read_text()))

    index = last + 1
    dense_path = f"{index}_Dense"
    modules.insert(index, {"idx": index, "name": str(index), "path": dense_path, "type": DENSE_TYPE})
    for i, module in enumerate(modules[index + 1 :], start=index + 1):
        old_path = module["path"]
        module.update(idx=i, name=str(i))
        if old_path:  # renumber the later modules' folders too (e.g. 2_Normalize → 3_Normalize)
            module["path"] = f"{i}_{_module_kind(module)}"
            if (new_dir / old_path).exists():
                (new_dir / old_path).rename(new_dir / module["path"])
    (new_dir / "modules.json").write_text(json.dumps(modules, indent=2))

    generator = torch.Generator().manual_seed(seed)
    tensors = {"linear.weight": torch.randn(out_features, in_features, generator=generator) * 0.05}
    if bias:
        tensors["linear.bias"] = torch.randn(out_features, generator=generator) * 0.05
    (new_dir / dense_path).mkdir()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(new_dir / dense_path / "model.safetensors"))
    config = {
        "in_features": in_features,
        "out_features": out_features,
        "bias": bias,
        "activation_function": activation,
        "module_input_name": "sentence_embedding",
        "module_output_name": "sentence_embedding",
    }
    (new_dir / dense_path / "config.json").write_text(json.dumps(config, indent=4))
    return new_dir
