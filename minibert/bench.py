"""CPU encode benchmark: minibert's NumPy encoder against sentence-transformers and ONNX Runtime.

What it measures, for each model given with --model:

* Throughput. The contenders — minibert (NumPy), sentence-transformers (torch fp32 on CPU) and ONNX Runtime
  (CPUExecutionProvider running a plain torch.onnx.export of the transformers model; tokenized, pooled and
  normalized by minibert as the model directory says) — embed the same passages of the same corpus with the
  same batch size. Each gets one warm-up batch, then they run alternately (A B C A B C ..., --rounds rounds),
  so machine noise hits all alike. Reported: median docs/s and the min-max over rounds; real tokens/s (the
  attention-mask sum: padding is not counted); achieved GFLOP/s and its share of the sgemm peak measured in
  the same run; the ratio of medians to sentence-transformers; each contender's max |delta| against
  sentence-transformers' embeddings of the first 64 passages. Contenders that are not installed are named
  in one line, not an error.
* FLOPs: encoder layers only, counted from the config and each passage's real token count L (padding is not
  counted; embeddings, pooling and Dense layers are left out). Per layer:
  2*L*C*3C (QKV) + 2*L*C*C (attention output) + 2*2*L*C*F (FFN) + 2*2*L^2*C (QK^T and A*V).
* sgemm peak: the best of several np.matmul on BERT-shaped float32 matrices ([4096, C] @ [C, 3C],
  [4096, C] @ [C, F], [4096, F] @ [F, C]): the GEMM rate NumPy's BLAS reaches on this machine.
* Cold start: wall time from spawning a fresh `python -c` that imports, loads the model and encodes one
  sentence, to its exit; median of 3, for minibert and sentence-transformers. The model files are in the
  OS page cache by then, so this is process start-up, imports and loading, not disk reads.
* Peak RSS: a subprocess encodes the chosen passages (or --rss-limit of them; 0 = the whole corpus) with
  minibert 3 times and reports its RSS after loading and after each repeat (flat means no growth) and its peak,
  compared with the size of the weights file + 300 MB. The peak is VmHWM from /proc/self/status where there is
  one: on Linux getrusage's ru_maxrss keeps the spawning process's peak across exec (a child of this benchmark
  process would report this process's size), so ru_maxrss is the fallback only where /proc is missing.

Models: any name or directory minibert resolves (fetched with minibert.hub.download when it is not found),
or `bert-base-shape`: a seeded random-init 12 x 768 BERT (mean pooling, max_seq_length 256) with the
all-MiniLM-L6-v2 tokenizer, built once with transformers under $MINIBERT_HOME/bench/ (speed does not depend
on the weights' values). --model may be repeated or a comma list.

Corpus: --corpus FILE (.tsv, .jsonl or plain text, read as `minibert search` reads it); else
$MINIBERT_BENCH_CORPUS; else the MS MARCO sample beside a source checkout (../shared/data/msmarco-passages.tsv);
else paragraphs of the docstrings in the Python standard library's source (real English prose present
wherever Python is), written once to $MINIBERT_HOME/bench/.

Output: a markdown table on stdout, one CSV row per contender per round appended to --csv, and a PNG of docs/s
per contender per model with min-max error bars (when matplotlib is installed).

    minibert bench [--model M[,M2]] [--corpus FILE] [--limit N] [--rounds R] [--no-cold-start] [--no-rss]
    python benchmarks/cpu.py --smoke     # a few passages, one round: runs every code path in seconds
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .corpus import read_corpus
from .errors import InputError, MinibertError, ModelNotFoundError
from .hub import DEFAULT_MODEL, _install, _looks_like_path, _new_temp_dir, download, minibert_home, resolve_model_dir

if TYPE_CHECKING:
    from .model import SentenceTransformer
    from .tokenizer import Batch

SHORT_DEFAULT = DEFAULT_MODEL.split("/", 1)[1]
CORPUS_ENV = "MINIBERT_BENCH_CORPUS"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Special --model values: random-init BERT shapes built with transformers (speed does not depend on the values).
RANDOM_SHAPES = {
    "bert-base-shape": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
MINIBERT = "minibert (NumPy)"
REFERENCE = "sentence-transformers (torch fp32)"
ONNX = "ONNX Runtime (CPU, fp32)"
PARITY_PASSAGES = 64
RSS_MARGIN = 300 * 2**20
MB = 2**20
CSV_COLUMNS = [
    "date",
    "machine",
    "cores",
    "threads",
    "versions",
    "model",
    "corpus",
    "passages",
    "tokens",
    "batch_size",
    "contender",
    "round",
    "docs_per_s",
    "tokens_per_s",
    "gflops",
    "sgemm_peak_gflops",
    "max_abs_diff",
]


# ------------------------------------------------------------------------------------------------ machine


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_counts() -> tuple[int, int]:
    """(physical cores, hardware threads); cores are distinct (physical id, core id) pairs of /proc/cpuinfo."""
    threads = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        physical = core = ""
        for line in [*Path("/proc/cpuinfo").read_text().splitlines(), ""]:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "physical id":
                physical = value
            elif key == "core id":
                core = value
            elif not key and core:
                cores.add((physical, core))
                physical = core = ""
    except OSError:
        pass
    return (len(cores) or threads), threads


def machine_description() -> str:
    cores, threads = cpu_counts()
    return f"{cpu_name()}, {cores} cores, {threads} threads"


def _versions() -> str:
    """Versions of what the contenders run on; only what is already imported or cheap to ask."""
    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        parts.append(f"{blas['name']} {blas['version']}")
    except Exception:  # older numpy has no mode="dicts"; the BLAS is then simply not named
        pass
    for module, label in (
        ("torch", "torch"),
        ("transformers", "transformers"),
        ("sentence_transformers", "sentence-transformers"),
        ("onnxruntime", "onnxruntime"),
    ):
        if (imported := sys.modules.get(module)) is not None:
            threads = f" ({imported.get_num_threads()} threads)" if module == "torch" else ""
            parts.append(f"{label} {imported.__version__}{threads}")
    from . import __version__

    parts.append(f"minibert {__version__}{_checkout_commit()}")
    return ", ".join(parts)


def _checkout_commit() -> str:
    """' (commit abc1234[, modified])' when running from a git checkout, so rows from different commits differ."""
    if not in_checkout():
        return ""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no", "--", "minibert"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" (commit {commit}{', modified' if dirty else ''})" if commit else ""


# ---------------------------------------------------------------------------------------------- counting


def encoder_flops(lengths: Iterable[int], *, hidden_size: int, intermediate_size: int, num_layers: int) -> int:
    """Useful FLOPs of the encoder layers over passages of these real token counts (padding not counted).

    Per layer and passage of L tokens: 2·L·C·3C (QKV) + 2·L·C·C (attention output) + 2·2·L·C·F (FFN in and out)
    + 2·2·L²·C (QKᵀ and A·V over all heads). Embeddings, biases, LayerNorm, softmax and pooling are left out.
    """
    C, F = hidden_size, intermediate_size
    per_layer = 0
    for L in map(int, lengths):
        per_layer += 2 * L * C * 3 * C + 2 * L * C * C + 2 * 2 * L * C * F + 2 * 2 * L * L * C
    return num_layers * per_layer


def sgemm_peak_gflops(hidden_size: int, intermediate_size: int, rows: int = 4096, repeats: int = 5) -> float:
    """Best GFLOP/s of np.matmul over BERT-shaped float32 products: [rows, C]@[C, 3C], [rows, C]@[C, F],
    [rows, F]@[F, C]; each timed `repeats` times after one untimed call."""
    C, F = hidden_size, intermediate_size
    rng = np.random.default_rng(0)
    best = 0.0
    for k, n in ((C, 3 * C), (C, F), (F, C)):
        a = rng.standard_normal((rows, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((rows, n), dtype=np.float32)
        np.matmul(a, b, out=out)
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            best = max(best, 2 * rows * k * n / (time.perf_counter() - start) / 1e9)
    return best


# ------------------------------------------------------------------------------------------------ corpus


def stdlib_corpus(dest_dir: Path, max_passages: int = 4000) -> Path:
    """A plain-text corpus (one passage per line) of the paragraphs of the docstrings in the Python standard
    library's source: modules, classes and functions, files in sorted order, paragraphs of at least 20 words
    without code (no '>>>', no indented lines). Written once to `dest_dir` and reused."""
    path = dest_dir / f"python{sys.version_info[0]}.{sys.version_info[1]}-stdlib-docstrings.txt"
    if path.exists():
        return path
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "lib2to3", "turtledemo", "site-packages", "dist-packages", "__pycache__"}
    files = sorted(p for p in root.rglob("*.py") if not skip.intersection(p.relative_to(root).parts))
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    passages: list[str] = []
    for source in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escape sequences in old sources
                tree = ast.parse(source.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            doc = ast.get_docstring(node) if isinstance(node, kinds) else None
            for paragraph in re.split(r"\n\s*\n", doc or ""):
                words = paragraph.split()
                if len(words) >= 20 and ">>>" not in paragraph and not re.search(r"^\s", paragraph, re.M):
                    passages.append(" ".join(words))
        if len(passages) >= max_passages:
            break
    if not passages:
        raise InputError(f"no docstrings found under {root}; pass --corpus FILE")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(passages[:max_passages]) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def default_corpus() -> Path:
    """$MINIBERT_BENCH_CORPUS; else the MS MARCO sample beside a checkout; else the stdlib docstring corpus."""
    if os.environ.get(CORPUS_ENV, "").strip():
        return Path(os.environ[CORPUS_ENV].strip()).expanduser()
    msmarco = REPO_ROOT.parent / "shared" / "data" / "msmarco-passages.tsv"
    if msmarco.is_file():
        return msmarco
    return stdlib_corpus(minibert_home() / "bench")


def in_checkout() -> bool:
    """True when minibert runs from a source checkout (benchmarks/ beside the package)."""
    return (REPO_ROOT / "benchmarks").is_dir() and (REPO_ROOT / "pyproject.toml").is_file()


def default_csv() -> Path:
    return REPO_ROOT / "benchmarks" / "cpu.csv" if in_checkout() else Path.cwd() / "minibert-bench.csv"


# ------------------------------------------------------------------------------------------------ models


def build_random_bert(dest: Path, shape: dict[str, int], tokenizer_dir: Path, *, seed: int = 0) -> Path:
    """A seeded random-init BertModel of `shape` with `tokenizer_dir`'s tokenizer, saved at `dest` as a
    sentence-transformers directory (Transformer → mean Pooling, max_seq_length 256). Built beside `dest` and
    renamed into place, so an interrupted build leaves nothing half-written; an existing `dest` is reused."""
    if (dest / "modules.json").is_file():
        return dest
    import torch
    from transformers import BertConfig, BertModel

    from .config import load_config

    vocab_size = load_config(tokenizer_dir).vocab_size
    tmp = _new_temp_dir(dest)
    try:
        torch.manual_seed(seed)
        config = BertConfig(vocab_size=vocab_size, max_position_embeddings=512, **shape)
        BertModel(config).eval().save_pretrained(tmp, safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (tokenizer_dir / name).is_file():
                shutil.copy(tokenizer_dir / name, tmp / name)
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        (tmp / "modules.json").write_text(json.dumps(modules, indent=2))
        (tmp / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": False}))
        (tmp / "1_Pooling").mkdir()
        pooling = {"word_embedding_dimension": shape["hidden_size"], "pooling_mode_mean_tokens": True}
        (tmp / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
        _install(tmp, dest)  # minibert.hub's atomic move (keeps a complete copy another process installed first)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_bench_model(name: str) -> tuple[str, Path]:
    """(label, directory) for a --model value: a special random-init shape, or what minibert resolves
    (downloaded with minibert.hub.download when it is a model id not found locally)."""
    if name in RANDOM_SHAPES:
        shape = RANDOM_SHAPES[name]
        label = f"{name} (random-init {shape['num_hidden_layers']} × {shape['hidden_size']})"
        return label, build_random_bert(minibert_home() / "bench" / f"{name}-seed0", shape, _model_dir(DEFAULT_MODEL))
    return name, _model_dir(name)


def _model_dir(name: str) -> Path:
    try:
        return resolve_model_dir(name)
    except ModelNotFoundError:
        if _looks_like_path(name):
            raise
        return download(name)


def default_limit(hidden_size: int, intermediate_size: int, num_layers: int) -> int:
    """512 passages for a model up to twice MiniLM-L6's per-token work, fewer in proportion for larger ones
    (BERT-base: 128), at least 64, a multiple of 32 — about 3 minutes for a default run on 2 cores."""
    minilm = 6 * 384 * (4 * 384 + 2 * 1536)
    work = num_layers * hidden_size * (4 * hidden_size + 2 * intermediate_size)
    return int(min(512, max(64, 32 * round(1024 * minilm / work / 32))))


# -------------------------------------------------------------------------------------------- contenders


class Unavailable(Exception):
    """A contender that cannot run here (not installed); reported as a line, not an error."""


@dataclass
class Contender:
    name: str
    encode: Callable[[list[str]], np.ndarray]


def minibert_contender(model: SentenceTransformer, batch_size: int) -> Contender:
    return Contender(MINIBERT, lambda texts: model.encode(texts, batch_size=batch_size))


def reference_contender(model_dir: Path, batch_size: int) -> Contender:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc}; pip install sentence-transformers)") from None
    reference = SentenceTransformer(str(model_dir), device="cpu")
    return Contender(REFERENCE, lambda texts: reference.encode(texts, batch_size=batch_size, show_progress_bar=False))


def export_onnx(model_dir: Path, path: Path, input_names: Sequence[str], sample: Batch) -> None:
    """torch.onnx.export of transformers' AutoModel: `input_names` → last_hidden_state, dynamic batch and
    sequence axes, the TorchScript exporter (dynamo=False: the dynamo one needs onnxscript)."""
    import inspect

    import torch
    from transformers import AutoModel

    hf_model = AutoModel.from_pretrained(model_dir).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(input_names, inputs, strict=True))).last_hidden_state

    wrapper = LastHiddenState().eval()  # a fresh Module is in training mode (dropout) until told otherwise
    args = tuple(torch.from_numpy(getattr(sample, name)) for name in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*input_names, "last_hidden_state")}
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(
            wrapper,
            args,
            str(tmp),
            input_names=list(input_names),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            **legacy,
        )
    os.replace(tmp, path)


def onnx_contender(model: SentenceTransformer, batch_size: int, cache_dir: Path) -> Contender:
    """ONNX Runtime on CPU: minibert's tokenizer → the exported encoder → minibert's pooling, Dense, Normalize."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc}; pip install onnxruntime onnx)") from None
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise Unavailable(f"not available: exporting the model needs torch and transformers ({exc})") from None
    from .pooling import dense, normalize, pool

    config = model.config
    input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if config.type_vocab_size else [])
    weights_file = model.model_dir / "model.safetensors"
    stat = weights_file.stat()
    key = f"{weights_file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{input_names}|{torch.__version__}"
    key += f"|{transformers.__version__}"
    path = cache_dir / f"{model.model_dir.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    if not path.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        sample = model.tokenize(["a short one", "and a somewhat longer sentence to pad the first one"])
        export_onnx(model.model_dir, path, input_names, sample)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first, as the other two do
        out = np.empty((len(texts), config.embedding_dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = model.tokenize([texts[i] for i in rows])
            (hidden,) = session.run(["last_hidden_state"], {name: getattr(batch, name) for name in input_names})
            embeddings = pool(hidden, batch.attention_mask, config.pooling_modes)  # [B, T, C] -> [B, C · modes]
            for layer, layer_config in zip(model.weights.dense, config.dense_layers, strict=True):
                embeddings = dense(embeddings, layer, layer_config)
            out[rows] = normalize(embeddings) if config.normalize else embeddings
        return out

    return Contender(ONNX, encode)


# ---------------------------------------------------------------------------------------- subprocesses

_COLD_START = {
    MINIBERT: "import sys, minibert\nminibert.SentenceTransformer(sys.argv[1]).encode(['{text}'])",
    REFERENCE: (
        "import sys\nfrom sentence_transformers import SentenceTransformer\n"
        "SentenceTransformer(sys.argv[1], device='cpu').encode(['{text}'])"
    ),
}

_RSS_CHILD = """
import json, os, resource, sys
import minibert

def rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None

def high_water_mark():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None

texts = json.loads(open(sys.argv[2], encoding="utf-8").read())
model = minibert.SentenceTransformer(sys.argv[1])
after_load = rss()
after_repeats = []
for _ in range(int(sys.argv[4])):
    model.encode(texts, batch_size=int(sys.argv[3]))
    after_repeats.append(rss())
ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
hwm = high_water_mark()
print(json.dumps({"after_load": after_load, "after_repeats": after_repeats, "vmhwm": hwm, "ru_maxrss": ru_maxrss,
                  "peak": ru_maxrss if hwm is None else hwm, "peak_source": "ru_maxrss" if hwm is None else "VmHWM"}))
"""


def _run_child(code: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return result


def cold_start_seconds(contender: str, model_dir: Path, repeats: int = 3) -> list[float]:
    """Wall seconds from spawning `python -c` (import, load, encode one sentence) to its exit, `repeats` times."""
    code = _COLD_START[contender].format(text="A cold start encodes one sentence.")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _run_child(code, str(model_dir))
        times.append(time.perf_counter() - start)
    return times


def peak_rss(model_dir: Path, texts: list[str], batch_size: int, repeats: int = 3) -> dict:
    """A fresh process encodes `texts` with minibert `repeats` times. Returns bytes: "after_load", "after_repeats"
    (RSS from /proc/self/statm, None where there is none), "vmhwm", "ru_maxrss", and "peak" (VmHWM, else
    ru_maxrss; "peak_source" says which)."""
    with tempfile.TemporaryDirectory(prefix="minibert-bench-") as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        result = _run_child(_RSS_CHILD, str(model_dir), str(texts_file), str(batch_size), str(repeats))
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- runs


@dataclass
class ModelRun:
    """Everything measured for one model."""

    label: str
    model_dir: Path
    passages: int
    tokens: int
    flops: int
    sgemm_peak: float
    rates: dict[str, list[float]] = field(default_factory=dict)  # contender -> docs/s per round
    max_diff: dict[str, float | None] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # contender -> why
    cold_start: dict[str, list[float]] = field(default_factory=dict)
    cold_start_skipped: dict[str, str] = field(default_factory=dict)
    rss: dict | None = None


def _timed_docs_per_s(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> float:
    start = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - start)


def bench_model(name: str, texts_all: list[str], args: argparse.Namespace) -> ModelRun:
    from .model import SentenceTransformer

    label, model_dir = resolve_bench_model(name)
    model = SentenceTransformer(model_dir)
    c = model.config
    limit = args.limit or default_limit(c.hidden_size, c.intermediate_size, c.num_hidden_layers)
    texts = texts_all[:limit]
    lengths = model.tokenize(texts).attention_mask.sum(axis=1)
    flops = encoder_flops(
        lengths, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size, num_layers=c.num_hidden_layers
    )
    rows = 256 if args.smoke else 4096
    peak = sgemm_peak_gflops(c.hidden_size, c.intermediate_size, rows)
    run = ModelRun(label, model_dir, len(texts), int(lengths.sum()), flops, peak)
    print(f"[{label}] {len(texts)} passages, sgemm peak {peak:.0f} GFLOP/s; loading the contenders", file=sys.stderr)

    contenders = [minibert_contender(model, args.batch_size)]
    loaders = (
        (REFERENCE, lambda: reference_contender(model_dir, args.batch_size)),
        (ONNX, lambda: onnx_contender(model, args.batch_size, minibert_home() / "bench" / "onnx")),
    )
    for contender_name, load in loaders:
        try:
            contenders.append(load())
        except Unavailable as exc:
            run.unavailable[contender_name] = str(exc)

    parity_texts = texts[:PARITY_PASSAGES]
    embeddings = {c.name: c.encode(parity_texts) for c in contenders}  # also the warm-up
    for contender in contenders:
        reference = embeddings.get(REFERENCE)
        gap = None if reference is None else float(np.abs(embeddings[contender.name] - reference).max())
        run.max_diff[contender.name] = gap
        run.rates[contender.name] = []
    for round_index in range(args.rounds):
        print(f"[{label}] round {round_index + 1}/{args.rounds}", file=sys.stderr)
        for contender in contenders:
            run.rates[contender.name].append(_timed_docs_per_s(contender.encode, texts))

    if args.cold_start:
        repeats = 1 if args.smoke else 3
        run.cold_start[MINIBERT] = cold_start_seconds(MINIBERT, model_dir, repeats)
        if REFERENCE in run.unavailable:
            run.cold_start_skipped[REFERENCE] = "not installed"
        elif args.smoke:
            run.cold_start_skipped[REFERENCE] = "skipped in --smoke (importing torch takes seconds)"
        else:
            run.cold_start[REFERENCE] = cold_start_seconds(REFERENCE, model_dir, repeats)
    if args.rss:
        rss_texts = texts if args.rss_limit is None else texts_all[: args.rss_limit or None]
        run.rss = peak_rss(model_dir, rss_texts, args.batch_size, repeats=2 if args.smoke else 3)
        run.rss["weights"] = (model_dir / "model.safetensors").stat().st_size
        run.rss["passages"] = len(rss_texts)
    return run


# ----------------------------------------------------------------------------------------------- output


def _spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def format_report(runs: list[ModelRun], header: dict[str, str], rounds: int) -> str:
    """The markdown report: a header, the throughput table, cold start and RSS tables, the notes."""
    lines = [f"- {key}: {value}" for key, value in header.items()]
    lines += [
        "",
        "| model | contender | docs/s median (min–max) | tokens/s | GFLOP/s | % of sgemm peak | "
        "× sentence-transformers | max \\|Δ\\| vs sentence-transformers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        reference = statistics.median(run.rates[REFERENCE]) if REFERENCE in run.rates else None
        for name, rates in run.rates.items():
            docs = statistics.median(rates)
            gflops = run.flops / run.passages * docs / 1e9
            ratio = f"{docs / reference:.2f}×" if reference else "–"
            gap = run.max_diff[name]
            gap_text = "(reference)" if name == REFERENCE else "–" if gap is None else f"{gap:.1e}"
            lines.append(
                f"| {run.label} | {name} | {_spread(rates)} | {run.tokens / run.passages * docs:,.0f} | "
                f"{gflops:.1f} | {100 * gflops / run.sgemm_peak:.0f}% | {ratio} | {gap_text} |"
            )
    for run in runs:
        for name, why in run.unavailable.items():
            lines.append(f"\n{run.label}: {name}: {why}")
    lines += [
        "",
        f"{rounds} alternating round(s) after a warm-up; GFLOP/s counts the encoder layers' useful FLOPs on real "
        "tokens (padding is not counted): per layer 2·L·C·3C + 2·L·C·C + 2·2·L·C·F + 2·2·L²·C. "
        + "; ".join(f"sgemm peak ({run.label}): {run.sgemm_peak:.1f} GFLOP/s" for run in runs)
        + " (best np.matmul on BERT-shaped float32 matrices, this run).",
    ]
    if any(run.cold_start or run.cold_start_skipped for run in runs):
        lines += ["", "| model | contender | cold start s, median (min–max) |", "|---|---|---|"]
        for run in runs:
            for name, seconds in run.cold_start.items():
                lines.append(f"| {run.label} | {name} | {_spread(seconds, 2)} over {len(seconds)} |")
            for name, why in run.cold_start_skipped.items():
                lines.append(f"| {run.label} | {name} | {why} |")
        lines.append("(a fresh `python -c`: import, load the model, encode one sentence; spawn to exit)")
    if any(run.rss for run in runs):
        lines += [
            "",
            "| model | passages | minibert peak RSS | RSS after load | RSS after each repeat | weights + 300 MB |",
            "|---|---|---|---|---|---|",
        ]
        for run in runs:
            if not run.rss:
                continue
            r = run.rss
            budget = r["weights"] + RSS_MARGIN
            verdict = "within" if r["peak"] <= budget else "over"
            after = " / ".join("n/a" if v is None else f"{v / MB:.0f}" for v in r["after_repeats"])
            load = "n/a" if r["after_load"] is None else f"{r['after_load'] / MB:.0f} MB"
            lines.append(
                f"| {run.label} | {r['passages']} | {r['peak'] / MB:.0f} MB ({r['peak_source']}; {verdict}) | {load} | "
                f"{after} MB | {r['weights'] / MB:.0f} + 300 = {budget / MB:.0f} MB |"
            )
        lines.append(
            "(a fresh process encodes that many passages of the corpus with minibert, once per repeat; VmHWM is the "
            "peak RSS of the process itself: on Linux ru_maxrss would carry over the size of the process that "
            "spawned it)"
        )
    return "\n".join(lines)


def append_csv(path: Path, runs: list[ModelRun], common: dict[str, object]) -> int:
    """One row per contender per round; returns the number of rows written. Refuses a CSV with other columns."""
    if path.exists() and path.stat().st_size:
        with path.open(newline="") as f:
            existing = next(csv.reader(f), [])
        if existing != CSV_COLUMNS:
            raise InputError(f"--csv {path} has other columns ({', '.join(existing)}); pass a new file")
        new_file = False
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        new_file = True
    count = 0
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        if new_file:
            writer.writeheader()
        for run in runs:
            for name, rates in run.rates.items():
                gap = run.max_diff[name]
                for round_index, docs in enumerate(rates):
                    writer.writerow(
                        {
                            **common,
                            "model": run.label,
                            "passages": run.passages,
                            "tokens": run.tokens,
                            "contender": name,
                            "round": round_index,
                            "docs_per_s": f"{docs:.3f}",
                            "tokens_per_s": f"{run.tokens / run.passages * docs:.1f}",
                            "gflops": f"{run.flops / run.passages * docs / 1e9:.3f}",
                            "sgemm_peak_gflops": f"{run.sgemm_peak:.2f}",
                            "max_abs_diff": "" if gap is None else f"{gap:.3g}",
                        }
                    )
                    count += 1
    return count


def plot(path: Path, runs: list[ModelRun], title: str) -> str:
    """A PNG bar chart of median docs/s per contender per model with min–max error bars; returns what it did."""
    try:
        import matplotlib
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(name for run in runs for name in run.rates))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.5 * len(runs) + 2), 4.5))
    for i, name in enumerate(names):
        xs, medians, low, high = [], [], [], []
        for x, run in enumerate(runs):
            if name in run.rates:
                rates = run.rates[name]
                median = statistics.median(rates)
                xs.append(x - 0.4 + width * (i + 0.5))
                medians.append(median)
                low.append(median - min(rates))
                high.append(max(rates) - median)
        bars = ax.bar(xs, medians, width, yerr=[low, high], capsize=4, label=name)
        ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
    ax.set_xticks(range(len(runs)), [run.label for run in runs])
    ax.set_ylabel("docs/s (median, min–max)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot: {path}"


# -------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `minibert bench` and `benchmarks/cpu.py` (one definition for both)."""
    parser.add_argument(
        "--model",
        action="append",
        help=f"name, hub id or directory minibert resolves, or 'bert-base-shape'; repeat or comma-separate for "
        f"several (default {SHORT_DEFAULT})",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        help=f"passages (.tsv id<TAB>text, .jsonl, or one per line); default ${CORPUS_ENV}, else "
        "../shared/data/msmarco-passages.tsv beside a checkout, else the Python stdlib's docstrings",
    )
    parser.add_argument(
        "--limit", type=int, help="passages per run (default 512 for MiniLM-sized models, 128 for BERT-base)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="the same for every contender (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per contender, alternating (default 3)")
    parser.add_argument(
        "--csv",
        type=Path,
        help="CSV to append one row per run to (default benchmarks/cpu.csv in a checkout, else ./minibert-bench.csv)",
    )
    parser.add_argument("--plot", type=Path, help="PNG of docs/s (default: the CSV's path with .png)")
    parser.add_argument("--no-cold-start", dest="cold_start", action="store_false", help="skip the cold starts")
    parser.add_argument("--no-rss", dest="rss", action="store_false", help="skip the peak-RSS subprocess")
    parser.add_argument(
        "--rss-limit",
        type=int,
        help="passages the peak-RSS subprocess encodes per repeat (default: the timed ones; 0: the whole corpus)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="8 passages, batch 4, one round, small sgemm, one minibert cold start; CSV and PNG in a temp dir "
        "unless --csv/--plot are given (checks every code path in seconds)",
    )


def run(args: argparse.Namespace) -> None:
    """Run the benchmark the parsed options describe; print the report, append the CSV, write the plot."""
    for option in ("limit", "batch_size", "rounds"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            raise InputError(f"--{option.replace('_', '-')} must be a positive integer, got {value}")
    if args.rss_limit is not None and args.rss_limit < 0:
        raise InputError(f"--rss-limit must be 0 (the whole corpus) or a positive integer, got {args.rss_limit}")
    if args.smoke:
        args.limit = args.limit or 8
        args.batch_size = 4
        args.rounds = 1
        if args.csv is None:
            args.csv = Path(tempfile.mkdtemp(prefix="minibert-bench-smoke-")) / "cpu.csv"
    models = [m.strip() for value in (args.model or [SHORT_DEFAULT]) for m in value.split(",") if m.strip()]
    if not models:
        raise InputError("--model is empty")
    corpus = args.corpus or default_corpus()
    texts = [p.embed_text for p in read_corpus(corpus)]
    csv_path = args.csv or default_csv()
    plot_path = args.plot or csv_path.with_suffix(".png")

    runs = [bench_model(name, texts, args) for name in models]
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    machine = machine_description()
    versions = _versions()
    header = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine,
        "versions": versions,
        "date": date,
        "corpus": f"{corpus} ({len(texts)} passages; each model takes the first ones, below)",
        "batch size": str(args.batch_size),
    }
    header.update(
        {f"passages ({run.label})": f"{run.passages}, {run.tokens / run.passages:.1f} tokens each" for run in runs}
    )
    print(format_report(runs, header, args.rounds))
    cores, threads = cpu_counts()
    common = {
        "date": date,
        "machine": machine,
        "cores": cores,
        "threads": threads,
        "versions": versions,
        "corpus": str(corpus),
        "batch_size": args.batch_size,
    }
    written = append_csv(csv_path, runs, common)
    print(f"\nCSV: {csv_path} (+{written} rows)")
    print(plot(plot_path, runs, f"minibert bench — {cpu_name()}, {date[:10]}"))


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """`benchmarks/cpu.py`'s entry point; `minibert bench` reaches `run` through minibert.cli."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args)
    except MinibertError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0
