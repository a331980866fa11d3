"""The ``minibert`` command line: encode, search, info, download, bench.

Every subcommand takes ``--model`` (default all-MiniLM-L6-v2), resolved like ``minibert.load``.
Errors minibert raises on purpose are printed as one line on stderr with exit status 1; bad usage
exits with status 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import bench
from .bench.options import add_arguments as add_bench_arguments
from .errors import InputError, MinibertError
from .files import hash_file
from .hub import DEFAULT_MODEL, download, minibert_home

SHORT_DEFAULT = DEFAULT_MODEL.split("/", 1)[1]
SCORE_FUNCTIONS = {"cosine": "cos_sim", "dot": "dot_score"}


def _read_lines(source: str) -> list[str]:
    """One input per line (blank lines included, so row i is line i); '-' is stdin."""
    if source == "-":
        return sys.stdin.read().splitlines()
    try:
        return Path(source).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--input {source}: cannot be read as UTF-8 text ({exc})") from None


def _write_embeddings(output: str | None, texts: list[str], embeddings: np.ndarray) -> None:
    """.npy → a float32 [n, d] array; .jsonl or stdout → one {"index", "text", "embedding"} object per line."""
    if output is not None and output.endswith(".npy"):
        np.save(output, embeddings)
        return
    if output is not None and not output.endswith(".jsonl"):
        raise InputError(f"--output {output}: use a .npy or .jsonl file name (or omit it to write JSONL to stdout)")
    lines = (
        json.dumps({"index": i, "text": t, "embedding": e.tolist()}, ensure_ascii=False)
        for i, (t, e) in enumerate(zip(texts, embeddings, strict=True))
    )
    if output is None:
        sys.stdout.writelines(line + "\n" for line in lines)
    else:
        Path(output).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def cmd_encode(args: argparse.Namespace) -> None:
    from .model import load

    texts = _read_lines(args.input)
    model = load(args.model)
    embeddings = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=args.normalize)
    _write_embeddings(args.output, texts, embeddings)
    if args.output:
        print(f"wrote {embeddings.shape[0]} × {embeddings.shape[1]} embeddings to {args.output}", file=sys.stderr)


def _model_fingerprint(model) -> str:
    """What the corpus cache is keyed on: the weights' bytes and every config value that shapes the output."""
    digest = hash_file(model.model_dir / "model.safetensors")
    c = model.config
    digest.update(repr((c.max_seq_length, c.do_lower_case, c.pooling_modes, c.normalize)).encode())
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        if (model.model_dir / name).exists():
            digest.update((model.model_dir / name).read_bytes())
    return digest.hexdigest()


def cmd_search(args: argparse.Namespace) -> None:
    from . import util
    from .corpus import corpus_cache_key, load_cached_embeddings, read_corpus, save_cached_embeddings
    from .model import load

    passages = read_corpus(args.corpus)
    model = load(args.model)
    cache_dir = minibert_home() / "embeddings"
    key = corpus_cache_key(_model_fingerprint(model), args.corpus)
    corpus_embeddings = load_cached_embeddings(cache_dir, key, len(passages))
    if corpus_embeddings is None:
        print(f"encoding {len(passages)} passages from {args.corpus} …", file=sys.stderr)
        corpus_embeddings = model.encode([p.embed_text for p in passages], batch_size=args.batch_size)
        save_cached_embeddings(cache_dir, key, corpus_embeddings)
    score_function = getattr(util, SCORE_FUNCTIONS[model.similarity_fn_name])
    query_embeddings = model.encode(list(args.queries))
    hits = util.semantic_search(query_embeddings, corpus_embeddings, top_k=args.top_k, score_function=score_function)
    for query, query_hits in zip(args.queries, hits, strict=True):
        print(f"\nquery: {query}")
        for rank, hit in enumerate(query_hits, 1):
            passage = passages[hit["corpus_id"]]
            print(f"{rank:>3}. {hit['score']:.4f}  [{passage.id}] {passage.embed_text}")


