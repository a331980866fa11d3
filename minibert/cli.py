"""The ``minibert`` command line: encode, search, eval, embed, info, download, serve, bench.

Every subcommand takes ``--model`` (default all-MiniLM-L6-v2), resolved like ``minibert.load``.
Errors are one line on stderr, ``minibert: error: …``, exit status 1: what minibert raises on purpose, and
every operating-system failure on the command's files (an ``--output`` in a missing folder or on a full disk,
an unreadable file, a MINIBERT_HOME that is not a directory). Bad usage exits with status 2 (argparse's
convention). When the reader of standard output goes away (``minibert encode … | head``), the command stops
quietly with status 141 (128 + SIGPIPE), as Unix tools killed by SIGPIPE do. The embedding cache of ``search``
is an optimization: when it cannot be written, ``search`` warns once and answers anyway.

Text inputs follow one rule (:func:`minibert.retrieval.corpus.split_lines`): a line ends at ``\\n`` (``\\r\\n``
tolerated), so row *i* of ``encode`` is line *i* of its input, whatever U+2028, U+0085 or form feeds the lines hold.

The environment is read here, once, for every command: ``MINIBERT_NUM_THREADS`` caps the NumPy forward's threads
(:func:`model_options`); the library itself takes them as an argument.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import bench
from .bench.options import add_arguments as add_bench_arguments
from .errors import InputError, MinibertError, positive_int
from .loading.download import download
from .loading.resolve import DEFAULT_MODEL, SHORT_DEFAULT, minibert_home
from .quantization import PRECISIONS
from .retrieval.corpus import decode_utf8, split_lines
from .serve.settings import add_arguments as add_serve_arguments
from .util import SIMILARITY_FUNCTIONS

BROKEN_PIPE_STATUS = 128 + 13  # 128 + SIGPIPE: what a shell reports for a tool killed by a closed pipe
CROSS_ENCODER_DEFAULT = "cross-encoder/ms-marco-MiniLM-L6-v2"  # the cross-encoder sentence-transformers' docs use
THREADS_ENV = "MINIBERT_NUM_THREADS"  # caps the NumPy forward's threads of every command


def threads_from_env() -> int | None:
    """The forward's threads as ``MINIBERT_NUM_THREADS`` caps them — at most the encoder's default, the usable cores
    up to 8 — (InputError naming it for a value that is not a positive integer); None when unset. The one place the
    environment sets them."""
    from .encoder.threads import default_threads

    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    return min(positive_int(THREADS_ENV, int(value) if value.isdigit() else value), default_threads())


def model_options(args: argparse.Namespace) -> dict:
    """The SentenceTransformer keyword arguments of a command: its --device / --dtype / --backend, when it has them,
    and the NumPy backend's threads from MINIBERT_NUM_THREADS."""
    from .model import backend_for

    options = {name: getattr(args, name) for name in ("device", "dtype", "backend") if getattr(args, name, None)}
    threads = threads_from_env()
    if threads is not None and backend_for(options.get("device", "cpu"), options.get("backend")) == "numpy":
        options["threads"] = threads
    return options


def load_model(args: argparse.Namespace):
    """The command's --model, loaded with :func:`model_options`."""
    from .model import load

    return load(args.model, **model_options(args))


def load_cross_encoder(args: argparse.Namespace, name: str):
    """The cross-encoder `name` (a command's --rerank, or rerank's --model), loaded with :func:`model_options`."""
    from .cross_encoder import CrossEncoder

    return CrossEncoder(name, **model_options(args))


def _warn(message: str) -> None:
    print(f"minibert: warning: {message}", file=sys.stderr)


def _read_lines(source: str) -> list[str]:
    """One input per line (blank lines included, so row i is line i); '-' is stdin. Read as bytes and decoded
    here, so a file and stdin give the same errors."""
    if source == "-":
        return split_lines(decode_utf8(sys.stdin.buffer.read(), "standard input"))
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"--input {source}: cannot be read ({exc.strerror or exc})") from None
    return split_lines(decode_utf8(data, f"--input {source}"))


def _write_output(output: str, data: bytes) -> None:
    """`data` into the file `output`; a failure is one InputError naming the file (a partly written regular file
    is removed, never left as a truncated result)."""
    try:
        with open(output, "wb") as f:
            regular = stat.S_ISREG(os.fstat(f.fileno()).st_mode)
            try:
                f.write(data)
                f.flush()
            except OSError:
                if regular:
                    os.unlink(output)
                raise
    except IsADirectoryError:
        raise InputError(f"--output {output}: is a directory; name a file inside it") from None
    except OSError as exc:
        raise InputError(f"--output {output}: cannot write ({exc.strerror or exc})") from None


