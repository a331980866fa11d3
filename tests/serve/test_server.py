"""`minibert serve` as a real server process on a loopback port, talked to by the official `openai` client and by
plain HTTP (httpx): embeddings equal to `model.encode`, every limit's status and body, dynamic batching under
concurrency, dropped disconnected clients, SIGTERM with requests in flight."""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

import minibert
from minibert.encoder.pooling import normalize
from minibert.testing import assert_close
from tests.helpers import MINIBERT, ROOT
from tests.serve.helpers import Server

TEXTS = ["How do I bake bread at home?", "", "Ünïcödé and 中文 text", "The seasons come from Earth's axial tilt. " * 3]
LONG = "Retrieval systems rank passages by the similarity of their embeddings to the query. " * 40  # > 256 tokens


@pytest.fixture(scope="module")
def real_model(real_model_dir):
    return minibert.SentenceTransformer(real_model_dir)


@pytest.fixture(scope="module")
def server(real_model_dir, make_bert_dir):
    """all-MiniLM-L6-v2 (normalized) first, a tiny unnormalized BERT as `dot`, small limits to reach them; token ids
    on /v1/embeddings read as the model's own (tests/serve/test_clients.py has the default, OpenAI's tiktoken ids)."""
    running = Server(
        "--model", str(real_model_dir), "--model", f"dot={make_bert_dir('tiny')}",
        "--max-client-batch-size", "40", "--payload-limit", "200000", "--openai-token-ids", "model",
    )  # fmt: skip
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


# ------------------------------------------------------------------------------ equal to model.encode


def test_openai_client_float_and_base64_equal_encode(client, real_model, real_model_dir):
    expected = real_model.encode(TEXTS)
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS, encoding_format="float")
    rows = np.array([d.embedding for d in floats.data], dtype=np.float32)
    assert [d.index for d in floats.data] == list(range(len(TEXTS)))
    assert_close(rows, expected, atol=1e-6, what="float embeddings over HTTP vs model.encode")
    packed = client.embeddings.create(model=str(real_model_dir), input=TEXTS)  # the client's default: base64
    assert np.array_equal(np.array([d.embedding for d in packed.data], dtype=np.float32), rows)  # bitwise
    tokens = sum(map(len, real_model.tokenizer.token_ids(TEXTS)))
    assert (floats.usage.prompt_tokens, floats.usage.total_tokens) == (tokens, tokens)
    assert floats.model == "all-MiniLM-L6-v2"


def test_base64_is_little_endian_float32(server, real_model):
    body = server.post("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": "x", "encoding_format": "base64"})
    row = np.frombuffer(base64.b64decode(body.json()["data"][0]["embedding"]), dtype="<f4")
    assert_close(row, real_model.encode("x"), atol=1e-6, what="base64 row")


def test_token_id_inputs_embed_like_their_text(client, real_model):
    texts = ["hello world", "token ids without special tokens"]
    ids = [seq[1:-1] for seq in real_model.tokenizer.token_ids(texts)]  # [CLS] … [SEP] stripped
    expected = real_model.encode(texts)
    many = client.embeddings.create(model="all-MiniLM-L6-v2", input=ids, encoding_format="float")
    one = client.embeddings.create(model="all-MiniLM-L6-v2", input=ids[0], encoding_format="float")
    assert_close([d.embedding for d in many.data], expected, atol=1e-6, what="lists of token ids")
    assert_close(one.data[0].embedding, expected[0], atol=1e-6, what="one list of token ids")


def test_dimensions_truncate_then_renormalize(client, real_model):
    got = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS[:2], dimensions=64, encoding_format="float")
    expected = real_model.encode(TEXTS[:2], truncate_dim=64, normalize_embeddings=True)
    assert_close([d.embedding for d in got.data], expected, atol=1e-6, what="dimensions=64")


