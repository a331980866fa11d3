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
config's lower-casing / accent stripping / CJK splitting, BertPreTokenizer, ``[CLS] … [SEP]``, the special tokens
``[PAD] [UNK] [CLS] [SEP] [MASK]`` matched in the raw text as transformers' BertTokenizer does).

Long inputs: the ``tokenizers`` library normalizes and pre-tokenizes the *whole* string before it truncates, in
time that grows faster than the length. A text longer than ``16 · max_seq_length`` characters is therefore
tokenized from a prefix that already holds enough tokens, with exactly the ids the whole string gives
(:meth:`BatchTokenizer._encode_long`; where the prefix may end: :mod:`.long_text`).

Pairs (cross-encoders, :meth:`BatchTokenizer.pairs`): follow sentence-transformers' ``CrossEncoder``, whose
``Transformer.preprocess`` hands the ``(query, document)`` pairs to the fast tokenizer with
``truncation="longest_first"`` and ``max_length``; transformers' fast tokenizer then runs
``Tokenizer.encode_batch`` on the pairs with truncation ``longest_first``, stride 0, direction the tokenizer
config's ``truncation_side``. minibert makes that same ``tokenizers`` call, on a copy of its tokenizer set up that way
for the max_length asked (none of the single-text path's prefix shortcut: pairs are always tokenized whole):
``[CLS] q [SEP] d [SEP]``, token types 0 for ``[CLS] q [SEP]`` and 1 for ``d [SEP]`` — all 0 where transformers
returns no ``token_type_ids`` (``model_input_names`` without them: DistilBERT's and MPNet's tokenizers;
MPNet's pair is ``<s> q </s></s> d </s>``). What that truncation does, with M = max_length less the pair's special
tokens: a pair that fits is kept; else when the shorter part needs at most half of M it is kept whole and the longer
cut to the rest; else the shorter is cut to ⌊M/2⌋ and the longer to ⌈M/2⌉ (on a tie the document gets ⌈M/2⌉).
M = 0 empties both parts; a max_length below the special-token count cuts nothing, so the pair comes out longer
than max_length — transformers' output too (followed here; a caller can refuse max_length below
:attr:`BatchTokenizer.pair_special_tokens`).
Where it differs, in cost only: ``tokenizers`` (and so transformers) builds every overflow window of a cut pair —
the product of the two parts' windows when both are cut — so two long texts take time and memory that grow with
the product of their lengths (two 40,000-word texts at max_length 512: 43 s and 12 GB). When both texts of a pair
are long (more than 8 characters per max_length token), each is tokenized alone, the tokens longest_first keeps
(:func:`longest_first`) are found from the two lengths, and the pair is encoded from the texts cut after those
tokens, which then need no truncation; the result is checked to be those tokens, and a pair that is not (a text
that tokenizes differently when cut) is encoded whole. Time and memory are then linear in the texts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Encoding, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from ..errors import InputError, ModelLoadError, UnsupportedModelError, positive_int
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
    """A BERT WordPiece tokenizer from vocab.txt + tokenizer_config.json, as transformers builds one (its special
    tokens matched in the raw text)."""
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
    # transformers' BertTokenizer matches its special tokens in the raw text (as tokenizer.json's added tokens do)
    pad, mask = (cfg.get(k, d) for k, d in (("pad_token", "[PAD]"), ("mask_token", "[MASK]")))
    specials = [t for t in (pad, unk, cls, sep, mask) if isinstance(t, str) and t in vocab]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
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


def _tokenizer_config(model_dir: Path) -> dict[str, Any]:
    """tokenizer_config.json's object ({} without the file)."""
    config_path = model_dir / "tokenizer_config.json"
    return read_json_object(config_path) if present(config_path) else {}


def _pad_token_id(tokenizer: Tokenizer, model_dir: Path, default: int) -> int:
    """The pad id transformers uses: tokenizer_config's pad_token looked up in the vocabulary."""
    pad_token = _tokenizer_config(model_dir).get("pad_token")
    if isinstance(pad_token, dict):  # AddedToken serialisation
        pad_token = pad_token.get("content")
    pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
    return default if pad_id is None else pad_id


# tokenizer classes whose model_input_names lack token_type_ids (transformers' class defaults; every other
# WordPiece tokenizer class, and PreTrainedTokenizerBase, has them)
_NO_TOKEN_TYPES_CLASSES = ("DistilBertTokenizer", "MPNetTokenizer")
# model types whose AutoTokenizer class (when tokenizer_config.json names none) is one of those
_NO_TOKEN_TYPES_MODEL_TYPES = ("mpnet",)


def _returns_token_type_ids(cfg: dict[str, Any], model_type: str) -> bool:
    """Whether transformers' tokenizer returns token_type_ids: tokenizer_config.json's (`cfg`) ``model_input_names``,
    else its ``tokenizer_class``'s default, else that of the class AutoTokenizer picks for config.json's model_type
    (transformers 5 maps distilbert to BertTokenizer, mpnet to MPNetTokenizer)."""
    names = cfg.get("model_input_names")
    if isinstance(names, list):
        return "token_type_ids" in names
    tokenizer_class = cfg.get("tokenizer_class")
    if isinstance(tokenizer_class, str):
        return tokenizer_class.removesuffix("Fast") not in _NO_TOKEN_TYPES_CLASSES
    return model_type not in _NO_TOKEN_TYPES_MODEL_TYPES


def _truncation_side(side: object, model_dir: Path) -> str:
    """Where pairs are cut: `side`, tokenizer_config.json's ``truncation_side`` (transformers' default "right"),
    checked."""
    if side == "left" or side == "right":
        return side
    raise ModelLoadError(
        f"{model_dir / 'tokenizer_config.json'}: 'truncation_side' must be 'left' or 'right', found {side!r}"
    )


def longest_first(n_query: int, n_document: int, room: int) -> tuple[int, int]:
    """The tokens `tokenizers`' longest_first truncation keeps of a pair's two parts (`room`: max_length less the
    special tokens): both when they fit; else the shorter whole if it needs at most half, the longer the rest; else
    ⌊room/2⌋ and ⌈room/2⌉, the longer (on a tie the document) getting the extra one."""
    if n_query + n_document <= room:
        return n_query, n_document
    short, long_ = sorted((n_query, n_document))
    long_ = short if short > room else max(short, room - short)
    if short + long_ > room:
        short, long_ = room // 2, room // 2 + room % 2
    return (long_, short) if n_query > n_document else (short, long_)


def _parts(encoding: Encoding) -> tuple[list[int], list[int]]:
    """A pair encoding's query and document ids, its special tokens left out."""
    pieces = list(zip(encoding.ids, encoding.sequence_ids, strict=True))
    return [i for i, part in pieces if part == 0], [i for i, part in pieces if part == 1]


@dataclass(frozen=True)
class PairTokens:
    """Pairs tokenized together (:meth:`BatchTokenizer.pair_tokens`), one entry per pair. B = pairs."""

    input_ids: list[list[int]]  # B lists: [CLS] q [SEP] d [SEP], truncated to max_length
    token_type_ids: list[list[int]]  # B lists as long as input_ids': 0 for [CLS] q [SEP], 1 for d [SEP] (or all 0)
    truncated: list[bool]  # B flags: tokens of the query or the document were cut to fit max_length


_PAIR_TOKENIZERS_KEPT = 8  # pair tokenizers kept, one per max_length asked for (the oldest dropped first)
_PAIR_LONG_FACTOR = 8  # pair texts both longer than this many characters per max_length token are cut before pairing
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
        # pairs: copies of the tokenizer, one per max_length, each set up once and then only read
        self._model_dir = model_dir
        tokenizer_config = _tokenizer_config(model_dir)
        self._pair_token_types = _returns_token_type_ids(tokenizer_config, config.model_type)
        self._truncation_side = tokenizer_config.get("truncation_side", "right")  # checked when pairs ask for it
        self._pair_tokenizers: dict[int, Tokenizer] = {}
        self._pair_lock = threading.Lock()
        self._untruncated: Tokenizer | None = None  # made on first use (:meth:`_whole_texts`)
        self.pair_special_tokens = tokenizer.num_special_tokens_to_add(True)  # 3 for [CLS] q [SEP] d [SEP]

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

    def _pair_tokenizer(self, max_length: int) -> Tokenizer:
        """The tokenizer that encodes pairs for `max_length`: a copy truncating as transformers sets it up
        (``longest_first``, stride 0, the config's truncation_side), made on first use and kept."""
        with self._pair_lock:
            tokenizer = self._pair_tokenizers.get(max_length)
            if tokenizer is None:
                tokenizer = Tokenizer.from_str(self._tokenizer.to_str())
                tokenizer.no_padding()
                side = _truncation_side(self._truncation_side, self._model_dir)
                tokenizer.enable_truncation(max_length, stride=0, strategy="longest_first", direction=side)
                if len(self._pair_tokenizers) >= _PAIR_TOKENIZERS_KEPT:
                    del self._pair_tokenizers[next(iter(self._pair_tokenizers))]
                self._pair_tokenizers[max_length] = tokenizer
            return tokenizer

    def _encode_pairs(
        self, queries: Sequence[str], documents: Sequence[str], max_length: int | None
    ) -> tuple[list[tuple[str, str]], list[Encoding], int]:
        """The pairs, their truncated encodings (special tokens added) and the max_length they were cut to."""
        if len(queries) != len(documents):
            raise InputError(f"pairs need one document per query: {len(queries)} queries, {len(documents)} documents")
        max_length = self.max_seq_length if max_length is None else positive_int("max_length", max_length)
        pairs = list(zip(queries, documents, strict=True))
        tokenizer = self._pair_tokenizer(max_length)
        bounded = [self._bounded(pair, max_length) for pair in pairs]
        encodings = tokenizer.encode_batch([texts for texts, _ in bounded], add_special_tokens=True)
        for row, (_, kept) in enumerate(bounded):  # a shortened pair must give exactly the ids the whole one gives
            if kept is not None and _parts(encodings[row]) != kept:
                encodings[row] = tokenizer.encode(*pairs[row], add_special_tokens=True)
        return pairs, encodings, max_length

    def _bounded(self, pair: tuple[str, str], max_length: int) -> tuple[tuple[str, str], tuple[list, list] | None]:
        """`pair` as it is, or — when both texts are long — each cut to the prefix holding the tokens longest_first
        keeps of it, with those tokens (to check against). Tokenizing both texts whole first costs their length; the
        pair encoder given the whole texts would build every combination of their overflow windows (their lengths'
        product)."""
        query, document = pair
        limit = _PAIR_LONG_FACTOR * max_length
        room = max_length - self.pair_special_tokens  # below 0 transformers cuts nothing: the pair is encoded whole
        if len(query) <= limit or len(document) <= limit or self._truncation_side != "right" or room < 0:
            return pair, None
        whole = self._whole_texts().encode_batch([query, document], add_special_tokens=False)
        keep = longest_first(len(whole[0].ids), len(whole[1].ids), room)
        cut = tuple(text[: e.offsets[k - 1][1]] if k else "" for text, e, k in zip(pair, whole, keep, strict=True))
        return cut, (whole[0].ids[: keep[0]], whole[1].ids[: keep[1]])

    def whole_encodings(self, texts: list[str], add_special_tokens: bool = True) -> list[Encoding]:
        """Each text's every token, not cut to max_seq_length (ids, tokens, offsets, special-tokens mask)."""
        return self._whole_texts().encode_batch(texts, add_special_tokens=add_special_tokens)

    def decode(self, sequences: list[list[int]], skip_special_tokens: bool = True) -> list[str]:
        """Token ids back to text, as the tokenizer decodes them."""
        return self._tokenizer.decode_batch(sequences, skip_special_tokens=skip_special_tokens)

    def _whole_texts(self) -> Tokenizer:
        """A copy of the tokenizer that neither truncates nor pads: each text's every token."""
        with self._pair_lock:
            if self._untruncated is None:
                tokenizer = Tokenizer.from_str(self._tokenizer.to_str())
                tokenizer.no_truncation()
                tokenizer.no_padding()
                self._untruncated = tokenizer
            return self._untruncated

    def _cut(self, pairs: list[tuple[str, str]], encodings: list[Encoding], max_length: int) -> list[bool]:
        """Which pairs lost tokens. A cut pair comes out exactly max_length long; such a pair was cut when its two
        parts, each encoded alone (no special tokens, at most max_length tokens kept), hold more than fit. Not read
        off the encodings' overflow: that holds every combination of the two parts' windows."""
        rows = [row for row, encoding in enumerate(encodings) if len(encoding.ids) == max_length]
        texts = [text for row in rows for text in pairs[row]]
        parts = self._pair_tokenizer(max_length).encode_batch(texts, add_special_tokens=False)  # [2 · rows]
        room = max_length - self.pair_special_tokens
        cut = [False] * len(encodings)
        for row, query, document in zip(rows, parts[0::2], parts[1::2], strict=True):
            # without special tokens room is max_length, and a part kept whole at it may have had more: its own
            # overflow (one text's windows) says
            cut[row] = len(query.ids) + len(document.ids) > room or bool(query.overflowing or document.overflowing)
        return cut

    def pair_tokens(
        self, queries: Sequence[str], documents: Sequence[str], max_length: int | None = None
    ) -> PairTokens:
        """(query, document) pairs tokenized together, as the model's transformers tokenizer does it (module
        docstring): ids, token types and which pairs were cut. `max_length` counts the special tokens; default:
        max_seq_length. Strings are taken as already validated."""
        pairs, encodings, max_length = self._encode_pairs(queries, documents, max_length)
        input_ids = [encoding.ids for encoding in encodings]
        return PairTokens(input_ids, self._token_types(encodings), self._cut(pairs, encodings, max_length))

    def _token_types(self, encodings: list[Encoding]) -> list[list[int]]:
        """Each pair's token types; all 0 where transformers returns none (module docstring)."""
        if self._pair_token_types:
            return [encoding.type_ids for encoding in encodings]
        return [[0] * len(encoding.ids) for encoding in encodings]

    def pairs(self, queries: Sequence[str], documents: Sequence[str], max_length: int | None = None) -> PackedBatch:
        """(query, document) pairs tokenized together (:meth:`pair_tokens`) into a packed batch with their token
        types: what a cross-encoder's forward takes."""
        _, encodings, _ = self._encode_pairs(queries, documents, max_length)
        input_ids = [encoding.ids for encoding in encodings]
        return PackedBatch.from_ids(input_ids, self.pad_token_id, self._token_types(encodings))
