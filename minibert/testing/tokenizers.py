"""DistilBERT and MPNet tokenizers built with transformers from BERT's uncased WordPiece vocabulary.

The way the published models ship them:

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

transformers is imported only when a tokenizer is built.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .tables import MPNET_HEAD_TOKENS, MPNET_MASK_TOKEN

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# The files a tokenizer is saved as, and what the model builder copies into each model directory.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


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
    if missing:
        raise RuntimeError(f"{out_dir}: tokenizer files missing after save: {missing}")
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


# architecture -> (BERT tokenizer dir, out dir) -> out dir; BERT uses its own files
TOKENIZER_BUILDERS: dict[str, Callable[[Path, Path], Path]] = {
    "distilbert": build_distilbert_tokenizer,
    "mpnet": build_mpnet_tokenizer,
}