def test_tei_normalizes_as_the_model_directory_says(server, real_model, make_bert_dir):
    dot_model = minibert.SentenceTransformer(make_bert_dir("tiny"))
    # the tiny model is the second one served: TEI's /embed uses the first (normalized) model
    first = server.post("/embed", {"inputs": TEXTS})
    assert_close(first.json(), real_model.encode(TEXTS), atol=1e-6, what="/embed, model default (normalized)")
    raw = server.post("/embed", {"inputs": TEXTS, "normalize": False}).json()
    unnormalized = real_model.embed(real_model.tokenize(TEXTS), normalize=False)
    assert_close(raw, unnormalized, atol=1e-6, what="/embed normalize=false")
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1)
    dot = server.post("/v1/embeddings", {"model": "dot", "input": TEXTS}).json()["data"]  # an unnormalized model
    assert_close([d["embedding"] for d in dot], dot_model.encode(TEXTS), atol=1e-6, what="unnormalized model")
    cut = server.post("/embed", {"inputs": TEXTS, "dimensions": 16, "normalize": True}).json()
    assert_close(cut, normalize(np.array(real_model.encode(TEXTS))[:, :16]), atol=1e-6, what="/embed dimensions")


def test_long_inputs_are_truncated_by_default(server, real_model):
    rows = server.post("/embed", {"inputs": [LONG, "short"]}).json()
    assert_close(rows, real_model.encode([LONG, "short"]), atol=1e-6, what="truncated like encode()")


# ------------------------------------------------------------------------------ the other routes


def test_info_health_models_and_metrics(server, real_model):
    info = httpx.get(f"{server.url}/info").json()
    assert (info["dimensions"], info["max_input_length"], info["normalized"]) == (384, 256, True)
    assert info["max_client_batch_size"] == 40 and info["payload_limit"] == 200000
    assert [m["name"] for m in info["models"]] == [info["model_id"], "dot"]
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    listed = httpx.get(f"{server.url}/v1/models").json()
    assert [m["id"] for m in listed["data"]] == [info["model_id"], "dot"]
    before = server.metric('minibert_requests_total{route="/embed",status="200"}')
    tokens_before = server.metric("minibert_tokens_embedded_total")
    server.post("/embed", {"inputs": ["count me"]})
    assert server.metric('minibert_requests_total{route="/embed",status="200"}') == before + 1
    assert server.metric("minibert_tokens_embedded_total") == tokens_before + len(
        real_model.tokenizer.token_ids(["count me"])[0]
    )
    text = httpx.get(f"{server.url}/metrics").text
    for name in ("minibert_request_duration_seconds_bucket", "minibert_batch_size_bucket", "minibert_batch_tokens",
                 "minibert_queue_depth", "minibert_requests_dropped_total"):  # fmt: skip
        assert name in text, name


def test_one_log_line_per_request(server):
    server.post("/embed", {"inputs": ["a", "b"]})
    time.sleep(0.2)
    lines = [line for line in server.log if "POST /embed 200 inputs=2 " in line]
    assert lines and re.search(r"INFO minibert.serve: POST /embed 200 inputs=2 tokens=6 [\d.]+ms$", lines[-1].strip())


# ------------------------------------------------------------------------------ limits and errors


