"""What the GPU benchmark scripts share and minibert.bench does not hold: the device they run on, token lengths from
a corpus or a lengths file, and where their CSV rows go."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a checkout without `pip install -e .`


def _map_source_kernels() -> None:
    """In a bare checkout (no `pip install -e .`, as on the GPU machine), import the top-level kernels/ as
    minibert.kernels — what pyproject's package-dir does for an installed minibert. Importing it loads no triton."""
    if importlib.util.find_spec("minibert.kernels") is not None:
        return
    import minibert

    spec = importlib.util.spec_from_file_location(
        "minibert.kernels", ROOT / "kernels" / "__init__.py", submodule_search_locations=[str(ROOT / "kernels")]
    )
    kernels = importlib.util.module_from_spec(spec)
    sys.modules["minibert.kernels"] = kernels
    spec.loader.exec_module(kernels)
    minibert.kernels = kernels


_map_source_kernels()

from minibert.bench.machine import cpu_name  # noqa: E402
from minibert.bench.report import append_csv  # noqa: E402
from minibert.errors import InputError  # noqa: E402

if TYPE_CHECKING:
    import torch

__all__ = ["device_for", "read_lengths_file", "save_rows", "tokenized_lengths"]


def device_for(prog: str, smoke: bool) -> tuple[torch.device, str]:
    """(device, its name for the report): the CUDA GPU; with --smoke the CPU, the kernels in Triton's interpreter
    (TRITON_INTERPRET=1 is set here, before triton is first imported). Without a GPU, or with TRITON_INTERPRET set
    but no --smoke, the script ends with one line."""
    if smoke:
        os.environ["TRITON_INTERPRET"] = "1"  # read when triton.jit decorates the kernels, so before that import
    import torch

    if not smoke and not torch.cuda.is_available():
        sys.exit(f"{prog}: needs a CUDA GPU (torch.cuda.is_available() is False); --smoke runs a CPU check")
    from minibert.kernels.checks import interpreting

    if not smoke and interpreting():
        sys.exit(f"{prog}: TRITON_INTERPRET is set; unset it for a GPU benchmark (or pass --smoke)")
    if smoke:
        return torch.device("cpu"), f"{cpu_name()} (TRITON_INTERPRET=1)"
    return torch.device("cuda"), torch.cuda.get_device_name()


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


def tokenized_lengths(
    corpus: Path, model: str, limit: int | None, max_seq_length: int | None, passages_per_text: int = 1
) -> list[int]:
    """Token counts (special tokens included, truncated like the model) of the first `limit` texts, each made of
    `passages_per_text` consecutive passages joined by a space (longer documents from a passage corpus)."""
    from tokenizers import Tokenizer

    from minibert.loading.resolve import resolve_model_dir
    from minibert.retrieval.corpus import read_corpus

    model_dir = resolve_model_dir(model)
    if max_seq_length is None:
        st_config = model_dir / "sentence_bert_config.json"
        max_seq_length = json.loads(st_config.read_text()).get("max_seq_length", 512) if st_config.exists() else 512
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_seq_length)
    passages = [p.text for p in read_corpus(corpus)]
    k = passages_per_text
    texts = [" ".join(passages[i : i + k]) for i in range(0, len(passages) - k + 1, k)][:limit]
    return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=True)]


def save_rows(
    prog: str, csv_path: Path | None, default: Path, smoke: bool, columns: Sequence[str], rows: list[Mapping]
) -> None:
    """Append the rows to --csv, else to `default`; a --smoke run without --csv writes a temporary file (deleted
    after), so a check leaves no numbers behind. Says where they went; a CSV with other columns ends the script."""
    with tempfile.TemporaryDirectory() as tmp:
        path = csv_path or (Path(tmp) / default.name if smoke else default)
        try:
            written = append_csv(path, columns, rows)
        except InputError as exc:
            sys.exit(f"{prog}: {exc}")
        where = "a temporary file (smoke; pass --csv to keep it)" if smoke and not csv_path else path
        print(f"\n{written} CSV rows appended to {where}")
