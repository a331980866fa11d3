"""Random-init DistilBERT and MPNet sentence-transformers directories, and a Dense-module add-on.

The counterparts of conftest's ``make_bert_dir`` for the other two architectures minibert runs. Each model
is a seeded random-init transformers model with noise on its 1-D parameters, saved as a sentence-transformers
directory by minibert.bench.random_init's ``build_random_model`` (the builder conftest's ``build_bert_dir`` uses).

Tokenizers are built with transformers from the BERT uncased WordPiece vocabulary of the real
all-MiniLM-L6-v2 directory (conftest's ``real_model_dir``), the way the published models ship them:

* DistilBERT (the msmarco-distilbert models use BERT's uncased vocab): ``DistilBertTokenizer`` over the
  unchanged 30522-entry vocab, so ``tokenizer_class`` is ``DistilBertTokenizer`` and ``model_input_names``
  is ``[input_ids, attention_mask]`` (the class default; tokenizer_config.json has no such key, like the
  published ones): sentence-transformers feeds no ``token_type_ids``. Ids equal the BERT tokenizer's.
* MPNet (like microsoft/mpnet-base and the multi-qa / all-mpnet models): ``MPNetTokenizer``, lower-casing,
  over ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, then BERT's whole vocab shifted by 4 (its
  ``[PAD]``/``[UNK]``/``[CLS]``/``[SEP]``/``[MASK]`` kept as entries 4/104/105/106/107; ``[UNK]``, not
  ``<unk>``, is the unknown token, as in the published tokenizers), then ``<mask>`` last (30526):
  30527 entries. Sequences are ``<s> … </s>``, padded with ``<pad>``; word ids are BERT's + 4. The added
  (special) tokens are ``<s> <pad> </s> [UNK] <mask>``, so ``<unk>`` or ``[MASK]`` in text are ordinary
  word pieces, and ``<mask>`` swallows the space before it (``lstrip``), as transformers sets it up.

Plain builders (``build_distilbert_dir``, ``build_mpnet_dir``, ``add_dense``) work outside pytest; the
session fixtures ``make_distilbert_dir`` / ``make_mpnet_dir`` are thin caching wrappers around them.
Import them into a test module with ``from tests.arch_fixtures import make_distilbert_dir, ...``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from minibert.bench.random_init import TOKENIZER_FILES, build_random_model, legacy_pooling

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Sizes of the random-init DistilBERT models (DistilBertConfig's own key names).
DISTILBERT_SHAPES = {
    "tiny": dict(dim=32, n_layers=2, n_heads=4, hidden_dim=37),
    "tiny-d32": dict(dim=64, n_layers=2, n_heads=2, hidden_dim=37),
    "distilbert-base": dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072),
}

# Sizes of the random-init MPNet models (MPNetConfig's key names).
MPNET_SHAPES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
    "tiny-d32": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37),
    "mpnet-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}

# The MPNet vocabulary around the BERT WordPiece entries (see the module docstring).
MPNET_HEAD_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")
MPNET_MASK_TOKEN = "<mask>"
MPNET_VOCAB_SIZE = len(MPNET_HEAD_TOKENS) + 30522 + 1

# The transformers config arguments of each architecture besides its sizes (DistilBERT, MPNet as published).
ARCH_CONFIGS = {
    "distilbert": dict(vocab_size=30522, max_position_embeddings=512, pad_token_id=0),
    "mpnet": dict(
        vocab_size=MPNET_VOCAB_SIZE,
        max_position_embeddings=514,
        relative_attention_num_buckets=32,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    ),
}
ARCH_SHAPES = {"distilbert": DISTILBERT_SHAPES, "mpnet": MPNET_SHAPES}

DENSE_TYPE = "sentence_transformers.models.Dense"


def hidden_width(shape: dict) -> int:
    """The hidden size of a shape dict in BERT/MPNet's (``hidden_size``) or DistilBERT's (``dim``) key names."""
    return shape.get("hidden_size", shape.get("dim"))


def _seed(*key: object) -> int:
    """A torch seed that depends only on the fixture arguments (not on the order fixtures are requested in)."""
    return zlib.crc32(repr(key).encode()) % (2**31)


def _read_vocab(tokenizer_dir: Path) -> list[str]:
    return (tokenizer_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()


def mpnet_vocab(bert_vocab: list[str]) -> list[str]:
    """The MPNet vocabulary: ``<s> <pad> </s> <unk>``, the BERT vocab unchanged, ``<mask>``."""
    return [*MPNET_HEAD_TOKENS, *bert_vocab, MPNET_MASK_TOKEN]


def _save_tokenizer(tokenizer: PreTrainedTokenizerBase, vocab: list[str], out_dir: Path) -> Path:
    """save_pretrained (tokenizer.json + tokenizer_config.json), plus the vocab.txt and special_tokens_map.json
    the published directories carry and transformers 5 no longer writes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "vocab.txt").write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(tokenizer.special_tokens_map, indent=2))
    missing = [name for name in TOKENIZER_FILES if not (out_dir / name).exists()]
    assert not missing, f"{out_dir}: tokenizer files missing after save: {missing}"
    return out_dir


