"""``minibert embed`` on one machine: every input format, Parquet shards, the manifest, resuming after SIGKILL, memory
bounded by the shard size, and ``search`` / ``eval`` reading the output. A small random-init BERT keeps it fast."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from minibert.embed import EmbedSettings, open_input, read_output, run_embed_job
from minibert.retrieval.corpus import JsonFields
from minibert.testing import assert_close, legacy_pooling
from tests.embed.helpers import embed, one_error_line, run_cli
from tests.helpers import MINIBERT, passages, write_tsv

# --------------------------------------------------------------------------------------------------
# Formats and values


def test_every_format_gives_the_passages_rows(tmp_path, model, model_dir):
    rows = passages(70)
    texts = [text for _, text in rows]
    expected = model.encode_document(texts)  # one call, batches of 32: the job cuts shards of 25, batches of 8
    settings = EmbedSettings(batch_size=8, shard_size=25)

    corpora = {
        "tsv": (write_tsv(tmp_path / "c.tsv", rows), None, [pid for pid, _ in rows]),
        "txt": (tmp_path / "c.txt", None, [str(i) for i in range(len(rows))]),
        "jsonl": (tmp_path / "c.jsonl", None, [str(i) for i in range(len(rows))]),
        "parquet": (tmp_path / "c.parquet", JsonFields(id="doc", text="body"), [pid for pid, _ in rows]),
    }
    corpora["txt"][0].write_text("".join(f"{t}\n\n" for t in texts))  # blank lines are skipped
    corpora["jsonl"][0].write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    pq.write_table(pa.table({"body": texts, "doc": [pid for pid, _ in rows]}), corpora["parquet"][0], row_group_size=9)

    for fmt, (path, fields, ids) in corpora.items():
        out = tmp_path / f"out-{fmt}"
        summary = run_embed_job(model, str(model_dir), open_input(path, fields), out, settings, show_progress=False)
        assert (summary.rows, summary.embedded, summary.shards) == (70, 70, 3)
        manifest, got_ids, got = read_output(out)
        assert got_ids == ids, fmt
        assert got.dtype == np.float32 and got.shape == (70, 32)
        assert_close(got, expected, atol=1e-6, what=f"{fmt} rows vs encode_document")
        assert [s["rows"] for s in manifest["shards"]] == [25, 25, 20]
        assert manifest["input"]["format"] == fmt
        assert manifest["model"]["dimension"] == 32 and manifest["model"]["normalized"] is True
        assert manifest["model"]["similarity_fn_name"] == "cosine"
        schema = pq.read_schema(out / "part-00000.parquet")
        assert schema.field("embedding").type == pa.list_(pa.float32(), 32)
        assert schema.field("id").type == pa.string()


def test_rows_equal_sentence_transformers(tmp_path, model_dir):
    from sentence_transformers import SentenceTransformer

    rows = passages(40, seed=3)
    out = tmp_path / "out"
    result = embed(model_dir, write_tsv(tmp_path / "c.tsv", rows), out, "--shard-size", "16")
    assert result.returncode == 0, result.stderr
    reference = SentenceTransformer(str(model_dir), device="cpu").encode([t for _, t in rows], convert_to_numpy=True)
    _, ids, got = read_output(out)
    assert ids == [pid for pid, _ in rows]
    assert_close(got, reference, atol=1e-6, what="minibert embed vs sentence-transformers")


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_quantized_shards_equal_sentence_transformers(tmp_path, model, model_dir, precision):
    from sentence_transformers.util.quantization import quantize_embeddings

    rows = passages(50, seed=5)
    out = tmp_path / "out"
    settings = EmbedSettings(batch_size=10, shard_size=20, precision=precision)
    run_embed_job(model, str(model_dir), open_input(write_tsv(tmp_path / "c.tsv", rows)), out, settings,
                  show_progress=False)  # fmt: skip
    manifest, ids, got = read_output(out)
    floats = run_embed_job_floats(model, model_dir, tmp_path, rows)
    expected = quantize_embeddings(floats, precision, calibration_embeddings=floats[:20])  # the first shard
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert ids == [pid for pid, _ in rows]
    width = 4 if precision.endswith("binary") else 32
    assert pq.read_schema(out / "part-00001.parquet").field("embedding").type.list_size == width
    assert (manifest["ranges"] is None) == precision.endswith("binary")


def run_embed_job_floats(model, model_dir, tmp_path, rows) -> np.ndarray:
    out = tmp_path / "floats"
    settings = EmbedSettings(batch_size=10, shard_size=20)
    run_embed_job(model, str(model_dir), open_input(write_tsv(tmp_path / "f.tsv", rows)), out, settings,
                  show_progress=False)  # fmt: skip
    return read_output(out)[2]


# --------------------------------------------------------------------------------------------------
# The command: summary, nothing to do twice, changed jobs, bad input


def test_cli_summary_rerun_and_changed_job(tmp_path, model_dir, make_bert_dir):
    corpus = write_tsv(tmp_path / "c.tsv", passages(30))
    out = tmp_path / "out"
    first = embed(model_dir, corpus, out, "--shard-size", "12")
    assert first.returncode == 0, first.stderr
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("embedded 30 rows in ") and "docs/s" in last and f"30 rows in 3 shards in {out}" in last
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    again = embed(model_dir, corpus, out, "--shard-size", "12")
    assert again.returncode == 0 and "already complete (30 rows in 3 shards); nothing to do" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

    one_error_line(embed(model_dir, corpus, out, "--shard-size", "10"), "changed: shard_size", "--overwrite")
    other_model = make_bert_dir("tiny", pooling=legacy_pooling("cls", 32))
    one_error_line(embed(other_model, corpus, out, "--shard-size", "12"), "changed: model.")
    with corpus.open("a") as f:
        f.write("p-new\tone more passage\n")
    one_error_line(embed(model_dir, corpus, out, "--shard-size", "12"), "input.bytes", "input.sha256")
    redone = embed(model_dir, corpus, out, "--shard-size", "12", "--overwrite")
    assert redone.returncode == 0, redone.stderr
    _, ids, _ = read_output(out)
    assert len(ids) == 31 and ids[-1] == "p-new"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", *(f"part-0000{i}.parquet" for i in range(3))]


def test_cli_bad_inputs(tmp_path, model_dir):
    corpus = write_tsv(tmp_path / "c.tsv", passages(5))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x\n")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.md").write_text("mine\n")
    bad_tsv = tmp_path / "bad.tsv"
    bad_tsv.write_text("p1\tfine\nno tab here\n")
    no_text = tmp_path / "no-text.parquet"
    pq.write_table(pa.table({"id": ["a"], "body": ["b"]}), no_text)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")

    one_error_line(embed(model_dir, tmp_path / "missing.tsv", tmp_path / "o1"), "missing.tsv", "no such file")
    one_error_line(embed(model_dir, "-", tmp_path / "o2"), "not standard input")
    one_error_line(embed(model_dir, tmp_path, tmp_path / "o3"), "not a regular file")
    one_error_line(embed(model_dir, corpus, a_file), "is a file")
    one_error_line(embed(model_dir, corpus, foreign), "notes.md", "no manifest.json")
    one_error_line(embed(model_dir, corpus, foreign, "--overwrite"), "no manifest.json")
    one_error_line(embed(model_dir, corpus, tmp_path / "o4", "--shard-size", "0"), "--shard-size", "positive")
    one_error_line(embed(model_dir, bad_tsv, tmp_path / "o5"), "line 2", "no tab")
    one_error_line(embed(model_dir, no_text, tmp_path / "o6"), "no column 'text'", "body", "--text-field")
    one_error_line(embed(model_dir, no_text, tmp_path / "o7", "--text-field", "body", "--id-field", "pid"),
                   "no id column 'pid'")  # fmt: skip
    one_error_line(embed(model_dir, broken, tmp_path / "o8"), "not a readable Parquet file")
    assert (foreign / "notes.md").read_text() == "mine\n" and sorted(os.listdir(foreign)) == ["notes.md"]


# --------------------------------------------------------------------------------------------------
# Killed at any moment, resumed: one row per input, equal to an uninterrupted run


@pytest.mark.parametrize("precision", ["float32", "int8"])  # int8: the ranges are the first shard's, kept with it
def test_sigkill_at_any_moment_then_resume(tmp_path, model_dir, precision):
    rows = passages(1200, seed=7)
    corpus = write_tsv(tmp_path / "c.tsv", rows)
    args = ["--shard-size", "100", "--batch-size", "16", "--precision", precision]
    whole = tmp_path / "whole"
    started = time.monotonic()
    assert embed(model_dir, corpus, whole, *args).returncode == 0
    seconds = time.monotonic() - started  # the kills below come at fractions of it, whatever this machine's speed
    _, whole_ids, whole_rows = read_output(whole)

    out = tmp_path / "killed"
    command = [str(MINIBERT), "embed", "--model", str(model_dir), "--input", str(corpus), "--output", str(out), *args]
    kills = 0
    # From before the manifest to mid-shard. A killed run leaves at most what it did before its kill, so the first
    # three (at 2%, 20% and 35% of an uninterrupted run) cannot finish: at least 80% of the work is left for the third.
    for fraction in (0.02, 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(fraction * seconds)
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    assert kills >= 3, f"the job finished before it could be killed three times (uninterrupted: {seconds:.2f} s)"
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr

    manifest, ids, got = read_output(out)
    assert ids == whole_ids == [pid for pid, _ in rows]  # each input exactly once, in order
    np.testing.assert_array_equal(got, whole_rows)
    assert manifest["rows"] == 1200 and len(manifest["shards"]) == 12
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


# --------------------------------------------------------------------------------------------------
# Memory: bounded by the shard, not the corpus

# The child reports its own peak: VmHWM belongs to the process image made by exec. (ru_maxrss would not do: Linux
# carries the forking parent's RSS into it, and pytest's process, holding torch and the reference models, is larger
# than the job.)
RSS_CHILD = """
import re, sys
from pathlib import Path
from minibert.cli import main
status = main(sys.argv[1:])
print(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1], file=sys.stderr)  # KiB
sys.exit(status)
"""


def peak_rss_kib(model_dir, corpus, out) -> int:
    args = ["embed", "--model", str(model_dir), "--input", str(corpus), "--output", str(out), "--shard-size", "500"]
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    result = subprocess.run([sys.executable, "-c", RSS_CHILD, *args], capture_output=True, text=True, env=env,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return int(result.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_peak_memory_does_not_grow_with_the_corpus(tmp_path, model_dir, fmt):
    small, large = passages(1500, seed=11), passages(15000, seed=11)
    paths = []
    for name, rows in (("small", small), ("large", large)):
        path = tmp_path / f"{name}.{fmt}"
        if fmt == "tsv":
            write_tsv(path, rows)
        else:
            pq.write_table(pa.table({"id": [r[0] for r in rows], "text": [r[1] for r in rows]}), path,
                           row_group_size=2000)  # fmt: skip
        paths.append(path)
    small_kib = peak_rss_kib(model_dir, paths[0], tmp_path / "out-small")
    large_kib = peak_rss_kib(model_dir, paths[1], tmp_path / "out-large")
    corpus_mib = paths[1].stat().st_size / 2**20
    # Holding the large corpus (its passages and rows) would add ~30 MiB; one shard of 500 rows is under 1 MiB.
    assert large_kib - small_kib < 6 * 1024, (
        f"peak RSS {small_kib / 1024:.1f} MiB for 1,500 passages, {large_kib / 1024:.1f} MiB for 15,000 "
        f"({corpus_mib:.1f} MiB of {fmt}): memory grows with the corpus"
    )


# --------------------------------------------------------------------------------------------------
# search and eval from the output


def test_search_and_eval_read_the_output(tmp_path, model_dir, make_bert_dir):
    rows = passages(60, seed=13)
    corpus = write_tsv(tmp_path / "c.tsv", rows)
    out = tmp_path / "out"
    assert embed(model_dir, corpus, out, "--shard-size", "25").returncode == 0
    home = {**os.environ, "MINIBERT_HOME": str(tmp_path / "home")}  # an empty embedding cache: search must encode

    def search(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(MINIBERT), "search", "--model", str(model_dir), "--corpus", str(corpus), "--top-k", "5", *extra,
             "bread oven", "python list"], capture_output=True, text=True, env=home, timeout=300,
        )  # fmt: skip

    encoded, reused = search(), search("--embeddings", str(out))
    assert encoded.returncode == 0 and reused.returncode == 0, reused.stderr
    assert reused.stdout == encoded.stdout and "encoding" not in reused.stderr

    queries = tmp_path / "q.tsv"
    queries.write_text("q1\tbread oven season\nq2\tpython list comprehension\n")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 p3 1\nq1 0 p10 2\nq2 0 p7 1\n")
    reports = []
    for extra in ([], ["--embeddings", str(out)]):
        report = tmp_path / f"report{len(extra)}.json"
        result = run_cli("eval", "--model", str(model_dir), str(corpus), str(queries), str(qrels), "--output",
                         str(report), *extra)  # fmt: skip
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(report.read_text())["metrics"])
    assert reports[0] == reports[1]

    other = make_bert_dir("tiny", pooling=legacy_pooling("cls", 32))
    result = run_cli("search", "--model", str(other), "--corpus", str(corpus), "--embeddings", str(out), "x")
    one_error_line(result, "was embedded by model", "not this --model")
    other_corpus = write_tsv(tmp_path / "other.tsv", passages(60, seed=14))
    result = run_cli("search", "--model", str(model_dir), "--corpus", str(other_corpus), "--embeddings", str(out), "x")
    one_error_line(result, "contents differ")
    quantized = tmp_path / "int8"
    assert embed(model_dir, corpus, quantized, "--precision", "int8").returncode == 0
    result = run_cli("search", "--model", str(model_dir), "--corpus", str(corpus), "--embeddings", str(quantized), "x")
    one_error_line(result, "int8 rows", "float32")


def test_plain_path_never_imports_ray(tmp_path, model_dir):
    corpus = write_tsv(tmp_path / "c.tsv", passages(10))
    code = (
        "import sys\nfrom minibert.cli import main\n"
        f"status = main(['embed', '--model', {str(model_dir)!r}, '--input', {str(corpus)!r}, "
        f"'--output', {str(tmp_path / 'out')!r}])\n"
        "assert status == 0\nassert 'ray' not in sys.modules, 'ray was imported'\nprint('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