def _print_rows(rows: dict[str, object]) -> None:
    width = max(map(len, rows))
    for name, value in rows.items():
        print(f"{name:<{width}}  {value}")


def _print_model_table() -> None:
    from .models import KNOWN_MODELS

    columns = "{:<32} {:<12} {:>6} {:>6}  {:<7}  {:<10}  {}"
    print(
        columns.format(
            "model (sentence-transformers/…)", "architecture", "layers", "hidden", "pooling", "normalized", "score"
        )
    )
    for m in KNOWN_MODELS.values():
        normalized = "yes" if m.normalized else "no"
        print(columns.format(m.name, m.architecture, m.layers, m.hidden_size, m.pooling, normalized, m.score))


def cmd_info(args: argparse.Namespace) -> None:
    from .model import load

    if args.list:
        _print_model_table()
        return
    model = load(args.model)
    c = model.config
    dense = [f"{d.in_features}→{d.out_features} {d.activation}" for d in c.dense_layers]
    _print_rows(
        {
            "model": str(model.model_dir),
            "known as": f"sentence-transformers/{model.known_model.name}" if model.known_model else "-",
            "architecture": c.model_type,
            "layers": c.num_hidden_layers,
            "hidden size": c.hidden_size,
            "attention heads": c.num_attention_heads,
            "intermediate size": c.intermediate_size,
            "parameters": f"{model.weights.num_parameters():,}",
            "max_seq_length": c.max_seq_length,
            "pooling": "+".join(c.pooling_modes),
            "dense layers": ", ".join(dense) or "none",
            "embedding dimension": c.embedding_dim,
            "normalized": "yes" if c.normalize else "no",
            "score function": f"{model.similarity_fn_name} (util.{SCORE_FUNCTIONS[model.similarity_fn_name]})",
        }
    )


def cmd_download(args: argparse.Namespace) -> None:
    print(download(args.name, force=args.force))


def cmd_bench(args: argparse.Namespace) -> None:
    from .bench.run import run  # the benchmark itself (contenders, report, plot) is imported only when it runs

    run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minibert", description="Sentence embeddings from a NumPy BERT.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_model(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--model", default=SHORT_DEFAULT, help=f"directory, hub id or short name (default {SHORT_DEFAULT})"
        )
        return p

    encode = with_model(sub.add_parser("encode", help="embed one text per input line"))
    encode.add_argument("--input", default="-", help="text file, one input per line; '-' = stdin (default)")
    encode.add_argument("--output", help="OUT.npy or OUT.jsonl (default: JSONL on stdout)")
    encode.add_argument("--batch-size", type=int, default=32)
    encode.add_argument("--normalize", action="store_true", help="L2-normalize the embeddings")
    encode.set_defaults(run=cmd_encode)

    search = with_model(sub.add_parser("search", help="rank a corpus's passages for each query"))
    search.add_argument("--corpus", required=True, help="plain text (a passage per line), .tsv (id<TAB>text) or .jsonl")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--batch-size", type=int, default=32)
    search.add_argument("queries", nargs="+", metavar="QUERY")
    search.set_defaults(run=cmd_search)

    info = with_model(sub.add_parser("info", help="describe a model (or --list the models minibert is made for)"))
    info.add_argument("--list", action="store_true", help="print the MS MARCO / multi-qa model table")
    info.set_defaults(run=cmd_info)

    fetch = sub.add_parser("download", help="fetch a model into minibert's cache (MINIBERT_HOME)")
    fetch.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    fetch.add_argument("--force", action="store_true", help="fetch again even when cached")
    fetch.set_defaults(run=cmd_download)

    speed = sub.add_parser(
        "bench",
        help="CPU speed: minibert vs sentence-transformers and ONNX Runtime on a corpus",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_bench_arguments(speed)
    speed.set_defaults(run=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except MinibertError as exc:
        print(f"minibert: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
