"""Helpers the benchmark scripts share: machine name, and token lengths from a corpus or a lengths file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout without `pip install -e .`

from minibert.bench import cpu_name

__all__ = ["DEFAULT_CORPUS", "cpu_name", "read_lengths_file", "tokenized_lengths"]

ROOT = Path(__file__).resolve().parent.parent
MSMARCO = ROOT.parent / "shared" / "data" / "msmarco-passages.tsv"
# The MS MARCO sample when it sits beside the checkout, else the example corpus minibert ships.
DEFAULT_CORPUS = MSMARCO if MSMARCO.exists() else ROOT / "examples" / "corpus.txt"


def read_lengths_file(path: Path, prog: str, minimum: int = 1) -> list[int]:
    """Whitespace-separated integers ≥ `minimum`; a bad file ends the script with a one-line message."""
    try:
        words = path.read_text().split()
    except OSError as exc:
        sys.exit(f"{prog}: cannot read --lengths-file {path}: {exc}")
    try:
        lengths = [int(word) for word in words]
    except ValueError as exc:
        sys.exit(f"{prog}: --lengths-file {path} must hold integers: {exc}")
    if not lengths or min(lengths) < minimum:
        sys.exit(f"{prog}: --lengths-file {path} must hold at least one integer, each ≥ {minimum}")
    return lengths


def tokenized_lengths(corpus: Path, model: str, limit: int | None, max_seq_length: int | None) -> list[int]:
    """Token counts (special tokens included, truncated like the model) of the first `limit` passages."""
    from tokenizers import Tokenizer

    from minibert.corpus import read_corpus
    from minibert.hub import resolve_model_dir

    model_dir = resolve_model_dir(model)
    if max_seq_length is None:
        st_config = model_dir / "sentence_bert_config.json"
        max_seq_length = json.loads(st_config.read_text()).get("max_seq_length", 512) if st_config.exists() else 512
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_seq_length)
    texts = [p.text for p in read_corpus(corpus)][:limit]
    return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=True)]