ERRORS = [
    ("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": []}, 400, "input is an empty list"),
    ("/embed", {"inputs": []}, 400, "inputs is an empty list"),
    ("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": ["x"] * 41}, 413, "--max-client-batch-size 40"),
    ("/embed", {"inputs": [LONG], "truncate": False}, 413, "input 0 is longer than the model's max length of 256"),
    ("/v1/embeddings", {"model": "gpt-4", "input": "x"}, 404, "model 'gpt-4' is not served here; served: "),
    ("/v1/embeddings", {"input": "x"}, 422, "model is required"),
    ("/v1/embeddings", {"model": 3, "input": "x"}, 422, "model must be a valid string, got the number 3"),
    ("/v1/embeddings", {"model": "dot"}, 422, "input is required"),
    ("/v1/embeddings", {"model": "dot", "input": {"a": 1}}, 422, "input must be a string, a list of strings"),
    ("/v1/embeddings", {"model": "dot", "input": ["a", 3]}, 422, "input[1] must be a valid string"),
    ("/v1/embeddings", {"model": "dot", "input": [[1, 2], "a"]}, 422, "input[1] must be a valid list"),
    ("/v1/embeddings", {"model": "dot", "input": [[1, -2]]}, 422, "input[0][1] must be greater than or equal to 0"),
    ("/v1/embeddings", {"model": "dot", "input": [[1, 99999]]}, 422, "token id 99999, outside this model's vocab"),
    ("/v1/embeddings", {"model": "dot", "input": "a", "encoding_format": "int8"}, 422, "encoding_format must be"),
    ("/v1/embeddings", {"model": "dot", "input": "a", "dimensions": 0}, 422, "dimensions must be greater than"),
    ("/v1/embeddings", {"model": "dot", "input": "a", "dimensions": 33}, 422, "the model's 32, got 33"),
    ("/v1/embeddings", {"model": "dot", "input": "a", "dimensions": "8"}, 422, "dimensions must be a valid integer"),
    ("/embed", {"inputs": "a", "normalize": "yes"}, 422, "normalize must be a valid boolean"),
    ("/embed", {"inputs": "a", "truncate": 1}, 422, "truncate must be a valid boolean, got the number 1"),
    ("/embed", {"inputs": "a", "truncation_direction": "Left"}, 422, "truncation_direction must be 'Right', got"),
    ("/embed", {"input": "a"}, 422, "inputs is required"),
    ("/embed", ["a"], 422, "the body must be a JSON object"),
    # the element that is wrong is the one named, whichever of the four input shapes the first element chose
    ("/v1/embeddings", {"model": "dot", "input": [101, 2054, True]}, 422, "input[2] must be a valid integer, got true"),
    ("/embed", {"inputs": [[101], [7, None]]}, 422, "inputs[1][1] must be a valid integer, got null"),
    ("/embed", {"inputs": [["a"]]}, 422, "inputs[0][0] must be a valid integer, got the string 'a'"),
    ("/embed", {"inputs": [101, 1.5]}, 422, "inputs[1] must be a valid integer, got the number 1.5"),
    ("/embed", {"inputs": [{"a": 1}]}, 422, "inputs must be a string, a list of strings, a list of token ids or a"),
    ("/v1/embeddings", {"model": "dot", "input": "a", "user": 7}, 422, "user must be a valid string"),
    ("/embed", {"inputs": [[101]], "prompt_name": "query"}, 422, "prompt_name must be null with token-id inputs"),
    # the facade's own checks (prepare), the ones encode makes: a "\ud800" escape decodes to a lone surrogate
    ("/v1/embeddings", {"model": "dot", "input": ["fine", "\ud800"]}, 422, "input[1] contains a lone surrogate"),
    ("/embed", {"inputs": "a\udfff"}, 422, "inputs[0] contains a lone surrogate (U+DFFF at character 1)"),
]


