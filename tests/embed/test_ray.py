"""``minibert embed --ray`` and ``minibert.embed.ray.Embedder`` on a real local Ray (``ray.init(num_cpus=2)``): the rows
equal the single-process job's row for row (≤ 1e-6, ids intact), on every batch format Ray hands over."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

import minibert
from minibert.embed import EmbedSettings, open_input, read_output, run_embed_job
from minibert.embed.ray import Embedder, RayRunner
from minibert.retrieval.corpus import JsonFields
from minibert.testing import assert_close, legacy_pooling
from tests.helpers import MINIBERT, passages, write_tsv

# Ray clusters of their own: the Ray tests run one after another, in one pytest-xdist worker (Makefile: loadgroup).
pytestmark = pytest.mark.xdist_group("ray")



@pytest.fixture(scope="module")
def model_dir(make_bert_dir) -> Path:
    return make_bert_dir("tiny", pooling=legacy_pooling("mean", 32), normalize=True)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def single_process(model_dir, source, out, settings):
    model = minibert.SentenceTransformer(model_dir)
    run_embed_job(model, str(model_dir), source, out, settings, show_progress=False)
    return read_output(out)


def ray_job(model_dir, source, out, settings):
    """The same job through its Ray runner (two actors on the module's local Ray)."""
    model = minibert.SentenceTransformer(model_dir)
    runner = RayRunner(str(model_dir), actors=2)
    return run_embed_job(model, str(model_dir), source, out, settings, runner=runner, show_progress=False)


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "parquet"])
def test_ray_job_equals_single_process(tmp_path, model_dir, local_ray, fmt):
    rows = passages(150, seed=21)
    fields = None
    if fmt == "tsv":
        path = write_tsv(tmp_path / "c.tsv", rows)
    elif fmt == "jsonl":
        path = tmp_path / "c.jsonl"
        lines = (json.dumps({"_id": i, "title": "t", "text": text}) for i, (_, text) in enumerate(rows))
        path.write_text("".join(line + "\n" for line in lines))
    else:
        path = tmp_path / "c.parquet"
        pq.write_table(pa.table({"pid": [r[0] for r in rows], "body": [r[1] for r in rows]}), path, row_group_size=40)
        fields = JsonFields(id="pid", text="body")
    settings = EmbedSettings(batch_size=16, shard_size=60)
    single_manifest, ids, expected = single_process(model_dir, open_input(path, fields), tmp_path / "single", settings)

    summary = ray_job(model_dir, open_input(path, fields), tmp_path / "ray", settings)
    manifest, ray_ids, got = read_output(tmp_path / "ray")
    assert summary.rows == 150 and manifest["rows"] == 150 and manifest["runner"] == "ray"
    assert ray_ids == ids  # every id once, in input order
    assert_close(got, expected, atol=1e-6, what=f"Ray vs single-process rows ({fmt})")
    assert manifest["shards"] == single_manifest["shards"]  # the same files of the same rows: 60, 60, 30
    assert manifest["ray"]["actors"] == 2 and manifest["ray"]["threads_per_actor"] == 1
    assert pq.read_schema(tmp_path / "ray" / "part-00000.parquet").field("embedding").type == pa.list_(pa.float32(), 32)

    again = ray_job(model_dir, open_input(path, fields), tmp_path / "ray", settings)
    assert again.nothing_to_do


def test_ray_int8_uses_the_first_shard_ranges(tmp_path, model_dir, local_ray):
    path = write_tsv(tmp_path / "c.tsv", passages(90, seed=22))
    settings = EmbedSettings(batch_size=16, shard_size=40, precision="int8")
    single, _, expected = single_process(model_dir, open_input(path), tmp_path / "single", settings)
    ray_job(model_dir, open_input(path), tmp_path / "ray", settings)
    manifest, _, got = read_output(tmp_path / "ray")
    # the first shard's min and max of the Ray rows, which equal the local rows to 1e-6
    assert_close(np.asarray(manifest["ranges"]), np.asarray(single["ranges"]), atol=1e-6, what="int8 ranges")
    assert got.dtype == np.int8
    # float rows agree to 1e-6, so a code differs only where a value sits on a step boundary, and then by one
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("batch_format", ["pyarrow", "pandas", "numpy"])
def test_embedder_on_every_batch_format(model_dir, local_ray, batch_format):
    rows = passages(40, seed=23)
    items = [{"id": pid, "title": "" if i % 2 else "A title", "text": text} for i, (pid, text) in enumerate(rows)]
    ds = ray.data.from_items(items).map_batches(
        Embedder,
        fn_constructor_kwargs={"model": str(model_dir), "batch_size": 8, "threads": 1},
        batch_size=16,
        batch_format=batch_format,
        num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=1),
    )
    out = ds.take_all()
    model = minibert.SentenceTransformer(model_dir)
    expected = model.encode_document([f"{it['title']} {it['text']}".strip() for it in items])
    assert [row["id"] for row in out] == [pid for pid, _ in rows]
    assert_close(np.stack([np.asarray(row["embedding"]) for row in out]), expected, atol=1e-6,
                 what=f"Embedder on {batch_format} batches")  # fmt: skip


def test_embedder_refuses_rows_without_ids(model_dir, local_ray):
    ds = ray.data.from_items([{"text": "no id here"}]).map_batches(
        Embedder, fn_constructor_kwargs={"model": str(model_dir)}, compute=ray.data.ActorPoolStrategy(size=1)
    )
    with pytest.raises(Exception, match="missing id field '_id' or 'id'"):
        ds.take_all()


def test_cli_ray_bad_inputs(tmp_path, model_dir):
    txt = tmp_path / "c.txt"
    txt.write_text("a passage\n")
    no_ids = tmp_path / "c.jsonl"
    no_ids.write_text('{"text": "a passage without an id"}\n')
    tsv = write_tsv(tmp_path / "c.tsv", passages(3))
    cases = (
        (txt, [], ("plain text", "without --ray")),
        (no_ids, [], ("the Ray job failed", "missing id")),
        (tsv, ["--actors", "0"], ("--actors", "positive")),
        (tsv, ["--threads-per-actor", "0"], ("--threads-per-actor", "positive")),
    )
    for i, (corpus, extra, fragments) in enumerate(cases):
        result = subprocess.run(
            [str(MINIBERT), "embed", "--model", str(model_dir), "--input", str(corpus), "--output",
             str(tmp_path / f"out-{i}"), "--ray", *extra], capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("minibert: error: ")]
        assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
        assert all(fragment in errors[0] for fragment in fragments), errors[0]
