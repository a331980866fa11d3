"""Tokenization: text → token ids, with the ids sentence-transformers feeds its model, packed (:class:`PackedBatch`).

Follows sentence-transformers' ``Transformer.preprocess``: the HF fast tokenizer called with
``padding=True, truncation="longest_first", max_length=max_seq_length`` (special tokens included
in the budget) and — when ``sentence_bert_config.json`` says ``do_lower_case`` — a ``Lowercase``
normalizer put in front of the tokenizer's own. Differs in layout only: the ids are packed end to end
(``cu_seqlens`` offsets) instead of right-padded; :meth:`PackedBatch.to_padded` gives sentence-transformers'
padded ids, attention mask and token types back.

Source of the tokenizer: ``tokenizer.json`` (the ``tokenizers`` library runs it, with its baked-in
padding/truncation settings replaced by the ones above). Fallback for directories without it:
``vocab.txt`` + ``tokenizer_config.json`` → a BERT WordPiece tokenizer (BertNormalizer with the
config's lower-casing / accent stripping / CJK splitting, BertPreTokenizer, ``[CLS] … [SEP]``).

Long inputs: the ``tokenizers`` library normalizes and pre-tokenizes the *whole* string before it truncates, in
time that grows faster than the length. A text longer than ``16 · max_seq_length`` characters is therefore
tokenized from a prefix that already holds enough tokens, with exactly the ids the whole string gives
(:meth:`BatchTokenizer._encode_long`; where the prefix may end: :mod:`.long_text`).
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Encoding, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from ..errors import ModelLoadError, UnsupportedModelError
from ..packing import PackedBatch
from .config import ModelConfig
from .files import present, read_json_object, regular_file_size
from .long_text import LongTextCutter

# Every file BatchTokenizer may read (tokenizer.json, else vocab.txt; tokenizer_config.json for the pad token)
TOKENIZER_SOURCE_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
# tokenizer.json model types minibert is built and tested for (BERT, DistilBERT and MPNet all use WordPiece)
TOKENIZER_MODELS = ("WordPiece",)


def _foreign_tokenizer(path: Path, kind: object) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"{path}: tokenizer model type {kind!r} is not supported; minibert supports "
        f"{', '.join(TOKENIZER_MODELS)} tokenizers only (those of BERT, DistilBERT and MPNet)"
    )


def _from_tokenizer_json(path: Path) -> Tokenizer:
    """The tokenizer in `path`; when the tokenizers library refuses it, the error says why in minibert's words."""
    if regular_file_size(path) == 0:  # also refuses links to nothing, loops and FIFOs before Rust opens them
        raise ModelLoadError(f"{path}: file is empty (0 bytes), expected JSON")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception subclasses from Rust
        model = read_json_object(path).get("model")  # raises for unreadable files and bad JSON
        if not isinstance(model, dict):
            raise ModelLoadError(f"{path}: has no 'model' object; not a tokenizers tokenizer.json") from None
        if model.get("type") not in TOKENIZER_MODELS:
            raise _foreign_tokenizer(path, model.get("type")) from None
        raise ModelLoadError(f"{path}: cannot be loaded by the tokenizers library ({exc})") from None
    if not isinstance(tokenizer.model, WordPiece):
        raise _foreign_tokenizer(path, type(tokenizer.model).__name__)
    return tokenizer


def _from_vocab(model_dir: Path) -> Tokenizer:
    """A BERT WordPiece tokenizer from vocab.txt + tokenizer_config.json, as transformers builds one."""
    vocab_path = model_dir / "vocab.txt"
    config_path = model_dir / "tokenizer_config.json"
    cfg = read_json_object(config_path) if present(config_path) else {}
    tokenizer_class = cfg.get("tokenizer_class", "BertTokenizer")
    if tokenizer_class not in ("BertTokenizer", "BertTokenizerFast"):
        raise UnsupportedModelError(
            f"{config_path}: tokenizer_class {tokenizer_class!r} needs a tokenizer.json; "
            "without one minibert can only build BertTokenizer from vocab.txt"
        )
    if regular_file_size(vocab_path) == 0:
        raise ModelLoadError(f"{vocab_path}: file is empty (0 bytes), expected one token per line")
    try:
        lines = vocab_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
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


def _check_ids_fit(tokenizer: Tokenizer, source: Path, vocab_size: int) -> None:
    """Every id the tokenizer can produce must index the word-embedding table (else the forward would fail
    on an out-of-range row at encode time, or read a wrong one)."""
    top_id, token = max((i, t) for t, i in tokenizer.get_vocab(with_added_tokens=True).items())
    if top_id >= vocab_size:
        raise ModelLoadError(
            f"{source}: token {token!r} has id {top_id}, but config.json's vocab_size is {vocab_size}: "
            "the tokenizer does not belong to these weights"
        )


def _has_lowercase(normalizer: normalizers.Normalizer | None) -> bool:
    if isinstance(normalizer, normalizers.Lowercase):
        return True
    if isinstance(normalizer, normalizers.Sequence):
        return any(isinstance(n, normalizers.Lowercase) for n in normalizer)
    return False


def _pad_token_id(tokenizer: Tokenizer, model_dir: Path, default: int) -> int:
    """The pad id transformers uses: tokenizer_config's pad_token looked up in the vocabulary."""
    config_path = model_dir / "tokenizer_config.json"
    pad_token = read_json_object(config_path).get("pad_token") if present(config_path) else None
    if isinstance(pad_token, dict):  # AddedToken serialisation
        pad_token = pad_token.get("content")
    pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
    return default if pad_id is None else pad_id


