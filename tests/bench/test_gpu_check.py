"""benchmarks/gpu_check.py (`make gpu-check`): its --smoke run passes every section in the interpreter, and its time
budgets stop a section without losing the report.

The GPU run itself needs a GPU; these tests keep the script from rotting between device sessions: --prepare fills
an assets folder from the real all-MiniLM-L6-v2 (as the Makefile's preparation step does), then --smoke runs every
section — kernels, forward, cross-encoders, attention, pooling, LayerNorm/GELU, end to end, each with its CSV — on tiny
shapes with TRITON_INTERPRET=1, and the summary names every section and every row the CSVs hold.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
DTYPES = ("float32", "float16", "bfloat16")
SECTIONS = ["kernels", "forward", "cross_encoder", "attention", "pooling", "layernorm_gelu", "e2e"]


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRITON_INTERPRET": "1", "OUT": ""}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def read_csv(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, real_model_dir):
    base = tmp_path_factory.mktemp("gpu-check")
    assets, out = base / "assets", base / "out"
    prepared = run("--prepare", "--assets", str(assets), "--tokenizer-dir", str(real_model_dir))
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    start = time.monotonic()
    result = run("--smoke", "--assets", str(assets), "--out", str(out))
    return result, assets, out, time.monotonic() - start


def test_prepare_fills_the_assets_folder(smoke_run):
    _, assets, _, _ = smoke_run
    for tokenizer in ("bert", "distilbert", "mpnet"):
        for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            assert (assets / "tokenizers" / tokenizer / name).is_file(), (tokenizer, name)
    manifest = (assets / "manifest.json").read_text()
    assert all(name in manifest for name in ("bert-minilm-l6", "bert-bert-base", "distilbert-distilbert-base"))
    # the passages: MS MARCO beside a checkout, else minibert bench's fallback corpus (a clone elsewhere)
    assert "mpnet-mpnet-base" in manifest and (assets / json.loads(manifest)["corpus"]).is_file()
    cross_encoders = json.loads(manifest)["cross_encoders"]
    assert [(m["name"], m["labels"]) for m in cross_encoders["real"]] == [
        ("bert-minilm-l6", 1),
        ("electra-electra-base", 1),
        ("electra-electra-small", 3),
    ]
    for model in cross_encoders["smoke"]:  # the attention kernel's head sizes (16 … 128) in the interpreter too
        config = model["config"]
        assert 16 <= config["hidden_size"] // config["num_attention_heads"] <= 128, model
    electra = [m["config"] for m in cross_encoders["smoke"] if m["type"] == "electra"]
    assert electra and all(c["embedding_size"] != c["hidden_size"] for c in electra)  # with embeddings_project
    size = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file())
    assert size < 16 * 2**20, f"the carried folder must stay small, got {size / 2**20:.1f} MiB"


def test_smoke_run_passes_every_section(smoke_run):
    result, _, out, seconds = smoke_run
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    summary = (out / "summary.md").read_text()
    assert result.stdout.rstrip().endswith(summary.rstrip()), "the summary is printed last"
    assert "**Correctness: PASS**" in summary
    for section in SECTIONS:
        assert f"| {section} | ok |" in summary, section
    for heading in ("## 1. Kernels", "## 2. Forward", "## 3. Cross-encoder", "## 4. Attention", "## 5. Mean pooling"):
        assert heading in summary
    assert "## 6. LayerNorm" in summary and "## 7. End to end" in summary
    print(f"gpu_check --smoke: {seconds:.0f} s")


def test_smoke_csvs_hold_every_case(smoke_run):
    _, _, out, _ = smoke_run
    kernels = read_csv(out / "kernels.csv")
    assert {r["kernel"] for r in kernels} == {"attention", "pooling", "layer_norm", "gelu"}
    assert {r["dtype"] for r in kernels} == {"float32", "float16", "bfloat16"}
    assert all(r["status"] == "ok" and r["not_finite"] == "0" for r in kernels)
    assert all(float(r["worst_err_over_bound"]) <= 1 for r in kernels)

    forward = read_csv(out / "forward.csv")
    assert {(r["arch"], r["dtype"]) for r in forward} == {
        (arch, dtype) for arch in ("bert", "distilbert", "mpnet") for dtype in DTYPES
    }
    assert {r["pooling"] for r in forward} == {"mean", "cls"}
    for r in forward:
        assert r["status"] == "ok" and float(r["max_abs_err"]) <= float(r["bound"]), r
        if r["dtype"] == "float32":
            assert float(r["bound"]) == 1e-5 and r["reference_own_err"] == ""
        else:  # 3 × sentence-transformers' own error in that dtype
            assert float(r["bound"]) == pytest.approx(3 * float(r["reference_own_err"]), rel=1e-2)

    cross = read_csv(out / "cross_encoder.csv")
    parity = [r for r in cross if r["check"] == "parity"]
    assert {(r["arch"], r["labels"], r["dtype"]) for r in parity} == {
        (arch, labels, dtype) for arch, labels in (("bert", "1"), ("electra", "3")) for dtype in DTYPES
    }
    for r in parity:
        assert r["status"] == "ok" and float(r["max_abs_err"]) <= float(r["bound"]), r
        # two reranking lists and a long query; fp16 / bf16 may swap near-ties, so only float32 must rank the same
        if r["labels"] != "1":
            assert r["rankings_same"] == "", r
        else:
            assert r["rankings_same"] == "3/3" if r["dtype"] == "float32" else r["rankings_same"].endswith("/3"), r
        if r["dtype"] == "float32":
            assert float(r["bound"]) == 1e-5 and r["reference_own_err"] == ""
        else:
            assert float(r["bound"]) == pytest.approx(3 * float(r["reference_own_err"]), rel=1e-2)
    speed = [r for r in cross if r["check"] == "speed"]
    assert [(r["contender"], r["dtype"]) for r in speed] == [
        ("sentence-transformers", "float16"),
        ("minibert triton", "float16"),
        ("minibert triton", "bfloat16"),
    ]
    assert all(float(r["pairs_per_s"]) > 0 and float(r["rerank_ms_p50"]) > 0 for r in speed)

    attention = read_csv(out / "attention.csv")
    contenders = {r["contender"] for r in attention}
    assert {"minibert", "torch-varlen", "sdpa-math"} <= contenders
    assert {r["dtype"] for r in attention} == {"float16", "bfloat16"}
    assert {r["head_dim"] for r in attention} == {"32", "64"}
    assert all(float(r["tflops"]) > 0 for r in attention if r["contender"] == "minibert")

    pooling = read_csv(out / "pooling.csv")
    assert {r["contender"].split(":")[0] for r in pooling} == {"triton", "torch"}

    norm_act = read_csv(out / "layernorm_gelu.csv")
    assert {(r["op"], r["contender"]) for r in norm_act} == {
        (op, who) for op in ("layernorm", "bias_gelu") for who in ("minibert", "torch")
    }
    assert all(float(r["gb_per_s"]) > 0 for r in norm_act)

    e2e = read_csv(out / "e2e.csv")
    assert {r["batch_size"] for r in e2e} == {"2", "4"}
    assert {r["encoder"] for r in e2e} == {"sentence-transformers fp32", "minibert triton float32"}
    assert all(float(r["docs_per_s"]) > 0 for r in e2e)


def test_without_assets_it_says_how_to_prepare(tmp_path):
    result = run("--smoke", "--assets", str(tmp_path / "missing"), "--out", str(tmp_path / "out"), timeout=120)
    assert result.returncode == 1
    assert "--prepare" in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check

    return gpu_check


def test_a_section_out_of_time_is_stopped_and_the_next_skipped_near_the_deadline(gpu_check, tmp_path):
    """The budget is an alarm: a section past it stops with its failures kept; with under 5 s left before the
    run's deadline, the next section does not start; a crash is recorded as a failure, not raised."""

    def slow(section):
        section.fail("a check failed before the time ran out")
        while True:
            time.sleep(0.01)

    stopped = gpu_check.run_section(gpu_check.Section("slow", 0.2), slow, deadline=None)
    assert stopped.status == "stopped (time budget), FAILED" and 0.15 < stopped.wall_s < 2
    assert stopped.failures == ["a check failed before the time ran out"]

    skipped = gpu_check.run_section(gpu_check.Section("next", 60), slow, deadline=time.monotonic() + 4)
    assert skipped.status == "skipped (time budget)" and skipped.wall_s == 0

    def crash(section):
        raise RuntimeError("CUDA error: an illegal memory access")

    log = tmp_path / "errors.log"
    crashed = gpu_check.run_section(gpu_check.Section("crash", 60), crash, time.monotonic() + 60, errors_log=log)
    assert crashed.status == "error" and "illegal memory access" in crashed.failures[0]
    assert "Traceback" in log.read_text() and "in crash" in log.read_text()

    def fine(section):
        section.notes.append("done")

    ok = gpu_check.run_section(gpu_check.Section("fine", None), fine, deadline=None)
    assert ok.status == "ok" and ok.notes == ["done"]


def test_the_section_budgets_fit_in_eight_minutes(gpu_check):
    assert set(gpu_check.BUDGETS_S) == set(SECTIONS) == set(gpu_check.SECTIONS)
    assert sum(gpu_check.BUDGETS_S.values()) <= gpu_check.TOTAL_BUDGET_S <= 8 * 60 - 20
