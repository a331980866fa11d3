"""One model shared by threads gives the results one thread gives; memory stays flat over many encodes.

The memory checks run in a fresh process (so pytest's own allocations do not count) on the tiny random-init
BERT: what could leak — tokenizer encodings, per-call buffers, thread pools, the BLAS thread-count switch — is
the same code whatever the model's size, and the tiny model gets through 20 000 passages in seconds.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading

import numpy as np
import pytest

import minibert
from tests.helpers import ROOT

THREADS = 8


@pytest.fixture(scope="module")
def model(real_model_dir):
    return minibert.SentenceTransformer(real_model_dir)


def _passages(count: int, seed: int = 0) -> list[str]:
    """Distinct passages of 5-120 words drawn from the example corpus's vocabulary."""
    words = (ROOT / "examples" / "corpus.txt").read_text(encoding="utf-8").split()
    rng = random.Random(seed)
    return [f"{i}: " + " ".join(rng.choices(words, k=rng.randint(5, 120))) for i in range(count)]


def test_eight_threads_on_one_model_match_one_thread(model):
    texts = _passages(96, seed=1)
    jobs = [texts[i::3] for i in range(3)] + [texts, texts[:7], texts[40:41], texts[::-1], texts[10:60]]
    assert len(jobs) == THREADS
    expected = [model.encode(job, batch_size=16) for job in jobs]

    results: list[np.ndarray | BaseException | None] = [None] * THREADS
    barrier = threading.Barrier(THREADS)

    def work(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(2):
                results[i] = model.encode(jobs[i], batch_size=16)
        except BaseException as exc:  # handed to the test thread
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish (deadlock?)"
    for i, (got, want) in enumerate(zip(results, expected, strict=True)):
        assert not isinstance(got, BaseException), f"thread {i} raised {got!r}"
        assert np.array_equal(got, want), f"thread {i}: max |Δ| {np.abs(got - want).max():.3g} vs one thread"


def test_short_queries_under_load_match_queries_alone(model):
    """One query runs on BLAS threads over every core, a batch on one BLAS thread per group: whatever runs beside
    it, each query's embedding is the one it gets alone, bit for bit."""
    words = (ROOT / "examples" / "corpus.txt").read_text(encoding="utf-8").split()
    rng = random.Random(5)
    queries = [" ".join(rng.choices(words, k=rng.randint(2, 8))) for _ in range(24)]
    batches = [_passages(32, seed=s) for s in range(2)]
    alone = [model.encode(q) for q in queries]
    batched = [model.encode(b, batch_size=32) for b in batches]

    got: dict[str, object] = {}

    def ask(name: str, work) -> None:
        try:
            got[name] = work()
        except BaseException as exc:  # handed to the test thread
            got[name] = exc

    jobs = {f"queries{i}": (lambda i=i: [model.encode(q) for q in queries[i::3]]) for i in range(3)}
    jobs |= {f"batch{i}": (lambda i=i: model.encode(batches[i], batch_size=32)) for i in range(2)}
    threads = [threading.Thread(target=ask, args=item) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish (deadlock?)"
    for i in range(3):
        assert not isinstance(got[f"queries{i}"], BaseException), got[f"queries{i}"]
        for q, row in zip(queries[i::3], got[f"queries{i}"], strict=True):
            assert np.array_equal(row, alone[queries.index(q)]), f"query {q!r} under load differs from alone"
    for i in range(2):
        assert np.array_equal(got[f"batch{i}"], batched[i]), f"batch {i} under load differs from alone"


_MEMORY_CHILD = r"""
import json, sys
import minibert

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

model_dir, texts_path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = json.load(open(texts_path, encoding="utf-8"))
model = minibert.SentenceTransformer(model_dir)
after = []
for _ in range(rounds):
    for start in range(0, len(texts), 1000):
        model.encode(texts[start : start + 1000], batch_size=32)
        after.append(rss_mb())
print(json.dumps(after))
"""


def _run_child(code: str, *args: object):
    """Run `code` in a fresh Python with `args`; the JSON on its last stdout line."""
    # glibc gives each thread an arena, up to 8 per core: pinning the count keeps the allocator's noise the same on a
    # 2-core and a 64-core machine (a leak grows RSS with any arena count)
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rss_trace(model_dir, texts: list[str], tmp_path, rounds: int = 1) -> list[float]:
    texts_path = tmp_path / "texts.json"
    texts_path.write_text(json.dumps(texts), encoding="utf-8")
    return _run_child(_MEMORY_CHILD, model_dir, texts_path, rounds)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_rss_stays_flat_over_twenty_thousand_passages(make_bert_dir, tmp_path):
    """20 encodes of 1 000 distinct passages each: after the first few calls (allocator warm-up), RSS may move
    by allocator noise, not grow with the passages encoded. Measured on the development machine: 0.3 MB of
    movement without a leak, 8 MB with an injected leak of a 100-item list per passage; the bound is 5 MB."""
    trace = _rss_trace(make_bert_dir("tiny"), _passages(20_000), tmp_path)
    settled = trace[4]
    growth = max(trace[5:]) - settled
    assert growth < 5, f"RSS grew by {growth:.1f} MB after the 5th of 20 encodes: {[round(r) for r in trace]}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_one_hundred_thousand_short_strings_in_one_call_stay_bounded(make_bert_dir, tmp_path):
    """encode() of 100 000 short strings runs batch by batch: peak RSS above the loaded model is the inputs and
    the [n, d] output, not 100 000 tokenized encodings or padded batches held at once."""
    code = r"""
import json, random, sys
import numpy as np
import minibert

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

model = minibert.SentenceTransformer(sys.argv[1])
model.encode(["warm up"] * 64)
rng = random.Random(0)
texts = [f"{i} {rng.choice(['short', 'tiny', 'brief'])} text" for i in range(100_000)]
before = hwm_mb()
out = model.encode(texts, batch_size=64)
print(json.dumps({"before": before, "after": hwm_mb(), "out_mb": out.nbytes / 2**20, "shape": out.shape,
                  "finite": bool(np.isfinite(out).all())}))
"""
    result = _run_child(code, make_bert_dir("tiny"))
    assert result["shape"] == [100_000, 32] and result["finite"]
    # the output itself is 12 MB here; 100 000 held encodings would be hundreds of MB
    grown = result["after"] - result["before"]
    assert grown < result["out_mb"] + 60, f"peak RSS grew {grown:.0f} MB for a {result['out_mb']:.0f} MB output"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_weights_are_one_read_only_mapping_of_the_file(real_model_dir):
    """float32 tensors are read-only views of one memory map of model.safetensors (pages shared with the page
    cache and other processes); Q, K, V are fused into a private copy; encode() maps or reads nothing more."""
    code = r"""
import json, os, sys
import minibert

path = os.path.realpath(os.path.join(sys.argv[1], "model.safetensors"))
def mappings():
    return sum(line.rstrip().endswith(path) for line in open("/proc/self/maps"))

model = minibert.SentenceTransformer(sys.argv[1])
after_load = mappings()
for _ in range(3):
    model.encode(["a passage to embed", "and another one"] * 20)
w, layer = model.weights, model.weights.layers[0]
in_place = [w.word_embeddings, w.position_embeddings, layer.intermediate_weight, layer.output_weight,
            layer.attention_output_weight, layer.output_bias, layer.output_layernorm_weight]
print(json.dumps({"after_load": after_load, "after_encodes": mappings(),
                  "in_place_writeable": [a.flags.writeable for a in in_place],
                  "qkv_writeable": layer.qkv_weight.flags.writeable}))
"""
    result = _run_child(code, real_model_dir)
    assert result["after_load"] == result["after_encodes"] == 1, result
    assert result["in_place_writeable"] == [False] * 7, "in-place float32 tensors must be views of the read-only map"
    assert result["qkv_writeable"] is True
