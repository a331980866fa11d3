"""Tokenization: text → a padded :class:`Batch`, with the ids sentence-transformers feeds its model.

Follows sentence-transformers' ``Transformer.preprocess``: the HF fast tokenizer called with
``padding=True, truncation="longest_first", max_length=max_seq_length`` (special tokens included
in the budget), right padding with the pad token, and — when ``sentence_bert_config.json`` says
``do_lower_case`` — a ``Lowercase`` normalizer put in front of the tokenizer's own.

Source of the tokenizer: ``tokenizer.json`` (the ``tokenizers`` library runs it, with its baked-in
padding/truncation settings replaced by the ones above). Fallback for directories without it:
``vocab.txt`` + ``tokenizer_config.json`` → a BERT WordPiece tokenizer (BertNormalizer with the
config's lower-casing / accent stripping / CJK splitting, BertPreTokenizer, ``[CLS] … [SEP]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from .config import ModelConfig, read_json
from .errors import ModelLoadError, UnsupportedModelError


@dataclass(frozen=True)
class Batch:
    """A right-padded batch. B = batch, T = longest sequence in the batch."""

    input_ids: np.ndarray  # [B, T] int64
    attention_mask: np.ndarray  # [B, T] int64, 1 = real token, 0 = padding
    token_type_ids: np.ndarray  # [B, T] int64, all zeros (single sentences)


def _from_tokenizer_json(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception subclasses from Rust
        raise ModelLoadError(f"{path}: cannot be loaded by the tokenizers library ({exc})") from None


def _from_vocab(model_dir: Path) -> Tokenizer:
    """A BERT WordPiece tokenizer from vocab.txt + tokenizer_config.json, as transformers builds one."""
    vocab_path = model_dir / "vocab.txt"
    config_path = model_dir / "tokenizer_config.json"
    cfg = read_json(config_path) if config_path.exists() else {}
    tokenizer_class = cfg.get("tokenizer_class", "BertTokenizer")
    if tokenizer_class not in ("BertTokenizer", "BertTokenizerFast"):
        raise UnsupportedModelError(
            f"{config_path}: tokenizer_class {tokenizer_class!r} needs a tokenizer.json; "
            "without one minibert can only build BertTokenizer from vocab.txt"
        )
    try:
        lines = vocab_path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelLoadError(f"{vocab_path}: cannot be read ({exc})") from None
    vocab = {token: index for index, token in enumerate(lines)}
    unk, cls, sep = (cfg.get(k, d) for k, d in (("unk_token", "[UNK]"), ("cls_token", "[CLS]"), ("sep_token", "[SEP]")))
    for token in (unk, cls, sep):
        if token not in vocab:
            raise ModelLoadError(f"{vocab_path}: special token {token!r} is not in the vocabulary")
    tokenizer = Tokenizer(WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=cfg.get("tokenize_chinese_chars", True),
        strip_accents=cfg.get("strip_accents"),
        lowercase=cfg.get("do_lower_case", True),
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing((sep, vocab[sep]), (cls, vocab[cls]))
    return tokenizer


def _has_lowercase(normalizer: normalizers.Normalizer | None) -> bool:
    if isinstance(normalizer, normalizers.Lowercase):
        return True
    if isinstance(normalizer, normalizers.Sequence):
        return any(isinstance(n, normalizers.Lowercase) for n in normalizer)
    return False


def _pad_token_id(tokenizer: Tokenizer, model_dir: Path, default: int) -> int:
    """The pad id transformers uses: tokenizer_config's pad_token looked up in the vocabulary."""
    config_path = model_dir / "tokenizer_config.json"
    pad_token = read_json(config_path).get("pad_token") if config_path.exists() else None
    if isinstance(pad_token, dict):  # AddedToken serialisation
        pad_token = pad_token.get("content")
    pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
    return default if pad_id is None else pad_id


class BatchTokenizer:
    """Turns lists of strings into padded, truncated :class:`Batch` es."""

    def __init__(self, config: ModelConfig) -> None:
        model_dir = config.model_dir
        if (model_dir / "tokenizer.json").exists():
            tokenizer = _from_tokenizer_json(model_dir / "tokenizer.json")
        elif (model_dir / "vocab.txt").exists():
            tokenizer = _from_vocab(model_dir)
        else:
            raise ModelLoadError(f"{model_dir}: neither tokenizer.json nor vocab.txt is present")
        if config.do_lower_case and not _has_lowercase(tokenizer.normalizer):
            existing = [tokenizer.normalizer] if tokenizer.normalizer is not None else []
            tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), *existing])
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=config.max_seq_length, strategy="longest_first")
        self._tokenizer = tokenizer
        self.pad_token_id = _pad_token_id(tokenizer, model_dir, config.pad_token_id)
        self.max_seq_length = config.max_seq_length

    def __call__(self, texts: list[str]) -> Batch:
        """Tokenize `texts` (already validated strings) into a right-padded batch."""
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        longest = max((len(e.ids) for e in encodings), default=0)
        input_ids = np.full((len(texts), longest), self.pad_token_id, dtype=np.int64)  # [B, T]
        attention_mask = np.zeros((len(texts), longest), dtype=np.int64)  # [B, T]
        for row, encoding in enumerate(encodings):
            input_ids[row, : len(encoding.ids)] = encoding.ids
            attention_mask[row, : len(encoding.ids)] = 1
        return Batch(input_ids, attention_mask, np.zeros_like(input_ids))
