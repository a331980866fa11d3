"""What minibert's tests, its parity report and its GPU check are built from, shipped like ``numpy.testing``.

- :mod:`.tables` — model sizes, the parity texts, the tolerances, the kernels' awkward shapes (plain values);
- :mod:`.models` — seeded random-init models of every architecture, saved as sentence-transformers directories,
  and cross-encoders (BERT / ELECTRA sequence classifiers) saved as sentence-transformers' CrossEncoder loads them;
- :mod:`.tokenizers` — DistilBERT and MPNet tokenizers built from BERT's vocabulary;
- :mod:`.reference` — transformers' hidden states for a packed batch (torch imported lazily);
- :mod:`.checks` — :func:`assert_close`, whose failure shows the worst (ours, reference) pairs.

Nothing here imports torch, transformers or pytest at import time.
"""

from .checks import assert_close
from .models import (
    add_dense,
    build_cross_encoder_dir,
    build_model_dir,
    build_random_cross_encoder,
    build_random_model,
    hidden_width,
    legacy_pooling,
    scale_classifier,
)
from .reference import reference_hidden_states, transformers_outputs
from .tables import (
    ACTIVATION_IDENTITY,
    ACTIVATION_SIGMOID,
    ARCH_CONFIGS,
    ARCH_SHAPES,
    CROSS_ENCODER_CONFIGS,
    CROSS_ENCODER_SHAPES,
    EMBEDDING_ATOL,
    HIDDEN_ATOL,
    HIDDEN_RTOL,
    KERNEL_TOLERANCES,
    LONG,
    RAGGED,
    TABLE_CONFIGS,
    VARIED_TEXTS,
)

__all__ = [
    "ACTIVATION_IDENTITY",
    "ACTIVATION_SIGMOID",
    "ARCH_CONFIGS",
    "ARCH_SHAPES",
    "CROSS_ENCODER_CONFIGS",
    "CROSS_ENCODER_SHAPES",
    "EMBEDDING_ATOL",
    "HIDDEN_ATOL",
    "HIDDEN_RTOL",
    "KERNEL_TOLERANCES",
    "LONG",
    "RAGGED",
    "TABLE_CONFIGS",
    "VARIED_TEXTS",
    "add_dense",
    "assert_close",
    "build_cross_encoder_dir",
    "build_model_dir",
    "build_random_cross_encoder",
    "build_random_model",
    "hidden_width",
    "legacy_pooling",
    "reference_hidden_states",
    "scale_classifier",
    "transformers_outputs",
]
