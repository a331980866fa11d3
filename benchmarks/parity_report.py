"""Measure the max |Δ| between minibert and the live reference, for the README's parity tables.

The tests assert the bounds (ARCHITECTURE.md, "Tolerances"); this prints the values actually reached, on the same
inputs:
all-MiniLM-L6-v2 (real weights) vs sentence-transformers on the test suite's varied texts, and seeded
random-init models of every (architecture, size, pooling, normalize) configuration in the model table
(minibert.testing.tables.TABLE_CONFIGS) vs transformers (last hidden states, real tokens) and
sentence-transformers (embeddings), on a ragged batch with inputs past max_seq_length.

    python benchmarks/parity_report.py          # prints a Markdown table
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()

    import numpy as np
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer as Reference

    import minibert
    from minibert.encoder.cpu import forward
    from minibert.loading.download import download
    from minibert.testing import (
        ARCH_SHAPES,
        LONG,
        RAGGED,
        TABLE_CONFIGS,
        VARIED_TEXTS,
        build_model_dir,
        hidden_width,
        legacy_pooling,
        reference_hidden_states,
    )

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}, numpy {np.__version__}\n"
    )
    print("| model | pooling | normalize | last_hidden_state vs transformers | embeddings vs sentence-transformers |")
    print("|---|---|---|---|---|")
    real_dir = download()
    ours = minibert.SentenceTransformer(real_dir).encode(VARIED_TEXTS, batch_size=16)
    ref = Reference(str(real_dir), device="cpu").encode(VARIED_TEXTS, batch_size=16)
    label = f"all-MiniLM-L6-v2 (real weights, {len(VARIED_TEXTS)} texts)"
    print(f"| {label} | mean | yes | – | {np.abs(ours - ref).max():.1e} |")

    texts = [*RAGGED, LONG]
    with tempfile.TemporaryDirectory() as tmp:
        for arch, shape, mode, normalize in TABLE_CONFIGS:
            sizes = ARCH_SHAPES[arch][shape]
            pooling = legacy_pooling(mode, hidden_width(sizes))
            model_dir = build_model_dir(Path(tmp), arch, shape, real_dir, pooling=pooling, normalize=normalize)
            model = minibert.SentenceTransformer(model_dir)
            batch = model.tokenize(texts)
            hidden = forward(batch, model.weights, model.config)  # [N, C], the real tokens
            hidden_gap = np.abs(hidden - reference_hidden_states(model_dir, batch)).max()
            embedding_gap = np.abs(
                model.encode(texts, batch_size=4) - Reference(str(model_dir), device="cpu").encode(texts, batch_size=4)
            ).max()
            layers = sizes.get("num_hidden_layers") or sizes["n_layers"]
            label = f"random-init {arch} {shape} ({layers} × {hidden_width(sizes)})"
            print(f"| {label} | {mode} | {'yes' if normalize else 'no'} | {hidden_gap:.1e} | {embedding_gap:.1e} |")


if __name__ == "__main__":
    main()