# Characters JSON leaves raw that some line readers (str.splitlines, editors) take for line breaks: escaped, so
# one JSONL row stays one line for every reader.
_LINE_BREAKS_IN_JSON = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def _jsonl_line(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False).translate(_LINE_BREAKS_IN_JSON) + "\n"


def _write_embeddings(output: str | None, texts: list[str], embeddings: np.ndarray) -> None:
    """.npy → a float32 [n, d] array; .jsonl or stdout → one {"index", "text", "embedding"} object per line."""
    if output is not None and not output.endswith((".npy", ".jsonl")):
        raise InputError(f"--output {output}: use a .npy or .jsonl file name (or omit it to write JSONL to stdout)")
    if output is not None and output.endswith(".npy"):
        buffer = io.BytesIO()
        np.save(buffer, embeddings)
        _write_output(output, buffer.getvalue())
        return
    lines = (
        _jsonl_line({"index": i, "text": t, "embedding": e.tolist()})
        for i, (t, e) in enumerate(zip(texts, embeddings, strict=True))
    )
    if output is None:
        sys.stdout.writelines(lines)
    else:
        _write_output(output, "".join(lines).encode("utf-8"))


def cmd_encode(args: argparse.Namespace) -> None:
    texts = _read_lines(args.input)
    model = load_model(args)
    embeddings = model.encode(
        texts,
        batch_size=args.batch_size,
        normalize_embeddings=args.normalize,
        prompt_name=args.prompt_name,
        precision=args.precision,
    )
    _write_embeddings(args.output, texts, embeddings)
    if args.output:
        print(f"wrote {embeddings.shape[0]} × {embeddings.shape[1]} embeddings to {args.output}", file=sys.stderr)


def _corpus_embeddings(model, passages: list, source: str | Path, args: argparse.Namespace) -> np.ndarray:
    """The corpus's embeddings: from ``--embeddings DIR`` (a finished ``minibert embed`` of this corpus by this model)
    when given; else from the cache when it holds exactly these (retrieval.cache.cache_key), else encoded and cached.
    A cache that cannot be written is warned about, not fatal."""
    from .retrieval.cache import cache_key, load_embeddings, save_embeddings

    if args.embeddings is not None:
        from .embed.reuse import corpus_embeddings_from_output

        return corpus_embeddings_from_output(model, passages, source, args.embeddings)
    texts = [p.embed_text for p in passages]
    cache_dir = minibert_home() / "embeddings"
    key = cache_key(model.config, texts)
    embeddings = load_embeddings(cache_dir, key, (len(texts), model.get_sentence_embedding_dimension()))
    if embeddings is None:
        print(f"encoding {len(texts)} passages from {source} …", file=sys.stderr)
        embeddings = model.encode_document(texts, batch_size=args.batch_size, show_progress_bar=True)
        try:
            save_embeddings(cache_dir, key, embeddings)
        except OSError as exc:
            _warn(
                f"cannot write the embedding cache in {cache_dir} ({exc.strerror or exc}); the results are fine, "
                "but the corpus will be encoded again next time (point MINIBERT_HOME at a writable directory)"
            )
    return embeddings


def cmd_embed(args: argparse.Namespace) -> None:
    # Arrow's own allocator (mimalloc) keeps the pages of freed record batches; the system allocator gives them back,
    # so a long job's footprint stays that of one shard. Set before pyarrow is first imported; the user's choice wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    from .embed import EmbedSettings, open_input
    from .embed.job import print_summary, run_embed_job
    from .retrieval.corpus import JsonFields

    source = open_input(args.input, JsonFields(id=args.id_field, text=args.text_field, title=args.title_field))
    settings = EmbedSettings(
        batch_size=args.batch_size, shard_size=args.shard_size, precision=args.precision, normalize=args.normalize
    ).checked()
    runner = None
    if args.ray is not None:
        from .embed.ray import RayRunner  # Ray is imported only for --ray

        runner = RayRunner(args.model, address=args.ray, actors=args.actors, threads_per_actor=args.threads_per_actor)
    summary = run_embed_job(load_model(args), args.model, source, args.output, settings, runner=runner,
                            overwrite=args.overwrite)  # fmt: skip
    print_summary(summary, args.output)


def _print_hits(query: str, passages: list, hits: list[dict]) -> None:
    print(f"\nquery: {query}")
    for rank, hit in enumerate(hits, 1):
        passage = passages[hit["corpus_id"]]
        print(f"{rank:>3}. {hit['score']:.4f}  [{passage.id}] {passage.embed_text}")


