"""Measure the max |Δ| between minibert and the live reference, for the README's parity table.

The tests assert the DESIGN.md bounds; this prints the numbers actually reached, on the same kinds of
inputs: all-MiniLM-L6-v2 (real weights) vs sentence-transformers on the test suite's varied texts, and
seeded random-init BERT models (tiny, MiniLM-L12 shape, BERT-base shape) vs transformers' BertModel
(last hidden states, real tokens) and sentence-transformers (pooled embeddings) on a ragged batch.

    python benchmarks/parity_report.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import numpy as np
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer as Reference
    from transformers import BertConfig, BertModel

    import minibert
    from minibert.forward import forward
    from minibert.hub import download
    from tests.conftest import BERT_SHAPES, legacy_pooling, write_st_dir
    from tests.test_parity_random import RAGGED
    from tests.test_parity_real import TEXTS

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}, numpy {np.__version__}"
    )
    print(f"{'model':<38}{'compared':<44}{'max |Δ|':>10}")

    real_dir = download()
    ours = minibert.SentenceTransformer(real_dir).encode(TEXTS, batch_size=16)
    ref = Reference(str(real_dir), device="cpu").encode(TEXTS, batch_size=16)
    print(
        f"{'all-MiniLM-L6-v2 (real)':<38}{f'normalized embeddings, {len(TEXTS)} texts':<44}"
        f"{np.abs(ours - ref).max():>10.2e}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        for seed, (shape, sizes) in enumerate(BERT_SHAPES.items(), 1):
            torch.manual_seed(seed)
            model_dir = Path(tmp) / shape
            BertModel(BertConfig(vocab_size=30522, **sizes)).eval().save_pretrained(model_dir)
            write_st_dir(
                model_dir,
                real_dir,
                pooling=legacy_pooling("mean", sizes["hidden_size"]),
                normalize=False,
                max_seq_length=128,
            )
            model = minibert.SentenceTransformer(model_dir)
            batch = model.tokenize(RAGGED)
            hidden = forward(batch.input_ids, batch.attention_mask, batch.token_type_ids, model.weights, model.config)
            with torch.inference_mode():
                ref_hidden = (
                    BertModel.from_pretrained(model_dir)
                    .eval()(**{k: torch.from_numpy(v) for k, v in vars(batch).items()})
                    .last_hidden_state.numpy()
                )
            real = batch.attention_mask.astype(bool)
            label = f"random-init BERT {shape} ({sizes['num_hidden_layers']}×{sizes['hidden_size']})"
            print(f"{label:<38}{'last_hidden_state vs BertModel':<44}{np.abs(hidden - ref_hidden)[real].max():>10.2e}")
            ours = model.encode(RAGGED, batch_size=4)
            ref = Reference(str(model_dir), device="cpu").encode(RAGGED, batch_size=4)
            print(f"{'':<38}{'mean-pooled embeddings (unnormalized)':<44}{np.abs(ours - ref).max():>10.2e}")


if __name__ == "__main__":
    main()
