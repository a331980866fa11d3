"""``minibert embed`` and ``search`` / ``eval --embeddings`` against hostile outputs: rows made from other fields, a
shard copied in from another output, the model's directory spelled otherwise, a truncated shard, a tampered
manifest, two jobs on one directory. Each ends with every id exactly once, bitwise equal to an uninterrupted run, or
with one clear refusal (an InputError; ``minibert: error:`` and status 1 through the command line) — never a
mixture, never a traceback. A small random-init BERT and corpora of tens of passages keep it to seconds."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import minibert
from minibert.embed import EmbedSettings, open_input, read_output, run_embed_job
from minibert.embed.reuse import corpus_embeddings_from_output
from minibert.errors import InputError
from minibert.retrieval.corpus import JsonFields, read_corpus
from minibert.testing import legacy_pooling
from tests.embed.helpers import embed, one_error_line, run_cli
from tests.helpers import MINIBERT, passages, write_tsv

SETTINGS = {"float32": EmbedSettings(batch_size=8, shard_size=20), "int8": EmbedSettings(8, 20, "int8")}


@pytest.fixture(scope="module")
def whole(tmp_path_factory, model, model_dir) -> dict:
    """A corpus of 60 passages and its uninterrupted outputs, float32 and int8, in 3 shards of 20."""
    root = tmp_path_factory.mktemp("whole")
    corpus = write_tsv(root / "c.tsv", passages(60, seed=21))
    outputs = {}
    for precision, settings in SETTINGS.items():
        outputs[precision] = root / precision
        run_embed_job(model, str(model_dir), open_input(corpus), outputs[precision], settings, show_progress=False)
    return {"corpus": corpus, **outputs}


def copy_of(whole: dict, precision: str, tmp_path: Path) -> Path:
    out = tmp_path / f"copy-{precision}"
    shutil.copytree(whole[precision], out)
    return out


def resume(model, model_dir, corpus: Path, out: Path, precision: str = "float32", fields: JsonFields | None = None):
    return run_embed_job(model, str(model_dir), open_input(corpus, fields), out, SETTINGS[precision],
                         show_progress=False)  # fmt: skip


def reused(model, corpus: Path, out: Path) -> np.ndarray:
    return corpus_embeddings_from_output(model, read_corpus(corpus), corpus, out)


def outcome(call: Callable[[], object]) -> str:
    """'ok' when `call` returns, else its InputError's message; any other exception fails the test (a traceback)."""
    try:
        call()
    except InputError as exc:
        return str(exc)
    return "ok"


def assert_same_output(out: Path, reference: Path) -> None:
    """`out` is complete and holds `reference`'s ids and rows, bit for bit, and nothing else."""
    manifest, ids, rows = read_output(out)
    _, reference_ids, reference_rows = read_output(reference)
    assert ids == reference_ids and len(set(ids)) == len(ids)
    np.testing.assert_array_equal(rows, reference_rows)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in reference.iterdir()
    )
    assert manifest["status"] == "complete"


