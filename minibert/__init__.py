"""minibert: sentence-transformers embeddings from a from-scratch NumPy BERT forward pass."""

from . import util
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

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
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