@pytest.mark.parametrize("path, body, status, message", ERRORS, ids=[f"{e[2]}-{e[3][:30]}" for e in ERRORS])
def test_bad_requests_get_the_status_and_a_json_error_naming_the_problem(server, path, body, status, message):
    response = server.post(path, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if path.startswith("/v1/"):
        assert set(error) == {"message", "type", "param", "code"} and message in error["message"], error
    else:
        assert isinstance(error, str) and message in error and "error_type" in response.json(), response.json()


def test_body_that_is_not_json_or_over_the_payload_limit(server):
    broken = httpx.post(f"{server.url}/embed", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    big = server.post("/embed", {"inputs": ["x" * 1000] * 30, "pad": "y" * 200_000})
    assert big.status_code == 413 and "--payload-limit of 200000" in big.json()["error"]
    chunked = httpx.post(f"{server.url}/embed", content=iter([b'{"inputs": "', b"x" * 250_000, b'"}']))
    assert chunked.status_code == 413  # no Content-Length: counted while reading


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_literals_are_refused(server, literal):
    """Python's json module reads these; RFC 8259 has no such values, and a strict parser refuses them."""
    for path, body in (("/embed", f'{{"inputs": "a", "dimensions": {literal}}}'),
                       ("/v1/embeddings", f'{{"model": "dot", "input": [{literal}]}}')):  # fmt: skip
        response = httpx.post(f"{server.url}{path}", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert f"{literal.lstrip('-')} is not a JSON value" in json.dumps(response.json()), response.text


def test_a_body_that_is_not_utf8_is_refused(server):
    """Raw bytes of a lone surrogate (CESU-style ED A0 80) and a stray continuation byte: not UTF-8, so not JSON."""
    for raw in (b'{"inputs": "a\xed\xa0\x80"}', b'{"inputs": "\x80"}'):
        response = httpx.post(f"{server.url}/embed", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400 and "the body is not UTF-8" in response.json()["error"], response.text


def test_unknown_routes_and_methods_are_json_errors(server):
    assert httpx.get(f"{server.url}/nothing").status_code == 404
    wrong = httpx.get(f"{server.url}/v1/embeddings")
    assert wrong.status_code == 405 and "message" in wrong.json()["error"]
    assert wrong.headers["allow"] == "POST"  # RFC 9110: a 405 names the methods the route takes
    assert set(httpx.delete(f"{server.url}/health").headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_the_contract_is_published_as_openapi(server):
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert document["openapi"].startswith("3.1") and set(document["paths"]) >= {"/v1/embeddings", "/embed"}
    request = document["components"]["schemas"]["OpenAIEmbeddingRequest"]
    assert request["required"] == ["model", "input"] and "oneOf" in request["properties"]["input"]
    assert set(document["paths"]["/embed"]["post"]["responses"]) == {"200", "400", "413", "422", "429", "503"}
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text and "swagger-ui" in page.text


def test_a_client_that_disconnects_while_sending_its_body_is_a_499_not_a_500(server):
    def sent_statuses() -> dict[str, float]:
        text = httpx.get(f"{server.url}/metrics").text
        found = re.findall(r'minibert_requests_total\{route="/embed",status="(\d+)"\} ([\d.]+)', text)
        return {status: float(count) for status, count in found}

    before = sent_statuses()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 10000\r\n\r\n" + b'{"inputs": "' + b"x" * 100)  # fmt: skip
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while sent_statuses().get("499", 0) == before.get("499", 0):
        assert time.monotonic() < deadline, "".join(server.log)
        time.sleep(0.05)
    assert sent_statuses().get("500", 0) == before.get("500", 0)
    assert [line for line in server.log if "POST /embed 499" in line]


def test_no_500_with_a_traceback_for_any_of_the_bad_inputs(server):
    assert not [line for line in server.log if "Traceback" in line or " 500 " in line]


def test_api_key_is_required_everywhere_but_health(real_model_dir):
    keyed = Server("--model", str(real_model_dir), "--api-key", "s3cret")
    try:
        assert httpx.get(f"{keyed.url}/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            response = keyed.post("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": "x"}, headers=headers)
            assert response.status_code == 401 and "API key" in response.json()["error"]["message"]
            assert response.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{keyed.url}/metrics").status_code == 401
        good = keyed.post("/embed", {"inputs": "x"}, headers={"Authorization": "Bearer s3cret"})
        assert good.status_code == 200
        import openai

        authorized = openai.OpenAI(base_url=f"{keyed.url}/v1", api_key="s3cret", max_retries=0)
        assert len(authorized.embeddings.create(model="all-MiniLM-L6-v2", input="x").data) == 1
    finally:
        assert keyed.stop() == 0


@pytest.mark.parametrize("slow_route", ["/embed", "/embed_all"])  # /embed_all runs off the batcher, counted too
def test_too_many_requests_in_flight_get_429_with_retry_after(real_model_dir, slow_route):
    busy = Server("--model", str(real_model_dir), "--max-concurrent-requests", "1", "--max-client-batch-size", "64")
    try:
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(busy.post, slow_route, {"inputs": [LONG] * 64})
            deadline = time.monotonic() + 60
            while busy.metric("minibert_requests_in_flight") < 1:  # until the slow request is being computed
                assert time.monotonic() < deadline and not slow.done(), "the slow request never got in flight"
                time.sleep(0.01)
            refused = busy.post("/embed", {"inputs": "x"})
            assert slow.result().status_code == 200
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert "--max-concurrent-requests" in refused.json()["error"] and refused.json()["error_type"] == "Overloaded"
    finally:
        assert busy.stop() == 0


# ------------------------------------------------------------------------------ batching and lifecycle


def test_64_concurrent_requests_each_get_their_own_rows(server, real_model):
    requests = [[f"request {i} passage {j} about topic {i * 7 + j}" for j in range(i % 3 + 1)] for i in range(64)]
    expected = real_model.encode([t for texts in requests for t in texts])
    with ThreadPoolExecutor(64) as pool:
        responses = list(pool.map(lambda texts: server.post("/embed", {"inputs": texts}), requests))
    start = 0
    for texts, response in zip(requests, responses, strict=True):
        assert response.status_code == 200
        assert_close(response.json(), expected[start : start + len(texts)], atol=1e-6, what=texts[0])
        start += len(texts)
    assert server.metric("minibert_batch_size_count") < server.metric('minibert_requests_total{route="/embed"')


def test_a_request_whose_client_went_away_is_dropped_before_it_is_computed(real_model_dir):
    running = Server("--model", str(real_model_dir), "--max-client-batch-size", "64")
    try:
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(running.post, "/embed", {"inputs": [LONG] * 64})
            time.sleep(0.5)  # the batcher is busy with the slow request
            body = json.dumps({"inputs": ["never computed"]}).encode()
            host, port = running.url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(
                    b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                time.sleep(0.2)  # queued behind the slow request
            assert slow.result().status_code == 200
        deadline = time.monotonic() + 30
        while running.metric("minibert_requests_dropped_total") < 1:
            assert time.monotonic() < deadline, "".join(running.log)
            time.sleep(0.1)
        assert running.metric("minibert_tokens_embedded_total") == 64 * 256  # the dropped one was never computed
    finally:
        assert running.stop() == 0


def test_sigterm_finishes_the_requests_in_flight_and_exits_0(real_model_dir, real_model):
    running = Server("--model", str(real_model_dir))
    requests = [[f"in flight {i}: {LONG[: 200 + 37 * i]}"] * 16 for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(running.post, "/embed", {"inputs": texts}) for texts in requests]
        deadline = time.monotonic() + 60
        while running.metric("minibert_requests_in_flight") < 16:  # all 16 received, none answered yet
            assert time.monotonic() < deadline and not any(f.done() for f in futures), "".join(running.log)
            time.sleep(0.02)
        running.process.send_signal(signal.SIGTERM)
        responses = [future.result() for future in futures]
    assert running.process.wait(60) == 0
    for texts, response in zip(requests, responses, strict=True):
        assert response.status_code == 200, response.text
        assert_close(response.json(), real_model.encode(texts), atol=1e-6, what=texts[0][:20])
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.url}/health")


def test_requests_left_when_the_graceful_timeout_runs_out_get_503_in_the_api_shape(real_model_dir):
    running = Server("--model", str(real_model_dir), "--graceful-timeout", "1", "--max-client-batch-size", "64")
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(running.post, "/embed", {"inputs": [f"{i} {LONG}"] * 64}) for i in range(8)]
        deadline = time.monotonic() + 60
        while running.metric("minibert_requests_in_flight") < 8:
            assert time.monotonic() < deadline and not any(f.done() for f in futures), "".join(running.log)
            time.sleep(0.02)
        running.process.send_signal(signal.SIGTERM)
        responses = [future.result() for future in futures]
    assert running.process.wait(60) == 0
    statuses = [r.status_code for r in responses]
    assert 503 in statuses and set(statuses) <= {200, 503}, statuses  # 8 × 64 long inputs take more than 1 s
    for response in responses:
        if response.status_code == 503:
            assert response.json()["error_type"] == "Unhealthy" and "--graceful-timeout" in response.json()["error"]
    assert not [line for line in running.log if "Traceback" in line or "Internal Server Error" in line]


def test_health_is_503_until_the_models_are_loaded(real_model_dir, monkeypatch):
    """In process (Starlette's TestClient runs the lifespan): loading is held back until released."""
    from starlette.testclient import TestClient

    from minibert.serve.app import create_app
    from minibert.serve.served import ModelSpec, ServedModels
    from minibert.serve.settings import Settings

    release = threading.Event()
    models = ServedModels([ModelSpec.parse(str(real_model_dir))])
    load = models.load
    monkeypatch.setattr(models, "load", lambda: (release.wait(30), load()))
    with TestClient(create_app(models, Settings(), on_fatal=pytest.fail)) as http:
        waiting = http.get("/health")
        assert waiting.status_code == 503 and waiting.headers["retry-after"] == "1"
        assert http.post("/embed", json={"inputs": "x"}).status_code == 503
        release.set()
        deadline = time.monotonic() + 30
        while http.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert http.post("/embed", json={"inputs": "x"}).status_code == 200


# ------------------------------------------------------------------------------ the Triton backend


def test_the_server_runs_the_triton_backend(make_bert_dir):
    """`--backend triton` (here on the CPU, in Triton's interpreter; `--device cuda` on a GPU): the rows the same
    facade gives in-process, normalized or not as each request asks."""
    pytest.importorskip("triton")
    model_dir = make_bert_dir("tiny-d32", normalize=True)  # head size 32: the kernels take 16 … 128
    model = minibert.SentenceTransformer(model_dir, backend="triton", device="cpu")
    running = Server("--model", f"tiny={model_dir}", "--backend", "triton", "--device", "cpu",
                     env={"TRITON_INTERPRET": "1"})  # fmt: skip
    try:
        texts = TEXTS[:3]
        body = running.post("/v1/embeddings", {"model": "tiny", "input": texts}).json()
        rows = np.array([item["embedding"] for item in body["data"]], dtype=np.float32)
        assert_close(rows, model.encode(texts), atol=1e-6, what="Triton rows over HTTP vs encode")
        raw = np.array(running.post("/embed", {"inputs": texts, "normalize": False, "dimensions": 16}).json())
        expected = model.finish(model.embed(model.tokenize(texts), normalize=False), dimensions=16)
        assert raw.shape == (3, 16) and np.abs(np.linalg.norm(raw, axis=1) - 1).max() > 0.01
        assert_close(raw, expected, atol=1e-6, what="Triton rows before Normalize over HTTP")
    finally:
        assert running.stop() == 0
    assert not [line for line in running.log if "Traceback" in line]


# ------------------------------------------------------------------------------ the command


def _serve_fails(*args: str) -> str:
    done = subprocess.run([str(MINIBERT), "serve", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_serve_command_errors_are_one_line(tmp_path, real_model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stderr = _serve_fails("--model", str(real_model_dir), "--port", str(port))
    assert stderr.strip() == f"minibert: error: cannot listen on 127.0.0.1:{port} (Address already in use)"
    assert _serve_fails("--max-batch-tokens", "0").startswith("minibert: error: --max-batch-tokens must be a positive")
    assert _serve_fails("--api-key", "").startswith("minibert: error: --api-key is empty")
    assert _serve_fails("--api-key", " key ").startswith("minibert: error: --api-key starts or ends with whitespace")
    assert _serve_fails("--graceful-timeout", "-5").startswith("minibert: error: --graceful-timeout must be 0 or more")
    twice = _serve_fails("--port", "0", "--model", f"a={real_model_dir}", "--model", "a=all-MiniLM-L6-v2")
    assert twice.strip() == (f"minibert: error: --model {real_model_dir} and --model all-MiniLM-L6-v2 both answer "
                             "to 'a'; serve each model once, under its own ALIAS=")  # fmt: skip
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    stderr = _serve_fails("--port", "0", "--model", str(broken))
    assert stderr.strip().splitlines()[-1].startswith("minibert: error: cannot load a model: ")


def test_a_server_reachable_from_other_machines_without_a_key_says_so(make_bert_dir):
    running = Server("--host", "0.0.0.0", "--model", str(make_bert_dir("tiny")))
    try:
        warnings = [line for line in running.log if line.startswith("minibert: WARNING: listening on 0.0.0.0")]
        assert warnings and "WITHOUT an API key" in warnings[0], running.log
    finally:
        assert running.stop() == 0


def test_cli_imports_no_server_dependency_until_it_serves():
    heavy = "('starlette', 'uvicorn', 'prometheus_client', 'pydantic')"
    code = f"import sys, minibert.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
    help_text = subprocess.run([str(MINIBERT), "serve", "--help"], capture_output=True, text=True).stdout
    for option in ("--max-batch-tokens", "--max-client-batch-size", "--max-concurrent-requests", "--payload-limit",
                   "--api-key", "--host", "--port"):  # fmt: skip
        assert option in help_text, option


def test_load_benchmark_smoke_run(make_bert_dir, tmp_path):
    """benchmarks/serve_load.py --smoke: every code path of the load benchmark, on the tiny model."""
    csv = tmp_path / "serve.csv"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), "--smoke", "--model", str(make_bert_dir("tiny")),
         "--csv", str(csv)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^\| \(a\) 32 clients × 1 passage \| [\d.]+ .*\| 0 \|$", done.stdout, re.M), done.stdout
    assert re.search(r"^cold start \(spawn → /health 200\): [\d.]+ s", done.stdout, re.M)
    assert "server exit status after SIGTERM: 0" in done.stdout
    assert len(csv.read_text().splitlines()) == 1 + 3


def test_texts_get_the_models_prompt_as_encode_gives_it(make_bert_dir, tmp_path):
    """A model with prompts and a default one: /embed embeds as encode() does (default prompt), TEI's prompt_name as
    encode(prompt_name=...); an unknown prompt_name is a 422 naming the field."""
    import shutil

    model_dir = tmp_path / "prompted"
    shutil.copytree(make_bert_dir("tiny"), model_dir)
    (model_dir / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": "document"})
    )
    model = minibert.SentenceTransformer(model_dir)
    running = Server("--model", str(model_dir))
    try:
        assert_close(running.post("/embed", {"inputs": TEXTS}).json(), model.encode(TEXTS), atol=1e-6, what="default")
        query = running.post("/embed", {"inputs": TEXTS, "prompt_name": "query"}).json()
        assert_close(query, model.encode_query(TEXTS), atol=1e-6, what="prompt_name=query")
        openai_rows = running.post("/v1/embeddings", {"model": "prompted", "input": TEXTS}).json()["data"]
        assert_close([r["embedding"] for r in openai_rows], model.encode(TEXTS), atol=1e-6, what="OpenAI route")
        bad = running.post("/embed", {"inputs": "x", "prompt_name": "title"})
        assert bad.status_code == 422 and "prompt_name 'title'" in bad.json()["error"]
    finally:
        assert running.stop() == 0
