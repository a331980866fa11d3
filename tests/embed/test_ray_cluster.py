"""``minibert embed --ray ADDRESS`` across node boundaries: a two-node Ray cluster on loopback (``ray start --head``
and ``ray start --address`` as separate processes, one CPU each), two one-CPU actors — one per node, as neither node
can hold both — and the rows equal the single-process job's."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from minibert.embed import read_output
from minibert.testing import assert_close, legacy_pooling
from tests.helpers import passages, write_tsv

# Ray clusters of their own: the Ray tests run one after another, in one pytest-xdist worker (Makefile: loadgroup).
pytestmark = pytest.mark.xdist_group("ray")

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """The address of a head node and a worker node, each with 1 CPU, started as separate processes."""
    ray_cli = str(BIN / "ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    address = f"127.0.0.1:{port}"
    started = []
    try:
        for args in (["--head", f"--port={port}", "--include-dashboard=false"], [f"--address={address}"]):
            result = subprocess.run([ray_cli, "start", *args, "--num-cpus=1"], env=env, capture_output=True, text=True,
                                    timeout=180)  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            started.append(args)
        yield address, env
    finally:
        if started:
            subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(tmp_path_factory.getbasetemp() / "ray", ignore_errors=True)


def test_job_crosses_node_boundaries(tmp_path, make_bert_dir, two_nodes):
    address, env = two_nodes
    model_dir = make_bert_dir("tiny", pooling=legacy_pooling("mean", 32), normalize=True)
    corpus = write_tsv(tmp_path / "c.tsv", passages(200, seed=31))
    common = ["embed", "--model", str(model_dir), "--input", str(corpus), "--shard-size", "80", "--batch-size", "16"]

    single = subprocess.run([str(BIN / "minibert"), *common, "--output", str(tmp_path / "single")], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert single.returncode == 0, single.stderr
    cluster = subprocess.run(
        [str(BIN / "minibert"), *common, "--output", str(tmp_path / "ray"), "--ray", address, "--actors", "2",
         "--threads-per-actor", "1"], env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert cluster.returncode == 0, cluster.stderr

    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    # two alive nodes of one CPU each, and a fixed pool of two one-CPU actors: one actor ran on each node
    assert manifest["ray"] == {"actors": 2, "threads_per_actor": 1, "nodes": 2, "cpus": 2}
    _, ids, rows = read_output(tmp_path / "ray")
    _, single_ids, single_rows = read_output(tmp_path / "single")
    assert ids == single_ids and len(set(ids)) == 200
    assert_close(rows, single_rows, atol=1e-6, what="two-node Ray vs single process")
