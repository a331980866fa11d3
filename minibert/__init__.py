"""minibert: sentence-transformers embeddings from a from-scratch NumPy BERT forward pass.

The public names; the layout of the package is in ARCHITECTURE.md.
"""

from . import util
from .cross_encoder import CrossEncoder
from .errors import (
    BackendUnavailableError,
    DownloadError,
    InputError,
    InputTypeError,
    MinibertError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from .model import SentenceTransformer, load
from .quantization import quantize_embeddings
from .version import __version__

__all__ = [
    "BackendUnavailableError",
    "CrossEncoder",
    "DownloadError",
    "InputError",
    "InputTypeError",
    "MinibertError",
    "ModelLoadError",
    "ModelNotFoundError",
    "SentenceTransformer",
    "UnsupportedModelError",
    "__version__",
    "load",
    "quantize_embeddings",
    "util",
]