def build_distilbert_tokenizer(bert_tokenizer_dir: Path, out_dir: Path) -> Path:
    """A DistilBertTokenizer (uncased BERT WordPiece) saved to ``out_dir``; returns ``out_dir``."""
    from transformers import DistilBertTokenizer

    vocab = _read_vocab(bert_tokenizer_dir)
    tokenizer = DistilBertTokenizer(
        vocab={token: index for index, token in enumerate(vocab)}, do_lower_case=True, model_max_length=512
    )
    return _save_tokenizer(tokenizer, vocab, out_dir)


def build_mpnet_tokenizer(bert_tokenizer_dir: Path, out_dir: Path) -> Path:
    """An MPNetTokenizer (lower-casing) over :func:`mpnet_vocab` saved to ``out_dir``; returns ``out_dir``."""
    from transformers import MPNetTokenizer

    vocab = mpnet_vocab(_read_vocab(bert_tokenizer_dir))
    tokenizer = MPNetTokenizer(
        vocab={token: index for index, token in enumerate(vocab)}, do_lower_case=True, model_max_length=512
    )
    return _save_tokenizer(tokenizer, vocab, out_dir)


def _staged_tokenizer(base_dir: Path, kind: str, bert_tokenizer_dir: Path) -> Path:
    """The tokenizer files for ``kind``, built once per ``base_dir`` and copied into each model directory."""
    stage = Path(base_dir) / f"_tokenizer-{kind}"
    if not all((stage / name).exists() for name in TOKENIZER_FILES):
        build = {"distilbert": build_distilbert_tokenizer, "mpnet": build_mpnet_tokenizer}[kind]
        build(Path(bert_tokenizer_dir), stage)
    return stage


def _build_dir(
    arch: str,
    base_dir: Path,
    shape: str,
    bert_tokenizer_dir: Path,
    pooling: dict | None,
    normalize: bool,
    max_seq_length: int,
    seed: int,
) -> Path:
    """A seeded random-init ``arch`` model of ``shape`` with noise on its 1-D parameters, saved as a
    sentence-transformers directory under ``base_dir`` with ``arch``'s staged tokenizer."""
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    dims = ARCH_SHAPES[arch][shape]
    return build_random_model(
        Path(tempfile.mkdtemp(prefix=f"{arch}-{shape}-", dir=base_dir)),
        arch,
        {**ARCH_CONFIGS[arch], **dims},
        _staged_tokenizer(base_dir, arch, bert_tokenizer_dir),
        pooling=pooling or legacy_pooling("mean", hidden_width(dims)),
        normalize=normalize,
        max_seq_length=max_seq_length,
        seed=seed,
        noise=True,
    )