_LONG_TEXT_FACTOR = 16  # texts longer than this many characters per max_seq_length token take the prefix path
_CHUNK_FACTOR = 4  # prefix chunks of about this many characters per max_seq_length token


class BatchTokenizer:
    """Turns lists of strings into truncated, packed batches (:class:`PackedBatch`)."""

    def __init__(self, config: ModelConfig) -> None:
        model_dir = config.model_dir
        if present(model_dir / "tokenizer.json"):
            source = model_dir / "tokenizer.json"
            tokenizer = _from_tokenizer_json(source)
        elif present(model_dir / "vocab.txt"):
            source = model_dir / "vocab.txt"
            tokenizer = _from_vocab(model_dir)
        else:
            raise ModelLoadError(f"{model_dir}: neither tokenizer.json nor vocab.txt is present")
        _check_ids_fit(tokenizer, source, config.vocab_size)
        if config.do_lower_case and not _has_lowercase(tokenizer.normalizer):
            existing = [tokenizer.normalizer] if tokenizer.normalizer is not None else []
            tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), *existing])
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=config.max_seq_length, strategy="longest_first")
        # Never changed after this point: calls only read the tokenizer, so threads may share it.
        self._tokenizer = tokenizer
        self.pad_token_id = _pad_token_id(tokenizer, model_dir, config.pad_token_id)
        self.max_seq_length = config.max_seq_length
        self._content_tokens = config.max_seq_length - tokenizer.num_special_tokens_to_add(False)
        self._cutter = LongTextCutter.for_tokenizer(tokenizer) if self._content_tokens > 0 else None
        self._long_chars = _LONG_TEXT_FACTOR * config.max_seq_length
        self._chunk_chars = _CHUNK_FACTOR * config.max_seq_length
        # the special tokens the template puts around one sentence's word pieces, read off a probe encoding
        probe = tokenizer.encode("a")
        content = [i for i, special in enumerate(probe.special_tokens_mask) if not special]
        self._prefix = probe.ids[: content[0]] if content else probe.ids
        self._suffix = probe.ids[content[-1] + 1 :] if content else []

    def _encode_long(self, text: str) -> Encoding:
        """`text`'s truncated encoding, read from a prefix that holds enough tokens (module docstring).

        Chunks of about ``4 · max_seq_length`` characters, each ending before a boundary, are counted in
        rounds of 1, 2, 4, … chunks until they hold more than the tokens the output keeps (so the encoding's
        ``overflowing`` says the text was cut); the prefix they make up is then encoded once. Time and memory grow
        with that prefix, not with `text`.
        """
        cutter = self._cutter
        end, count, round_size = 0, 0, 1
        while count <= self._content_tokens and end < len(text):  # one more: the encoding shows the cut
            chunks = []
            while len(chunks) < round_size and end < len(text):
                cut = cutter.next_cut(text, end + self._chunk_chars)
                chunks.append(cutter.shorten(text[end:cut]))
                end = cut
            count += sum(len(e.ids) for e in self._tokenizer.encode_batch(chunks, add_special_tokens=False))
            round_size *= 2
        encoding = self._tokenizer.encode(cutter.shorten(text[:end] if end < len(text) else text))
        if end == len(text) or len(encoding.ids) >= self.max_seq_length:
            return encoding
        return self._tokenizer.encode(text)  # the chunks over-counted: not expected for the pipelines accepted

    def encode(self, texts: list[str]) -> list[Encoding]:
        """The truncated encodings (special tokens added) of `texts`, long ones through a prefix."""
        if self._cutter is None:
            return self._tokenizer.encode_batch(texts, add_special_tokens=True)
        long_rows = [row for row, text in enumerate(texts) if len(text) > self._long_chars]
        if not long_rows:
            return self._tokenizer.encode_batch(texts, add_special_tokens=True)
        short_rows = [row for row, text in enumerate(texts) if len(text) <= self._long_chars]
        encodings: list[Encoding | None] = [None] * len(texts)
        for row, encoding in zip(short_rows, self._tokenizer.encode_batch([texts[r] for r in short_rows]), strict=True):
            encodings[row] = encoding
        for row in long_rows:
            encodings[row] = self._encode_long(texts[row])
        return encodings

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's truncated token ids, special tokens included: what :meth:`__call__` packs."""
        return [encoding.ids for encoding in self.encode(texts)]

    @property
    def max_content_tokens(self) -> int:
        """Word pieces a sequence keeps: max_seq_length less the special tokens around them."""
        return max(self.max_seq_length - len(self._prefix) - len(self._suffix), 0)

    def with_special_tokens(self, content_ids: list[int]) -> list[int]:
        """Token ids given without special tokens (as a text's word pieces), wrapped in the model's special tokens
        (``[CLS] … [SEP]``, ``<s> … </s>``) and truncated to max_seq_length as a text would be."""
        return [*self._prefix, *content_ids[: self.max_content_tokens], *self._suffix]

    def __call__(self, texts: list[str]) -> PackedBatch:
        """Tokenize `texts` (already validated strings) into a packed batch."""
        return PackedBatch.from_ids(self.token_ids(texts), self.pad_token_id)
