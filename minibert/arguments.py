"""The facades' argument checks: what ``encode`` and ``predict`` accept, and the errors that say what to pass instead.

Every check raises :class:`~minibert.errors.InputTypeError` (a ``TypeError``) for a wrong type and
:class:`~minibert.errors.InputError` (a ``ValueError``) for a wrong value, naming the argument — and, for an element
of the inputs, its index (``sentences[3]``; the server passes its own field name, ``input[3]``). The facade
(:mod:`minibert.model`) runs them before any text is encoded, and every front end reaches them through its stages.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .errors import InputError, InputTypeError
from .util import SIMILARITY_FUNCTIONS

OUTPUT_VALUES = ("sentence_embedding", "token_embeddings")
# Prompts every model has (sentence-transformers' SentenceTransformer._default_prompts), "" unless set.
TASK_PROMPTS = {"query": "", "document": ""}

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _where(field: str, index: int | None) -> str:
    return field if index is None else f"{field}[{index}]"


def _type_hint(value: object) -> str:
    """What to do about a non-str input, by its type."""
    if value is None:
        return "remove it or pass '' for an empty text"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "decode it first, e.g. data.decode('utf-8')"
    if isinstance(value, float) and value != value:
        return "a NaN is usually a missing value: drop it (dropna()) or fill it (fillna(''))"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "encode takes a flat list of str: flatten it, or call encode once per inner list"
    return "convert it to text (str(x)) or remove it"


def _check_text(text: object, index: int | None, field: str) -> str:
    """`text` when it is a str of valid Unicode; else InputTypeError / InputError naming where it is."""
    if not isinstance(text, str):
        expected = "a str or a list of str" if index is None else "str"
        what = "None" if text is None else type(text).__name__
        raise InputTypeError(f"{_where(field, index)} is {what}, expected {expected}; {_type_hint(text)}")
    if not text.isascii() and (match := _LONE_SURROGATE.search(text)) is not None:
        raise InputError(
            f"{_where(field, index)} contains a lone surrogate (U+{ord(match[0]):04X} at character {match.start()}), "
            "which is not valid Unicode and cannot be tokenized; clean the text first, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8') (or, for a surrogate pair split in two, "
            "text.encode('utf-16', 'surrogatepass').decode('utf-16'))"
        )
    return text


def _check_container(sentences: object, field: str) -> Iterable:
    """`sentences` as something to iterate over once, or InputTypeError / InputError saying what to pass."""
    if isinstance(sentences, np.ndarray):
        if sentences.ndim != 1:
            raise InputError(
                f"{field} is a {sentences.ndim}-D array of shape {sentences.shape}; pass a 1-D array of str "
                "(e.g. array.ravel()), a list of str, or for one text array.item()"
            )
        if sentences.dtype.kind not in "UO":
            raise InputTypeError(
                f"{field} is an array of dtype {sentences.dtype}, expected str (dtype '<U…' or object); "
                + ("decode it first, e.g. array.astype(str)" if sentences.dtype.kind == "S" else "pass text")
            )
        return sentences.tolist()
    if (
        sentences is None
        or isinstance(sentences, (bytes, bytearray, memoryview))
        or not isinstance(sentences, Iterable)
    ):
        _check_text(sentences, None, field)  # raises: the message names the type and what to do
    if isinstance(sentences, Mapping):
        raise InputTypeError(f"{field} is a {type(sentences).__name__}; pass a list of str, e.g. list(d.values())")
    if isinstance(sentences, (set, frozenset)):
        raise InputTypeError(
            f"{field} is a {type(sentences).__name__}, which has no order to return the rows in; "
            "pass a list, e.g. sorted(texts)"
        )
    ndim = getattr(sentences, "ndim", 1)
    if ndim != 1:
        raise InputError(
            f"{field} is a {ndim}-D {type(sentences).__name__}; pass one column or a flat list of str "
            "(for a DataFrame, df['text'])"
        )
    return sentences


def as_text_list(sentences: str | Iterable[str], field: str = "sentences") -> tuple[list[str], bool]:
    """(the inputs as a list of str, whether a single string was given); anything else raises, saying what to do and
    naming the bad element as ``field[i]``.

    Accepted: a str (one text); a list, tuple or any other iterable of str, iterated exactly once (a generator
    is read to its end before anything is encoded, since inputs are sorted by length: it must be finite, and
    a stream too large for memory should be encoded in chunks); a 1-D NumPy array of str (dtype ``<U…`` or
    object); a pandas Series of str.

    Refused with :class:`InputTypeError` (a ``TypeError``): None, bytes, numbers and other non-str values,
    at the top or as an item (the message names the index); nested lists; dicts; sets (no order); arrays of
    bytes or numbers. Refused with :class:`InputError` (a ``ValueError``): a text with a lone surrogate
    (``"\ud800"``; not valid Unicode, so the tokenizer cannot read it — minibert does not guess a replacement);
    arrays or frames that are not 1-D.
    """
    if isinstance(sentences, str):
        return [_check_text(sentences, None, field)], True
    return [_check_text(text, i, field) for i, text in enumerate(_check_container(sentences, field))], False


def _is_pair(value: object) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2


def as_pair_list(sentences: object, field: str = "sentences") -> tuple[list[tuple[str, str]], bool]:
    """(the inputs as a list of (query, passage) pairs, whether a single pair was given), as sentence-transformers'
    ``CrossEncoder.predict`` takes them: one pair (a list or tuple of two str), or an iterable of pairs. Anything
    else raises naming the element (``field[i]``, ``field[i][0]``): a pair of another length or of non-str, a text
    with a lone surrogate, the containers :func:`as_text_list` refuses."""
    if _is_pair(sentences) and all(isinstance(text, str) for text in sentences):
        query, passage = (_check_text(text, i, field) for i, text in enumerate(sentences))
        return [(query, passage)], True
    pairs = []
    for i, pair in enumerate(_check_container(sentences, field)):
        if not _is_pair(pair):
            what = f"a {type(pair).__name__} of {len(pair)}" if isinstance(pair, (list, tuple)) else type(pair).__name__
            raise InputTypeError(f"{field}[{i}] is {what}, expected a pair (query, passage) of two str")
        pairs.append((_check_text(pair[0], 0, f"{field}[{i}]"), _check_text(pair[1], 1, f"{field}[{i}]")))
    return pairs, False


def check_token_ids(sequences: Sequence[Sequence[object]], vocab: int, field: str) -> None:
    """Each sequence's ids are integers of a vocabulary of `vocab` ids (InputTypeError / InputError naming
    ``field[i]``)."""
    for i, ids in enumerate(sequences):
        for token in ids:
            if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
                raise InputTypeError(f"{field}[{i}] holds {token!r}; token ids are integers")
            if not 0 <= token < vocab:
                raise InputError(f"{field}[{i}] holds token id {token}, outside this model's vocabulary of {vocab}")


def check_output_value(output_value: object) -> str:
    """`output_value` when it is one of :data:`OUTPUT_VALUES`; else InputTypeError / InputError saying what to pass."""
    choices = "'sentence_embedding' (the default) or 'token_embeddings'"
    if output_value is None:
        raise InputError(f"output_value=None (every feature, as dicts) is not supported; pass {choices}")
    if not isinstance(output_value, str):
        raise InputTypeError(f"output_value must be a str, {choices}; got {type(output_value).__name__}")
    if output_value not in OUTPUT_VALUES:
        raise InputError(f"output_value {output_value!r} is not supported; pass {choices}")
    return output_value


def check_similarity_fn_name(name: object) -> str:
    """A similarity function's name (a str, or an enum such as sentence-transformers' SimilarityFunction, by its
    value) when minibert.util has it; else InputTypeError / InputError listing the names."""
    choices = ", ".join(repr(n) for n in SIMILARITY_FUNCTIONS)
    if isinstance(name, enum.Enum):
        name = name.value
    if not isinstance(name, str):
        raise InputTypeError(f"similarity_fn_name must be a str, one of {choices}; got {type(name).__name__}")
    if name not in SIMILARITY_FUNCTIONS:
        raise InputError(f"similarity_fn_name {name!r} is not supported; pass one of {choices}")
    return name


def merged_prompts(declared: Mapping[str, str], given: object) -> dict[str, str]:
    """The model's prompts, by sentence-transformers' rule: "query" and "document" always ("" unless set), then the
    directory's prompts, then the caller's (`given`, a dict of str to str), which win."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in given.items()):
        raise InputTypeError(
            "prompts must be a dict of prompt names to prompt texts, both str, e.g. {'query': 'query: '}; "
            f"got {given!r}"
        )
    return {**TASK_PROMPTS, **declared, **given}