def cmd_search(args: argparse.Namespace) -> None:
    from . import util
    from .retrieval.corpus import read_corpus
    from .retrieval.rerank import rerank

    passages = read_corpus(args.corpus)
    model = load_model(args)
    cross_encoder = load_cross_encoder(args, args.rerank) if args.rerank else None
    corpus_embeddings = _corpus_embeddings(model, passages, args.corpus, args)
    score_function = SIMILARITY_FUNCTIONS[model.similarity_fn_name]
    query_embeddings = model.encode_query(list(args.queries))
    retrieve = max(args.top_k, args.rerank_top) if cross_encoder else args.top_k
    hits = util.semantic_search(query_embeddings, corpus_embeddings, top_k=retrieve, score_function=score_function)
    for query, query_hits in zip(args.queries, hits, strict=True):
        if cross_encoder is not None:
            query_hits = rerank(cross_encoder, query, passages, query_hits, args.rerank_top, args.batch_size)
        _print_hits(query, passages, query_hits[: args.top_k])


def cmd_rerank(args: argparse.Namespace) -> None:
    from .retrieval.corpus import read_corpus

    passages = read_corpus(args.input)
    cross_encoder = load_cross_encoder(args, args.model)
    ranked = cross_encoder.rank(args.query, [p.embed_text for p in passages], top_k=args.top_k,
                                batch_size=args.batch_size)  # fmt: skip
    _print_hits(args.query, passages, ranked)


def _metrics_table(means: dict[str, float]) -> str:
    """The metrics as a markdown table, one row per measure, one column per cut-off, rounded to 5 decimals."""
    from .retrieval.metrics import K_VALUES, MRR_K_VALUES

    lines = ["| metric | " + " | ".join(f"@{k}" for k in K_VALUES) + " |", "|---" * (len(K_VALUES) + 1) + "|"]
    for name in ("NDCG", "MAP", "Recall", "P"):
        lines.append(f"| {name} | " + " | ".join(f"{means[f'{name}@{k}']:.5f}" for k in K_VALUES) + " |")
    return "\n".join([*lines, *(f"\nMRR@{k}: {means[f'MRR@{k}']:.5f}" for k in MRR_K_VALUES)])


def cmd_eval(args: argparse.Namespace) -> None:
    from . import util
    from .retrieval.judgements import load_eval_set
    from .retrieval.metrics import K_VALUES, evaluate
    from .retrieval.rerank import rerank

    data = load_eval_set(args.data, args.split)
    model = load_model(args)
    cross_encoder = load_cross_encoder(args, args.rerank) if args.rerank else None
    documents = _corpus_embeddings(model, data.corpus, data.corpus_path, args)
    print(f"encoding {len(data.queries)} queries …", file=sys.stderr)
    queries = model.encode_query([q.text for q in data.queries], batch_size=args.batch_size, show_progress_bar=True)
    score_function = SIMILARITY_FUNCTIONS[model.similarity_fn_name]
    top_k = min(max(K_VALUES), len(data.corpus))
    hits = util.semantic_search(queries, documents, top_k=top_k, score_function=score_function)
    if cross_encoder is not None:
        print(f"reranking the top {args.rerank_top} of {len(data.queries)} queries …", file=sys.stderr)
        hits = [rerank(cross_encoder, query.text, data.corpus, query_hits, args.rerank_top, args.batch_size)
                for query, query_hits in zip(data.queries, hits, strict=True)]  # fmt: skip
    run = {
        query.id: {data.corpus[hit["corpus_id"]].id: hit["score"] for hit in query_hits}
        for query, query_hits in zip(data.queries, hits, strict=True)
    }
    means, _ = evaluate(data.qrels, run)
    reranked = f", reranked by {args.rerank} (top {args.rerank_top})" if cross_encoder else ""
    print(f"{data.source}: {len(data.queries)} queries, {len(data.corpus)} documents, model {args.model} "
          f"({model.similarity_fn_name}){reranked}\n")  # fmt: skip
    print(_metrics_table(means))
    if args.output:
        report = {
            "model": str(model.model_dir),
            "data": data.source,
            "split": args.split,
            "queries": len(data.queries),
            "documents": len(data.corpus),
            "score_function": model.similarity_fn_name,
            "rerank": {"model": args.rerank, "top": args.rerank_top} if cross_encoder else None,
            "metrics": means,
        }
        _write_output(args.output, (json.dumps(report, indent=2) + "\n").encode())
        print(f"\nwrote {args.output}", file=sys.stderr)


def _print_rows(rows: dict[str, object]) -> None:
    width = max(map(len, rows))
    for name, value in rows.items():
        print(f"{name:<{width}}  {value}")