def contents(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


# --------------------------------------------------------------------------------------------------
# search / eval --embeddings: only the rows this command would compute


def test_reuse_compares_the_fields_the_rows_were_computed_from(tmp_path, model, model_dir):
    texts = [text for _, text in passages(30, seed=22)]
    records = [{"_id": f"d{i}", "id": f"d{29 - i}", "text": t, "body": t[::-1], "headline": f"headline {i}"}
               for i, t in enumerate(texts)]  # fmt: skip
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    direct = model.encode_document([p.embed_text for p in read_corpus(jsonl)], batch_size=8)

    def reuse(fields: JsonFields, corpus: Path = jsonl) -> str:
        out = tmp_path / f"out-{corpus.suffix}-{fields.id}-{fields.text}-{fields.title}"
        resume(model, model_dir, corpus, out, fields=fields)
        return outcome(lambda: np.testing.assert_allclose(reused(model, corpus, out), direct, atol=1e-6))

    assert reuse(JsonFields()) == "ok"
    assert reuse(JsonFields(id="_id")) == "ok"  # the ids search reads: the same rows
    assert "--text-field" in reuse(JsonFields(text="body"))  # was: used as the corpus's rows (NDCG 0.89 → 0.34)
    assert "--title-field" in reuse(JsonFields(title="headline"))
    # `id` holds the same ids in reverse order: each row would have gone to another passage
    assert "row 0 is 'd29' where the corpus has 'd0'" in reuse(JsonFields(id="id"))
    # a .tsv is id<TAB>text whatever --*-field says: the same rows, accepted as before
    tsv = write_tsv(tmp_path / "c.tsv", [(f"d{i}", t) for i, t in enumerate(texts)])
    assert reuse(JsonFields(id="x", text="body", title="headline"), tsv) == "ok"

    queries, qrels = tmp_path / "q.tsv", tmp_path / "qrels.txt"
    queries.write_text("q1\tbread oven\n")
    qrels.write_text("q1 0 d3 1\n")
    body = tmp_path / "out-.jsonl-None-body-title"
    result = run_cli("eval", "--model", str(model_dir), str(jsonl), str(queries), str(qrels), "--embeddings", str(body))
    one_error_line(result, f"--embeddings {body} was embedded with other field names (--text-field)")


def test_reuse_refuses_a_shard_copied_from_another_output(tmp_path, whole, model, model_dir, make_bert_dir):
    other_model = make_bert_dir("tiny", pooling=legacy_pooling("cls", 32))
    other = tmp_path / "other"
    resume(minibert.SentenceTransformer(other_model), other_model, whole["corpus"], other)
    out = copy_of(whole, "float32", tmp_path)
    shutil.copy(other / "part-00001.parquet", out / "part-00001.parquet")  # the same ids, another model's rows

    refused = outcome(lambda: reused(model, whole["corpus"], out))  # was: read as this model's rows
    assert "part-00001.parquet: not a shard of the job manifest.json describes" in refused
    one_error_line(run_cli("search", "--model", str(model_dir), "--corpus", str(whole["corpus"]), "--embeddings",
                           str(out), "bread"), "job key differs")  # fmt: skip
    assert resume(model, model_dir, whole["corpus"], out).embedded == 20  # the embed job redoes that shard only
    assert_same_output(out, whole["float32"])


def test_reuse_refuses_a_manifest_edited_to_match(tmp_path, whole, model):
    out = copy_of(whole, "float32", tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    edits = {
        "batch_size": lambda m: m.update(batch_size=7),  # compared through the shards' key
        "input.fields": lambda m: m["input"].update(fields="anything"),  # .tsv: ignored, but the key holds it
        "shard rows": lambda m: (m["shards"][0].update(rows=19), m["shards"][1].update(rows=21)),
        "shard order": lambda m: m["shards"].reverse(),
        "shards": lambda m: m.update(shards=[1, 2, 3]),
        "model.dimension": lambda m: m["model"].update(dimension=31),
    }
    for name, edit in edits.items():
        edited = json.loads(json.dumps(manifest))
        edit(edited)
        (out / "manifest.json").write_text(json.dumps(edited))
        assert outcome(lambda: reused(model, whole["corpus"], out)) != "ok", name


# --------------------------------------------------------------------------------------------------
# The model is its identity, not the spelling of its directory


def test_a_job_resumes_with_the_model_directory_spelled_otherwise(tmp_path, whole, model, model_dir):
    out = copy_of(whole, "float32", tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "part-00002.parquet").unlink()  # as if killed before the last shard
    (out / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    command = ["--input", str(whole["corpus"]), "--output", str(out), "--shard-size", "20", "--batch-size", "8"]

    slash = run_cli("embed", "--model", f"{model_dir}/", *command)  # was: "changed: model.name"
    assert slash.returncode == 0 and "embedded 20 rows" in slash.stderr and "40 already done" in slash.stderr
    relative = subprocess.run([str(MINIBERT), "embed", "--model", os.path.relpath(model_dir, tmp_path), *command],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)  # fmt: skip
    assert relative.returncode == 0 and "already complete" in relative.stderr, relative.stderr
    assert_same_output(out, whole["float32"])
    assert json.loads((out / "manifest.json").read_text())["model"]["name"] == f"{model_dir}/"  # kept, for people
    found = run_cli("search", "--model", f"./{os.path.relpath(model_dir)}", "--corpus", str(whole["corpus"]),
                    "--embeddings", str(out), "bread")  # fmt: skip
    assert found.returncode == 0, found.stderr


def test_outputs_keyed_with_the_model_name_are_still_this_jobs(tmp_path, whole, model, model_dir):
    """Before the name left the job's key, a shard's key hashed the manifest's job part, name included."""
    out = copy_of(whole, "float32", tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    job = ("format", "minibert_version", "model", "input", "precision", "batch_size", "shard_size",
           "normalize_embeddings")  # fmt: skip
    old_key = hashlib.sha256(json.dumps({k: manifest[k] for k in job}, sort_keys=True).encode()).hexdigest()
    for shard in out.glob("part-*.parquet"):
        table = pq.read_table(shard)
        pq.write_table(table.replace_schema_metadata({b"minibert.job": old_key.encode()}), shard)

    assert resume(model, model_dir, whole["corpus"], out).nothing_to_do
    np.testing.assert_array_equal(reused(model, whole["corpus"], out), read_output(whole["float32"])[2])


# --------------------------------------------------------------------------------------------------
# A truncated shard


def truncated(whole: dict, precision: str, name: str, cut: int, tmp_path: Path) -> Path:
    """A copy of `whole`'s output with shard `name` cut to its first `cut` bytes."""
    out = copy_of(whole, precision, tmp_path / str(cut))
    with open(out / name, "r+b") as f:
        f.truncate(cut)
    return out


@pytest.mark.parametrize(("precision", "name"), [("float32", "part-00001.parquet"), ("int8", "part-00000.parquet")])
def test_a_truncated_shard_is_refused_then_redone(tmp_path, whole, model, model_dir, precision, name):
    size = (whole[precision] / name).stat().st_size  # int8's first shard: the one the ranges are taken from
    for cut in (0, 4, 100, size // 2, size - 8, size - 1):
        out = truncated(whole, precision, name, cut, tmp_path)
        if precision == "float32":
            assert "cannot be read" in outcome(lambda: reused(model, whole["corpus"], out)), cut  # noqa: B023
        assert resume(model, model_dir, whole["corpus"], out, precision).embedded == 20, cut
        assert_same_output(out, whole[precision])


def test_a_truncated_shard_is_one_error_line(tmp_path, whole, model_dir):
    out = truncated(whole, "float32", "part-00001.parquet", 100, tmp_path)
    result = run_cli("search", "--model", str(model_dir), "--corpus", str(whole["corpus"]), "--embeddings", str(out),
                     "bread")  # fmt: skip
    one_error_line(result, "part-00001.parquet: cannot be read")


# --------------------------------------------------------------------------------------------------
# A tampered manifest


def _set(**values) -> Callable[[dict], None]:
    return lambda m: m.update(values)


def _ranges(value: Callable[[list], object], lost: str) -> Callable[[Path], None]:
    """The int8 job as if killed after losing shard `lost`, its manifest's ranges replaced by ``value(ranges)``."""

    def tamper(out: Path) -> None:
        manifest = json.loads((out / "manifest.json").read_text())
        manifest.update(status="running", ranges=value(manifest["ranges"]))
        (out / "manifest.json").write_text(json.dumps(manifest))
        (out / lost).unlink()

    return tamper


def _halved(ranges: list) -> list:
    return [[v / 2 for v in row] for row in ranges]


def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(out: Path) -> None:
        manifest = json.loads((out / "manifest.json").read_text())
        change(manifest)
        (out / "manifest.json").write_text(json.dumps(manifest))

    return tamper


def _text(make: Callable[[str], str]) -> Callable[[Path], None]:
    return lambda out: (out / "manifest.json").write_text(make((out / "manifest.json").read_text()))


REPAIRED = "repaired"  # the job runs again and its output equals the uninterrupted one
TAMPERED = {  # name: (precision, tamper, what the embed job then does: REPAIRED or a fragment of its refusal)
    "invalid JSON": ("float32", _text(lambda t: "{not json"), "not a readable minibert embed manifest"),
    "truncated to 0 bytes": ("float32", _text(lambda t: ""), "not a readable"),
    "truncated to 10%": ("float32", _text(lambda t: t[: len(t) // 10]), "not a readable"),
    "truncated to 50%": ("float32", _text(lambda t: t[: len(t) // 2]), "not a readable"),
    "truncated by 3 bytes": ("float32", _text(lambda t: t[:-3]), "not a readable"),
    "nested too deeply": ("float32", _text(lambda t: "[" * 100_000 + "]" * 100_000), "nested too deeply"),
    "a 5000-digit number": ("float32", _text(lambda t: t.replace('"rows": 60', f'"rows": {"9" * 5000}')), "readable"),
    "not an object": ("float32", _text(lambda t: "[]"), "not a minibert-embed-v1 manifest"),
    "rows: a string": ("float32", _edit(_set(rows="60")), REPAIRED),  # was: "already complete (60 rows …)"
    "rows: wrong": ("float32", _edit(_set(rows=999)), REPAIRED),
    "shards: a string": ("float32", _edit(_set(shards="all")), REPAIRED),
    "shards: numbers": ("float32", _edit(_set(shards=[1, 2, 3])), REPAIRED),
    # was: "already complete (40 rows in 2 shards)", the output short of 20 passages
    "a shard left out": ("float32", _edit(lambda m: m.update(shards=m["shards"][:2], rows=40)), REPAIRED),
    "shards reordered": ("float32", _edit(lambda m: m["shards"].reverse()), REPAIRED),
    "status: a number": ("float32", _edit(_set(status=5)), REPAIRED),
    "status: running": ("float32", _edit(_set(status="running")), REPAIRED),
    "model name": ("float32", _edit(lambda m: m["model"].update(name="somebody else's")), REPAIRED),
    "model: a list": ("float32", _edit(_set(model=[])), "changed: model"),
    "model identity": ("float32", _edit(lambda m: m["model"].update(identity="0" * 64)), "changed: model.identity"),
    "precision: a number": ("float32", _edit(_set(precision=8)), "changed: precision"),
    "shard_size": ("float32", _edit(_set(shard_size=10)), "changed: shard_size"),
    "input: null": ("float32", _edit(_set(input=None)), "changed: input"),
    "ranges: a string": ("int8", _ranges(lambda r: "abc", "part-00002.parquet"), REPAIRED),  # was: ValueError
    "ranges: a wrong shape": ("int8", _ranges(lambda r: [[1.0]], "part-00002.parquet"), REPAIRED),
    "ranges halved, last shard lost": ("int8", _ranges(_halved, "part-00002.parquet"), REPAIRED),  # was: a mixture
    "ranges halved, first shard lost": ("int8", _ranges(_halved, "part-00000.parquet"), REPAIRED),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_manifest_is_refused_or_repaired(tmp_path, whole, model, model_dir, case):
    precision, tamper, expected = TAMPERED[case]
    out = copy_of(whole, precision, tmp_path)
    tamper(out)
    before = contents(out)
    if precision == "float32":  # search / eval: the rows unchanged or an InputError; anything else fails here
        outcome(lambda: np.testing.assert_array_equal(reused(model, whole["corpus"], out),
                                                      read_output(whole["float32"])[2]))  # fmt: skip
    summaries = []
    result = outcome(lambda: summaries.append(resume(model, model_dir, whole["corpus"], out, precision)))
    if expected == REPAIRED:
        assert result == "ok", result
        assert summaries[0].rows == 60  # was, for "rows" edited: "already complete (999 rows …)"
        assert_same_output(out, whole[precision])
    else:
        assert expected in result, result
        assert contents(out) == before, "a refusal changed the output"


def test_a_tampered_manifest_is_one_error_line(tmp_path, whole, model_dir):
    out = copy_of(whole, "float32", tmp_path)
    TAMPERED["nested too deeply"][1](out)
    one_error_line(embed(model_dir, whole["corpus"], out, "--shard-size", "20", "--batch-size", "8"),
                   "nested too deeply", "--overwrite")  # fmt: skip
    _edit(lambda m: m["shards"][0].pop("rows"))(copy_of(whole, "float32", tmp_path / "entry"))
    result = run_cli("search", "--model", str(model_dir), "--corpus", str(whole["corpus"]), "--embeddings",
                     str(tmp_path / "entry" / "copy-float32"), "x")  # fmt: skip
    one_error_line(result, "shard entry 0 is not", "run the same minibert embed command again")  # was: KeyError


# --------------------------------------------------------------------------------------------------
# Two jobs on one directory


def test_a_job_is_refused_while_another_writes_the_directory(tmp_path, whole, model_dir):
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)  # what a running job holds: an exclusive flock on the directory itself
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        one_error_line(embed(model_dir, whole["corpus"], out), f"--output {out}: another minibert embed job is "
                       "writing it")  # fmt: skip
        assert os.listdir(out) == []
    finally:
        os.close(fd)
    assert embed(model_dir, whole["corpus"], out).returncode == 0  # the lock is gone with its holder


def test_two_jobs_at_once_give_one_output(tmp_path, model_dir):
    corpus = write_tsv(tmp_path / "c.tsv", passages(1500, seed=23))
    args = ["--shard-size", "100", "--batch-size", "16"]
    whole = tmp_path / "whole"
    assert embed(model_dir, corpus, whole, *args).returncode == 0
    for attempt in range(2):
        out = tmp_path / f"out-{attempt}"
        command = [str(MINIBERT), "embed", "--model", str(model_dir), "--input", str(corpus), "--output", str(out),
                   *args]  # fmt: skip
        jobs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]  # fmt: skip
        results = []
        for job in jobs:
            _, stderr = job.communicate(timeout=300)
            results.append(subprocess.CompletedProcess(command, job.returncode, "", stderr))
        embedded = [r for r in results if "embedded 1500 rows" in r.stderr]
        assert len(embedded) == 1, [r.stderr[-300:] for r in results]  # was: both, one dying at times on the other's
        (other,) = [r for r in results if r is not embedded[0]]  # removed temporary file
        if "already complete" not in other.stderr:
            one_error_line(other, "another minibert embed job is writing it")
        assert_same_output(out, whole)
