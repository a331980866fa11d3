"""Every benchmark script answers --help and runs its --smoke configuration; the CPU benchmark's pieces are checked.

The GPU numbers need a GPU; these runs prove the scripts' code paths (corpus lengths, contenders, parity
checks against the reference, table and CSV output) work, so a GPU session can spend its time measuring.
The CPU benchmark (minibert.bench, run by benchmarks/cpu.py and `minibert bench`) is run in its --smoke
configuration on the real all-MiniLM-L6-v2, and with --task rerank on a tiny random-init cross-encoder; its FLOP
count, corpus fallback, CSV helper, rerank pairs and candidates, and random-init model are checked on their own.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minibert
from minibert.bench.choice import random_bert
from minibert.bench.contenders import MINIBERT, ONNX, REFERENCE, Unavailable, onnx_contender
from minibert.bench.corpus import stdlib_corpus
from minibert.bench.queries import (
    call_latencies_ms,
    queries_from_passages,
    query_windows,
    read_queries,
    streamed_bytes,
)
from minibert.bench.report import append_csv
from minibert.bench.rerank import candidate_lists, rerank_pairs
from minibert.bench.results import CROSS_ENCODER, RESULT_COLUMNS
from minibert.bench.timing import alternating, call_seconds
from minibert.bench.work import default_limit, encoder_flops
from minibert.bench.worker import ContenderProcess
from minibert.errors import InputError
from minibert.testing import assert_close
from tests.helpers import ROOT

SCRIPTS = [
    "bench_attention.py",
    "bench_pooling.py",
    "bench_e2e.py",
    "cpu.py",
    "parity_report.py",
    "profile_cpu.py",
    "small_gemm.py",
]
SMOKE = ["bench_attention.py", "bench_pooling.py", "bench_e2e.py"]
MINIBERT_CLI = Path(sys.executable).parent / "minibert"


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


@pytest.mark.parametrize("script", SMOKE)
def test_smoke_run(script, real_model_dir):
    result = run(script, "--smoke")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "max |Δ|" in result.stdout  # every script checks its contenders against a reference
    assert "Traceback" not in result.stderr


def test_small_gemm_times_every_layout_of_every_matrix():
    result = run("small_gemm.py", "--smoke")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    rows = re.findall(r"^\| (\d+) \| ([a-zA-Z ]+) \| (\d+) \| (.+) \| (\S+) \|$", result.stdout, re.M)
    matrices = {"QKV", "attention output", "FFN in", "FFN out"}
    assert {name for _, name, _, _, _ in rows} == matrices and {m for _, _, m, _, _ in rows} == {"2", "9"}
    for _, _, _, cells, gap in rows:
        assert len(re.findall(r"\d+ \(\d+\.\d\)", cells)) == 3  # µs (GB/s) for each of the three layouts
        assert float(gap) < 1e-4  # every layout computes the same product


def test_profile_accounts_for_every_piece(real_model_dir):
    result = run("profile_cpu.py", "--limit", "8")
    assert result.returncode == 0, result.stderr[-2000:]
    shares = dict(re.findall(r"^\| ([^|]+) \| ([0-9.]+) \| [0-9]+% \|$", result.stdout, flags=re.M))
    gemms = "GEMMs (the rest of the embed stage: with the embeddings gather, Dense, Normalize)"
    assert {gemms, "bias + GELU", "prepare: checks, prompt, tokenization (tokenizers, Rust)", "total"} <= shares.keys()
    assert float(shares[gemms]) > 0 and float(shares["bias + GELU"]) > 0
    assert "GFLOP/s" in result.stdout


def test_minibert_bench_help_has_the_scripts_options():
    result = subprocess.run([str(MINIBERT_CLI), "bench", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: minibert bench")
    script = run("cpu.py", "--help")
    options = {
        name: set(re.findall(r"--[a-z][a-z-]+", out))
        for name, out in (("cli", result.stdout), ("script", script.stdout))
    }
    assert options["cli"] == options["script"]
    assert {
        "--model",
        "--corpus",
        "--limit",
        "--rounds",
        "--csv",
        "--plot",
        "--no-cold-start",
        "--no-rss",
        "--rss-limit",
        "--queries",
        "--no-queries",
        "--smoke",
        "--task",
        "--candidates",
    } <= options["cli"]


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def test_cpu_smoke_run_writes_table_csv_and_png(tmp_path, real_model_dir):
    csv_path, png_path = tmp_path / "out" / "cpu.csv", tmp_path / "out" / "cpu.png"
    result = run("cpu.py", "--smoke", "--rss-limit", "12", "--csv", str(csv_path), "--plot", str(png_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    expected = _expected_contenders()
    out = result.stdout
    assert "| model | contender | docs/s median (min–max) | tokens/s | GFLOP/s | % of sgemm peak |" in out
    for name in expected:
        assert re.search(rf"^\| all-MiniLM-L6-v2 \| {re.escape(name)} \| \d+\.\d \(", out, re.M), out
    assert "padding is not counted" in out
    assert re.search(r"sgemm peak \(all-MiniLM-L6-v2\): \d+\.\d GFLOP/s", out)
    assert re.search(rf"^\| all-MiniLM-L6-v2 \| {re.escape(MINIBERT)} \| \d+\.\d\d \(", out, re.M)  # cold start
    assert re.search(r"^\| all-MiniLM-L6-v2 \| 12 \| \d+ MB \((VmHWM|ru_maxrss); (within|over)\) \|", out, re.M)  # RSS

    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == RESULT_COLUMNS  # the one long-format schema
        rows = list(reader)
    for row in rows:
        assert row["what"].startswith("all-MiniLM-L6-v2: ") and row["date"] and row["machine"], row
        assert "numpy" in row["versions"] and float(row["p20"]) <= float(row["median"]) <= float(row["p80"]), row
    by_metric = {}
    for row in rows:
        by_metric.setdefault((row["metric"], row["unit"]), []).append(row)
    docs = by_metric[("throughput", "docs/s")]
    assert sorted(row["contender"] for row in docs) == sorted(expected)  # one row per contender
    for row in docs:
        assert row["x"] == "4" and "(8, " in row["what"] and float(row["median"]) > 0, row
    for unit in ("tokens/s", "GFLOP/s"):
        metric = "throughput" if unit == "tokens/s" else "compute"
        assert sorted(row["contender"] for row in by_metric[(metric, unit)]) == sorted(expected)
    if REFERENCE in expected:  # every contender's embeddings equal the reference's (ARCHITECTURE.md bound)
        for row in by_metric[("max |Δ| vs sentence-transformers", "1")]:
            assert float(row["median"]) <= 1e-5, row

    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the query rows: a table line per contender, and their rows in the same CSV
    assert "| model | contender | queries/s, batch of distinct queries, median (min–max) |" in out
    number = r"\d+\.\d"
    for name in expected:
        line = rf"^\| all-MiniLM-L6-v2 \| {re.escape(name)} \| {number} \({number}–{number}\) \| .* \| "
        assert re.search(line + rf"{number} / {number} / {number} \| .* \| {number}× \|$", out, re.M), out
    query_metrics = sorted((row["contender"], row["metric"]) for row in rows if ": queries (4 distinct" in row["what"])
    per_contender = ["one-query latency", "one-query latency p95", "one-query latency p99", "throughput"]
    assert query_metrics == sorted([(n, m) for n in expected for m in per_contender] + [(MINIBERT, "bandwidth floor")])
    for row in rows:
        if ": queries (" in row["what"]:
            tokens = float(re.search(r"distinct, (\d+\.\d) tokens each", row["what"])[1])
            assert float(row["median"]) > 0 and 3 < tokens < 40, row


def _expected_contenders() -> set[str]:
    expected = {MINIBERT}
    if _installed("sentence_transformers"):
        expected.add(REFERENCE)
    if _installed("onnxruntime", "torch", "transformers"):
        expected.add(ONNX)
    return expected


def test_rerank_smoke_run_writes_tables_csv_and_png(tmp_path, make_cross_encoder_dir):
    """--task rerank on a tiny cross-encoder: both tables name every contender, the CSV gets the cross-encoder rows
    (what "cross-encoder, ..."; pairs/s, tokens/s, GFLOP/s, max |Δ|, rerank latency p50/p95/p99), the PNG is beside
    the CSV, and nothing of the embedding task runs."""
    model_dir = make_cross_encoder_dir("bert", "tiny")
    csv_path = tmp_path / "out" / "rows.csv"
    result = run("cpu.py", "--task", "rerank", "--smoke", "--model", str(model_dir), "--csv", str(csv_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    expected = _expected_contenders()
    out, label = result.stdout, re.escape(str(model_dir))
    assert "| model | contender | pairs/s median (min–max) | tokens/s | GFLOP/s | % of sgemm peak |" in out
    assert "| model | contender | rerank one query's candidates, p50 / p95 / p99 ms |" in out
    assert "docs/s" not in out and "queries/s" not in out  # the embedding task did not run
    number = r"\d+\.\d"
    for name in expected:
        assert re.search(rf"^\| {label} \| {re.escape(name)} \| {number} \({number}–{number}\) \|", out, re.M), out
        assert re.search(rf"^\| {label} \| {re.escape(name)} \| {number} / {number} / {number} \|", out, re.M), out
    assert "4 queries × 8 candidates" in out  # --smoke: 4 queries, 8 candidates each

    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == RESULT_COLUMNS  # the one long-format schema, the embedding rows' columns
        rows = list(reader)
    for row in rows:
        assert row["what"].startswith(f"{CROSS_ENCODER}, {model_dir}: "), row
        assert row["date"] and row["machine"] and "numpy" in row["versions"], row
        assert float(row["p20"]) <= float(row["median"]) <= float(row["p80"]), row
    by_metric: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        by_metric.setdefault((row["metric"], row["unit"]), []).append(row)
    for metric, unit in (("throughput", "pairs/s"), ("throughput", "tokens/s"), ("compute", "GFLOP/s")):
        assert sorted(row["contender"] for row in by_metric[(metric, unit)]) == sorted(expected), (metric, unit)
    for row in by_metric[("throughput", "pairs/s")]:
        assert row["x"] == "4" and "pairs (8, " in row["what"] and float(row["median"]) > 0, row
    for metric in ("rerank latency", "rerank latency p95", "rerank latency p99"):
        latency = by_metric[(metric, "ms")]
        assert sorted(row["contender"] for row in latency) == sorted(expected), metric
        for row in latency:
            # the corpus is MS MARCO's beside a checkout, else the standard library's docstrings: either is named
            assert row["x"] == "8" and re.search(r"rerank 8 \S+ passages per query \(4 queries", row["what"]), row
            assert float(row["median"]) > 0, row
    if REFERENCE in expected:  # every contender's scores equal the reference's
        gaps = by_metric[("max |Δ| score vs sentence-transformers", "1")]
        assert sorted(row["contender"] for row in gaps) == sorted(expected)
        assert all(float(row["median"]) <= 1e-5 for row in gaps), gaps
    assert (tmp_path / "out" / "rows-rerank.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "out" / "rows.png").exists()  # never where the embedding plot goes


def test_rerank_pairs_are_distinct_and_candidates_are_each_querys_own_slice():
    queries, passages = ["q0", "q1", "q2"], [f"p{i}" for i in range(10)]
    assert rerank_pairs(queries, passages, 4) == [("q0", "p0"), ("q1", "p1"), ("q2", "p2"), ("q0", "p3")]
    assert len(rerank_pairs(queries, passages, 50)) == 10  # never more pairs than passages
    lists = candidate_lists(queries, passages, 4)  # query j's from passage 4·j on, the corpus taken round and round
    assert lists == [
        ("q0", ["p0", "p1", "p2", "p3"]),
        ("q1", ["p4", "p5", "p6", "p7"]),
        ("q2", ["p8", "p9", "p0", "p1"]),
    ]


def test_contenders_take_turns_each_turn_after_an_untimed_call():
    log = []
    calls = {name: (lambda item, name=name: log.append(f"{name}{item}")) for name in "AB"}
    times = call_latencies_ms(calls, [1, 2, 3], passes=1, turn=2)
    assert log == ["A1", "A1", "A2", "B1", "B1", "B2", "A3", "A3", "B3", "B3"]  # the first of each turn: untimed
    assert {name: len(ms) for name, ms in times.items()} == {"A": 3, "B": 3}
    log.clear()
    call_latencies_ms(calls, [1, 2], passes=2)  # no turn: pass by pass
    assert log == ["A1", "A1", "A2", "B1", "B1", "B2"] * 2
    log.clear()
    rates = alternating({name: (lambda name=name: log.append(name) or 1.0) for name in "AB"}, rounds=3)
    assert log == ["A", "B"] * 3 and rates == {"A": [1.0] * 3, "B": [1.0] * 3}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "rerank", "--candidates", "0"], "--candidates must be"),
        (["--task", "rerank", "--no-queries"], "--no-queries: --task rerank pairs queries with passages"),
    ],
)
def test_bad_rerank_options_are_one_line_errors(args, message):
    result = subprocess.run([str(MINIBERT_CLI), "bench", *args, "--smoke"], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"minibert: error: {message}"), result.stderr


def test_streamed_bytes_are_the_encoder_layers_parameters(real_model_dir):
    """The one-query floor's numerator: the bytes of every encoder layer's parameters."""
    model = minibert.SentenceTransformer(real_model_dir)
    C, F, layers = 384, 1536, 6  # all-MiniLM-L6-v2: QKV, attention output, FFN matrices, their biases, 2 LayerNorms
    assert streamed_bytes(model.weights) == 4 * layers * (4 * C * C + 2 * C * F + 9 * C + F)


def test_query_windows_hold_distinct_queries_and_cycle_the_list():
    queries = [f"q{i}" for i in range(5)]
    windows = query_windows(queries, 3, 4)
    assert windows == [["q0", "q1", "q2"], ["q3", "q4", "q0"], ["q1", "q2", "q3"], ["q4", "q0", "q1"]]
    assert query_windows(queries, 32, 2) == [queries, queries]  # never more than the distinct queries


def test_queries_are_read_once_each_or_cut_from_passages(tmp_path):
    path = tmp_path / "queries.tsv"
    path.write_text("1\twhat is a goldfish\n2\tdo goldfish grow\n3\twhat is a goldfish\n", encoding="utf-8")
    assert read_queries(path) == ["what is a goldfish", "do goldfish grow"]
    passages = ["one two three four five six seven eight nine ten", "short one", "short one"]
    assert queries_from_passages(passages, words=8) == ["one two three four five six seven eight", "short one"]


@pytest.mark.parametrize(("option", "value"), [("--limit", "0"), ("--rounds", "-1"), ("--rss-limit", "-5")])
def test_bad_option_values_are_one_line_errors(option, value):
    result = subprocess.run([str(MINIBERT_CLI), "bench", option, value, "--smoke"], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(rf"minibert: error: {option} must be", result.stderr), result.stderr


def test_missing_queries_file_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nope.tsv"
    result = subprocess.run(
        [str(MINIBERT_CLI), "bench", "--queries", str(missing), "--smoke"], capture_output=True, text=True
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("minibert: error: ") and str(missing) in result.stderr, result.stderr


def test_encoder_flops_matches_a_hand_count():
    # C = 4, F = 8, two layers, passages of 3 and 5 real tokens. Per layer:
    #   L = 3: QKV 2·3·4·12 = 288, attention output 2·3·4·4 = 96, FFN 2·2·3·4·8 = 384, QKᵀ + A·V 2·2·9·4 = 144 → 912
    #   L = 5: QKV 2·5·4·12 = 480, attention output 2·5·4·4 = 160, FFN 2·2·5·4·8 = 640, QKᵀ + A·V 2·2·25·4 = 400 → 1680
    # (912 + 1680) · 2 layers = 5184
    assert encoder_flops([3, 5], hidden_size=4, intermediate_size=8, num_layers=2) == 5184
    assert encoder_flops([], hidden_size=4, intermediate_size=8, num_layers=2) == 0


def test_default_limit_scales_with_the_model():
    assert default_limit(384, 1536, 6) == 512  # all-MiniLM-L6-v2
    assert default_limit(768, 3072, 12) == 128  # BERT-base: 8× the work per token
    assert default_limit(1024, 4096, 24) == 64  # BERT-large: the floor


def test_stdlib_corpus_is_prose_minibert_can_read(tmp_path):
    from minibert.retrieval.corpus import read_corpus

    path = stdlib_corpus(tmp_path, max_passages=40)
    passages = read_corpus(path)
    assert len(passages) == 40
    assert all(len(p.text.split()) >= 20 and ">>>" not in p.text for p in passages)
    assert stdlib_corpus(tmp_path, max_passages=40) == path  # reused, not rebuilt


def test_missing_contender_is_unavailable_not_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(Unavailable, match="not installed"):
        onnx_contender(None, 4, Path("unused"))


def test_append_csv_writes_the_header_once_and_refuses_other_columns(tmp_path):
    path = tmp_path / "new" / "rows.csv"
    assert append_csv(path, ["a", "b"], [{"a": 1, "b": 2}]) == 1
    assert append_csv(path, ["a", "b"], [{"a": 3, "b": 4}, {"a": 5, "b": 6}]) == 2
    assert path.read_text().splitlines() == ["a,b", "1,2", "3,4", "5,6"]
    with pytest.raises(InputError, match=r"has other columns \(a, b\)"):
        append_csv(path, ["a", "c"], [{"a": 7, "c": 8}])
    assert path.read_text().splitlines()[-1] == "5,6"  # nothing appended


def test_random_bert_builder_makes_a_model_both_encoders_load(tmp_path, real_model_dir):
    from sentence_transformers import SentenceTransformer as Reference

    import minibert

    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    model_dir = random_bert(tmp_path / "tiny", shape)
    ours = minibert.SentenceTransformer(model_dir)
    c = ours.config
    assert (c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.max_seq_length) == (32, 2, 37, 256)
    assert c.pooling_modes == ("mean",) and not c.normalize
    texts = ["a short passage", "a somewhat longer passage about how bread rises in a warm kitchen"]
    reference = Reference(str(model_dir), device="cpu").encode(texts)
    assert_close(ours.encode(texts), reference, atol=1e-4, rtol=1e-5, what="random-init builder, minibert vs reference")
    built = (model_dir / "model.safetensors").stat().st_mtime_ns
    assert random_bert(tmp_path / "tiny", shape) == model_dir
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == built  # built once, then reused


def test_a_contender_process_answers_as_the_contender_does_in_this_process(make_cross_encoder_dir, make_bert_dir):
    """Each contender runs in a worker process of its own: the same results as in this process, each call timed
    there, its errors raised here with the worker's traceback; it exits when its pipe closes."""
    model_dir = make_cross_encoder_dir("bert", "tiny")
    pairs = [("what is a cross-encoder", "a reranker that reads both texts"), ("q", "d")]
    spec = {"task": "rerank", "contender": MINIBERT, "model_dir": str(model_dir), "batch_size": 32, "cache_dir": ""}
    worker = ContenderProcess(spec)
    try:
        scores, seconds = worker.call("predict", pairs)
        assert np.array_equal(scores, minibert.CrossEncoder(model_dir).predict(pairs)) and 0 < seconds < 60
        contender = worker.contender()
        documents = ["d", "what is a cross-encoder"]
        expected = minibert.CrossEncoder(model_dir).rank("q", documents)
        assert [r["corpus_id"] for r in contender.rank("q", documents)] == [r["corpus_id"] for r in expected]
        assert 0 < call_seconds(contender.predict, pairs) < 60  # the worker's own clock
        with pytest.raises(RuntimeError, match=r"InputTypeError: sentences\[0\]\[1\] is int"):
            worker.call("predict", [("q", 3)])
        with pytest.raises(RuntimeError, match="unknown method"):
            worker.call("encode", ["x"])
    finally:
        worker.close()
    bert_dir = make_bert_dir("tiny")
    embedder = ContenderProcess({**spec, "task": "embed", "model_dir": str(bert_dir)})
    try:
        texts = ["a passage", "another one"]
        assert np.array_equal(embedder.contender().encode(texts), minibert.SentenceTransformer(bert_dir).encode(texts))
    finally:
        embedder.close()