def build_distilbert_dir(
    base_dir: Path,
    shape: str,
    bert_tokenizer_dir: Path,
    *,
    pooling: dict | None = None,
    normalize: bool = False,
    max_seq_length: int = 128,
    seed: int = 1,
) -> Path:
    """A seeded random-init DistilBertModel saved as a sentence-transformers directory under ``base_dir``.

    ``bert_tokenizer_dir`` supplies the BERT uncased vocab.txt (e.g. the real all-MiniLM-L6-v2 directory).
    """
    return _build_dir("distilbert", base_dir, shape, bert_tokenizer_dir, pooling, normalize, max_seq_length, seed)


def build_mpnet_dir(
    base_dir: Path,
    shape: str,
    bert_tokenizer_dir: Path,
    *,
    pooling: dict | None = None,
    normalize: bool = False,
    max_seq_length: int = 384,
    seed: int = 1,
) -> Path:
    """A seeded random-init MPNetModel saved as a sentence-transformers directory under ``base_dir``.

    ``bert_tokenizer_dir`` supplies the BERT uncased vocab.txt the MPNet vocabulary is built around.
    """
    return _build_dir("mpnet", base_dir, shape, bert_tokenizer_dir, pooling, normalize, max_seq_length, seed)


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
    bias: bool = True,
    seed: int = 0,
) -> Path:
    """Copy ``model_dir`` to a new sibling directory and add a sentence-transformers Dense module to the copy.

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
    new_dir = Path(tempfile.mkdtemp(prefix=f"{model_dir.name}-dense{out_features}-", dir=model_dir.parent))
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


def _caching_factory(
    base_dir: Path, build: Callable[..., Path], shapes: dict, tokenizer_dir: Path, arch: str
) -> Callable[..., Path]:
    """``make(shape, *, pooling, normalize, max_seq_length)``: ``build`` once per distinct argument set."""
    cache: dict[tuple, Path] = {}

    def make(shape: str, *, pooling: dict | None = None, normalize: bool = False, max_seq_length: int) -> Path:
        pooling = pooling or legacy_pooling("mean", hidden_width(shapes[shape]))
        key = (shape, json.dumps(pooling, sort_keys=True), normalize, max_seq_length)
        if key not in cache:
            cache[key] = build(
                base_dir,
                shape,
                tokenizer_dir,
                pooling=pooling,
                normalize=normalize,
                max_seq_length=max_seq_length,
                seed=_seed(arch, *key),
            )
        return cache[key]

    return make


@pytest.fixture(scope="session")
def make_distilbert_dir(tmp_path_factory, real_model_dir) -> Callable[..., Path]:
    """Factory: ``make(shape, *, pooling=None, normalize=False, max_seq_length=128) -> Path``, a seeded
    random-init DistilBertModel saved as a sentence-transformers directory (cached per arguments)."""
    make = _caching_factory(
        tmp_path_factory.mktemp("distilbert"), build_distilbert_dir, DISTILBERT_SHAPES, real_model_dir, "distilbert"
    )

    def make_distilbert(
        shape: str, *, pooling: dict | None = None, normalize: bool = False, max_seq_length: int = 128
    ) -> Path:
        return make(shape, pooling=pooling, normalize=normalize, max_seq_length=max_seq_length)

    return make_distilbert


@pytest.fixture(scope="session")
def make_mpnet_dir(tmp_path_factory, real_model_dir) -> Callable[..., Path]:
    """Factory: ``make(shape, *, pooling=None, normalize=False, max_seq_length=384) -> Path``, a seeded
    random-init MPNetModel with an MPNet tokenizer, saved as a sentence-transformers directory (cached)."""
    make = _caching_factory(tmp_path_factory.mktemp("mpnet"), build_mpnet_dir, MPNET_SHAPES, real_model_dir, "mpnet")

    def make_mpnet(
        shape: str, *, pooling: dict | None = None, normalize: bool = False, max_seq_length: int = 384
    ) -> Path:
        return make(shape, pooling=pooling, normalize=normalize, max_seq_length=max_seq_length)

    return make_mpnet