def _print_model_table() -> None:
    from .loading.known_models import KNOWN_MODELS

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
    if args.list:
        _print_model_table()
        return
    model = load_model(args)
    c = model.config
    dense = [f"{d.in_features}→{d.out_features} {d.activation}" for d in c.dense_layers]
    score_function = SIMILARITY_FUNCTIONS[model.similarity_fn_name]
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
            "score function": f"{model.similarity_fn_name} (util.{score_function.__name__})",
            "prompts": ", ".join(f"{name}={text!r}" for name, text in model.prompts.items() if text) or "none",
            "default prompt": model.default_prompt_name or "none",
        }
    )


def cmd_download(args: argparse.Namespace) -> None:
    print(download(args.name, force=args.force))


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.run import run  # Starlette, uvicorn and prometheus_client are imported only when serving

    return run(args, model_options(args))


def cmd_bench(args: argparse.Namespace) -> None:
    from .bench.run import run  # the benchmark itself (contenders, report, plot) is imported only when it runs

    run(args)


EMBEDDINGS_HELP = (
    "a finished `minibert embed` output of this corpus by this model (float32, not --normalize, the corpus's default "
    "fields): its rows instead of encoding; anything else is refused, naming what differs"
)


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        default="float32",
        choices=PRECISIONS,
        help="float32 (default), or quantized as sentence-transformers' quantize_embeddings: int8 / uint8 codes, "
        "binary / ubinary packed bits (one byte per 8 dimensions)",
    )


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --dtype, --backend: where the model runs (SentenceTransformer's arguments of those names)."""
    parser.add_argument("--device", help="cpu (default: the NumPy backend) or a CUDA device, e.g. cuda (Triton)")
    parser.add_argument("--dtype", help="float32 (default), or for the Triton backend float16 / bfloat16")
    parser.add_argument(
        "--backend", choices=("numpy", "triton"), help="default: numpy on cpu, triton on cuda; triton on cpu runs "
        "the kernels in Triton's interpreter (TRITON_INTERPRET=1)"
    )  # fmt: skip


def add_rerank_arguments(parser: argparse.ArgumentParser) -> None:
    """--rerank, --rerank-top: retrieve with the bi-encoder, then rerank the top K with a cross-encoder."""
    parser.add_argument(
        "--rerank", metavar="CROSS_ENCODER",
        help=f"rerank the retrieved passages with this cross-encoder (directory or hub id: {CROSS_ENCODER_DEFAULT})",
    )  # fmt: skip
    parser.add_argument(
        "--rerank-top", type=int, default=100, metavar="K",
        help="with --rerank: how many retrieved passages it reranks (default 100); only those are kept",
    )  # fmt: skip


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
    add_precision_argument(encode)
    encode.add_argument("--prompt-name", help="a prompt of the model's (e.g. query, document) to put before each line")
    add_device_arguments(encode)
    encode.set_defaults(run=cmd_encode)

    search = with_model(sub.add_parser("search", help="rank a corpus's passages for each query"))
    search.add_argument("--corpus", required=True, help="plain text (a passage per line), .tsv (id<TAB>text) or .jsonl")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--batch-size", type=int, default=32)
    search.add_argument("--embeddings", metavar="DIR", help=EMBEDDINGS_HELP)
    add_rerank_arguments(search)
    search.add_argument("queries", nargs="+", metavar="QUERY")
    add_device_arguments(search)
    search.set_defaults(run=cmd_search)

    evaluation = with_model(
        sub.add_parser("eval", help="retrieval metrics (NDCG, MAP, Recall, P @k; MRR@10) on a judged query set")
    )
    evaluation.add_argument(
        "data", nargs="+", metavar="DATA", help="a BEIR folder, or three files: corpus, queries, qrels (qid 0 pid rel)"
    )
    evaluation.add_argument("--split", default="test", help="the BEIR qrels split (default test)")
    evaluation.add_argument("--output", help="also write the metrics (full precision) to this JSON file")
    evaluation.add_argument("--batch-size", type=int, default=32)
    evaluation.add_argument("--embeddings", metavar="DIR", help=EMBEDDINGS_HELP)
    add_rerank_arguments(evaluation)
    add_device_arguments(evaluation)
    evaluation.set_defaults(run=cmd_eval)

    reranking = sub.add_parser(
        "rerank", help="score a file's passages for a query with a cross-encoder, best first",
        description="Score every passage of FILE (plain text: a passage per line, .tsv id<TAB>text, or .jsonl) for "
        "QUERY with a cross-encoder (query and passage read together), and print them best first.",
    )  # fmt: skip
    reranking.add_argument(
        "--model", default=CROSS_ENCODER_DEFAULT, help=f"a cross-encoder, directory or hub id ({CROSS_ENCODER_DEFAULT})"
    )
    reranking.add_argument("--query", required=True, help="the query")
    reranking.add_argument("--input", required=True, metavar="FILE", help="the passages")
    reranking.add_argument("--top-k", type=int, help="print only the best K (default all)")
    reranking.add_argument("--batch-size", type=int, default=32)
    add_device_arguments(reranking)
    reranking.set_defaults(run=cmd_rerank)

    embed = with_model(
        sub.add_parser(
            "embed",
            help="embed a corpus of any size into Parquet shards (streaming, resumable; --ray for a cluster)",
            description="Embed CORPUS (.tsv id<TAB>text, .jsonl, .parquet, or plain text: a passage per line) into "
            "DIR as Parquet shards (id, embedding) and a manifest.json. Killed, the same command resumes; run again "
            "when finished, it does nothing. README 'Large corpora' has the details.",
        )
    )
    embed.add_argument("--input", required=True, metavar="CORPUS", help=".tsv, .jsonl, .parquet or plain text")
    embed.add_argument("--output", required=True, metavar="DIR", help="the output directory (created if missing)")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--shard-size", type=int, default=10_000, help="rows per Parquet shard (default 10000)")
    add_precision_argument(embed)
    embed.add_argument("--normalize", action="store_true", help="L2-normalize the embeddings")
    embed.add_argument("--id-field", help="JSONL / Parquet id field (default: _id, else id, else the row number)")
    embed.add_argument("--text-field", default="text", help="JSONL / Parquet text field (default text)")
    embed.add_argument("--title-field", default="title", help="JSONL / Parquet title field, optional (default title)")
    embed.add_argument("--overwrite", action="store_true", help="start over when DIR holds another job's output")
    embed.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run through Ray Data (pip install 'minibert[ray]'): on the cluster at ADDRESS ('auto': the one this "
        "machine belongs to), or on a local Ray started for the job when no ADDRESS is given",
    )
    embed.add_argument("--actors", type=int, help="--ray: embedding actors (default: the cluster's CPUs / threads)")
    embed.add_argument("--threads-per-actor", type=int, default=1, help="--ray: CPUs (forward threads) per actor")
    embed.set_defaults(run=cmd_embed)

    info = with_model(sub.add_parser("info", help="describe a model (or --list the models minibert is made for)"))
    info.add_argument("--list", action="store_true", help="print the MS MARCO / multi-qa model table")
    info.set_defaults(run=cmd_info)

    fetch = sub.add_parser("download", help="fetch a model into minibert's cache (MINIBERT_HOME)")
    fetch.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    fetch.add_argument("--force", action="store_true", help="fetch again even when cached")
    fetch.set_defaults(run=cmd_download)

    serve = sub.add_parser(
        "serve",
        help="an OpenAI-, TEI- and Cohere-compatible embedding and rerank server (pip install 'minibert[serve]')",
        description="Serve embeddings and reranking over HTTP: POST /v1/embeddings (OpenAI), POST /embed (TEI), "
        "POST /rerank (TEI), POST /v1/rerank (Cohere / Jina), GET /info, /health, /metrics, /openapi.json, /docs, "
        "with dynamic batching across requests. README 'Serving' has the limits and statuses.",
    )
    add_serve_arguments(serve)
    add_device_arguments(serve)
    serve.set_defaults(run=cmd_serve)

    speed = sub.add_parser(
        "bench",
        help="CPU speed: minibert vs sentence-transformers and ONNX Runtime on a corpus (--task rerank: rerankers)",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_bench_arguments(speed)
    speed.set_defaults(run=cmd_bench)
    return parser


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


# The integer options that count something, on whichever command has them: each a positive integer, checked before
# any work (a model loaded, a corpus embedded) so that a bad value is refused at once. serve and bench check theirs.
COUNT_OPTIONS = ("batch_size", "top_k", "rerank_top", "shard_size", "actors", "threads_per_actor")


def check_counts(args: argparse.Namespace) -> None:
    """InputError naming the first count option of `args` that is not a positive integer."""
    for name in COUNT_OPTIONS:
        if (value := getattr(args, name, None)) is not None:
            positive_int("--" + name.replace("_", "-"), value)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_counts(args)
        status = args.run(args) or 0
        sys.stdout.flush()  # a full disk or a closed pipe behind stdout shows here, not at interpreter exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more can reach the reader
        return BROKEN_PIPE_STATUS
    except MinibertError as exc:
        print(f"minibert: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"minibert: error: {_os_error(exc)}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
