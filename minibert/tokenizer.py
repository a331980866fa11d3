"""Tokenization: text → a :class:`PackedBatch`, with the ids sentence-transformers feeds its model.

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

Long inputs: the ``tokenizers`` library normalizes and pre-tokenizes the *whole* string before it truncates,
in time that grows faster than the length (1 MB of prose 0.7 s, 10 MB 12 s; runs of punctuation or CJK
worse). A text longer than ``16 · max_seq_length`` characters is therefore tokenized as a prefix that
already holds enough tokens (:meth:`BatchTokenizer._encode_long`), with exactly the ids the whole string
gives. The prefix ends just before a *boundary character* (:class:`LongTextCutter`): one before which the
pipeline always starts a new pre-token, whatever precedes or follows it —

- ASCII whitespace (BertNormalizer maps ``\t \n \r`` to a space; BertPreTokenizer splits on whitespace),
- ASCII punctuation (BertPreTokenizer makes each punctuation character a pre-token of its own),
- CJK ideographs U+3400–U+4DBF, U+4E00–U+9FFF when BertNormalizer pads Chinese characters with spaces,

less any character that occurs past the first position of an added token (``[MASK]``'s ``]``, ``<mask>``'s
``m``), so that no added token can straddle the cut. Every normalizer step accepted (BertNormalizer, Lowercase)
works character by character — NFD's reordering of combining marks cannot cross these characters, whose
combining class is 0 — so the prefix's pre-tokens are the first pre-tokens of the whole string, and the
model turns each pre-token into word pieces on its own.

A string with no boundary for a long stretch would still be read whole, so for WordPiece (all the models
minibert runs) a run of more than 2·(m + 1) Latin letters and digits (ASCII, Latin-1, Latin Extended-A/B,
each with any combining marks U+0300–U+036F), m = ``max_input_chars_per_word`` (100), is first cut to its first
and last m + 1 letters: no boundary lies inside such a run, so it belongs to one pre-token longer than m
characters after normalization, which WordPiece turns into a single ``[UNK]`` — shortened or not.

Pipelines built from anything else (another pre-tokenizer, other normalizers, added tokens that are
normalized or single-word) get no cutter, and their texts are always tokenized whole. The tests check
every boundary character and run letter against the tokenizers minibert builds (BERT's tokenizer.json,
the vocab.txt fallback, DistilBERT's and MPNet's), and compare prefix and whole-string ids on long texts.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from tokenizers import Encoding, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from .config import ModelConfig
from .errors import ModelLoadError, UnsupportedModelError
from .files import present, read_json_object, regular_file_size
from .packing import PackedBatch

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


_ASCII_WHITESPACE = " \t\n\r"
_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff"  # a subset of BertNormalizer's is_chinese_char
# Latin letters (ASCII, Latin-1, Latin Extended-A/B) and digits, each optionally followed by combining marks
_RUN_LETTERS = "0-9A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_RUN_MARKS = "\u0300-\u036f"
_LONG_TEXT_FACTOR = 16  # texts longer than this many characters per max_seq_length token take the prefix path
_CHUNK_FACTOR = 4  # prefix chunks of about this many characters per max_seq_length token


def _normalizer_steps(normalizer: normalizers.Normalizer | None) -> list[normalizers.Normalizer]:
    if normalizer is None:
        return []
    if isinstance(normalizer, normalizers.Sequence):
        return [step for inner in normalizer for step in _normalizer_steps(inner)]
    return [normalizer]


class LongTextCutter:
    """Where a long text may be cut, and which long runs in it may be shortened, without changing its
    truncated token ids (the argument is in the module docstring).

    Build it with :meth:`for_tokenizer`, which returns None for pipelines the argument does not cover.
    """

    def __init__(self, boundary: re.Pattern[str], max_word_chars: int | None, collapse_whitespace: bool) -> None:
        self.boundary = boundary  # one character before which a cut is safe
        self._keep = None if max_word_chars is None else max_word_chars + 1  # letters kept at each end of a run
        self._letter_run = None
        if self._keep is not None:
            chars = _RUN_LETTERS + _RUN_MARKS
            self._letter_run = re.compile(f"(?<![{chars}])[{chars}]{{{2 * self._keep + 1},}}")
            self._head = re.compile(f"[{_RUN_MARKS}]*(?:[{_RUN_LETTERS}][{_RUN_MARKS}]*){{{self._keep}}}")
        self._space_run = re.compile(f"[{_ASCII_WHITESPACE}]{{64,}}") if collapse_whitespace else None

    @classmethod
    def for_tokenizer(cls, tokenizer: Tokenizer) -> LongTextCutter | None:
        """The cutter for `tokenizer`'s pipeline, or None when it is not BertNormalizer / Lowercase steps, then
        BertPreTokenizer, with added tokens that are matched on the raw text and not single-word."""
        steps = _normalizer_steps(tokenizer.normalizer)
        if not isinstance(tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer) or not all(
            isinstance(step, (normalizers.BertNormalizer, normalizers.Lowercase)) for step in steps
        ):
            return None
        added_tokens = list(tokenizer.get_added_tokens_decoder().values())
        if any(token.normalized or token.single_word for token in added_tokens):
            return None
        added = [token.content for token in added_tokens]
        inside_added = {char for content in added for char in content[1:]}
        chars = re.escape("".join(c for c in _ASCII_WHITESPACE + string.punctuation if c not in inside_added))
        cjk = any(isinstance(step, normalizers.BertNormalizer) and step.handle_chinese_chars for step in steps)
        if cjk and not any("\u3400" <= c <= "\u9fff" for c in inside_added):
            chars += _CJK_RANGES
        max_word_chars = None
        if isinstance(tokenizer.model, WordPiece) and all(
            len(content) <= tokenizer.model.max_input_chars_per_word
            and not re.fullmatch(f"[{_RUN_LETTERS}{_RUN_MARKS}]*", content)
            for content in added
        ):
            max_word_chars = tokenizer.model.max_input_chars_per_word
        collapse_whitespace = not any(c in content for content in added for c in _ASCII_WHITESPACE)
        return cls(re.compile(f"[{chars}]"), max_word_chars, collapse_whitespace) if chars else None

    def next_cut(self, text: str, start: int) -> int:
        """The first safe cut at or after `start`: before a boundary character, else len(text)."""
        if start >= len(text):
            return len(text)
        match = self.boundary.search(text, start)
        return len(text) if match is None else match.start()

    def shorten(self, text: str) -> str:
        """`text` with its long runs shortened: 64 or more ASCII whitespace characters to one space (they
        split pre-tokens and make no token, however many); more than 2·(max_input_chars_per_word + 1) Latin
        letters (marks included) to the first and last max_input_chars_per_word + 1 (the run's word is more
        than max_input_chars_per_word characters long, so WordPiece makes it one [UNK], shortened or not)."""
        if self._space_run is not None:
            text = self._space_run.sub(" ", text)
        if self._letter_run is not None:
            text = self._letter_run.sub(lambda run: self._keep_ends(text, run), text)
        return text

    def _keep_ends(self, text: str, run: re.Match[str]) -> str:
        head = self._head.match(text, run.start())
        tail = run.end()
        for _ in range(self._keep):  # step back over `keep` letters, each with the marks that follow it
            tail -= 1
            while tail > run.start() and text[tail] in _MARK_CHARS:
                tail -= 1
        if head is None or head.end() >= tail:  # mostly marks: fewer letters than the two ends keep
            return run[0]
        return text[run.start() : head.end()] + text[tail : run.end()]


_MARK_CHARS = frozenset(chr(c) for c in range(0x300, 0x370))


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
        rounds of 1, 2, 4, … chunks until they hold the ``max_seq_length`` tokens the output keeps; the
        prefix they make up is then encoded once. Time and memory grow with that prefix, not with `text`.
        """
        cutter = self._cutter
        end, count, round_size = 0, 0, 1
        while count < self._content_tokens and end < len(text):
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
