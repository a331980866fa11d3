"""Where a long text may be cut without changing its truncated token ids: :class:`LongTextCutter`.

A text is cut before a *boundary character*: one before which the tokenizer's pipeline always starts a new
pre-token, whatever precedes or follows it — ASCII whitespace, ASCII punctuation, and CJK ideographs when
BertNormalizer pads Chinese characters with spaces — less any character found past the first position of an added
token (so no added token can straddle the cut). Runs of more than 2·(m + 1) Latin letters (m =
``max_input_chars_per_word``) are shortened to their first and last m + 1 letters, and runs of 64 or more ASCII
whitespace characters to one space: neither changes the ids. Why each rule holds is argued in ARCHITECTURE.md
("Long texts"); the tests check every boundary character and run letter against the tokenizers minibert builds.

Pipelines built from anything else (another pre-tokenizer, other normalizers, added tokens that are normalized or
single-word) get no cutter (:meth:`LongTextCutter.for_tokenizer` returns None), and their texts are always
tokenized whole.
"""

from __future__ import annotations

import re
import string

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

_ASCII_WHITESPACE = " \t\n\r"
_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff"  # a subset of BertNormalizer's is_chinese_char
# Latin letters (ASCII, Latin-1, Latin Extended-A/B) and digits, each optionally followed by combining marks
_RUN_LETTERS = "0-9A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_RUN_MARKS = "\u0300-\u036f"


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
