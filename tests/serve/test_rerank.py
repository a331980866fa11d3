"""`minibert serve` with cross-encoders: TEI's `POST /rerank` and Cohere's / Jina's `POST /v1/rerank` on a real server
process, talked to by plain HTTP (httpx) and Cohere's own client: scores equal to `minibert.CrossEncoder`'s predict
and rank (≤ 1e-6), TEI's sigmoid-unless-raw_scores rule, the model's own activation on /v1/rerank, the ordering,
top_n, the documents returned, the bad inputs (each a 4xx in its route's shape), a route asked of the other kind of
model, --max-client-rerank-documents, /info and /v1/models, and pairs batched across requests beside embeddings."""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

import minibert
from minibert.encoder.activations import sigmoid
from minibert.testing import ACTIVATION_IDENTITY, assert_close
from tests.helpers import MINIBERT
from tests.serve.helpers import Server

QUERY = "how do the seasons come about"
DOCUMENTS = [
    "The seasons come from the tilt of Earth's axis relative to its orbit. " * 3,
    "Bread rises because yeast ferments sugars into carbon dioxide.",
    "",  # scored, as sentence-transformers scores it
    "Ünïcödé, 中文 and emoji 🌍 in one passage about the axial tilt",
    "seasons " * 600,  # past the max length: truncated, longest part first
    "   ",
    "Bread rises because yeast ferments sugars into carbon dioxide.",  # a duplicate: a tie, kept in input order
    "x",
]
LIMIT = 20  # --max-client-rerank-documents
ATOL = 1e-6


@pytest.fixture(scope="module")
def msmarco_dir(make_cross_encoder_dir):
    """ms-marco-MiniLM-L6-v2's shape with its Identity activation (raw logits), random-init."""
    return make_cross_encoder_dir("bert", "minilm-l6", activation=ACTIVATION_IDENTITY)


@pytest.fixture(scope="module")
def sigmoid_dir(make_cross_encoder_dir):
    """A one-label cross-encoder without a declared activation: sentence-transformers' default, Sigmoid."""
    return make_cross_encoder_dir("bert", "tiny")


@pytest.fixture(scope="module")
def msmarco(msmarco_dir):
    return minibert.CrossEncoder(msmarco_dir)


@pytest.fixture(scope="module")
def server(msmarco_dir, sigmoid_dir, make_bert_dir):
    """Two rerankers (the first is TEI's) and an embedding model, in that order; a small document limit."""
    embed_dir = make_bert_dir("tiny")
    running = Server(
        "--model", f"msmarco={msmarco_dir}", "--model", f"sig={sigmoid_dir}", "--model", f"embed={embed_dir}",
        "--max-client-rerank-documents", str(LIMIT), "--max-client-batch-size", "8",
    )  # fmt: skip
    yield running
    assert running.stop() == 0
    assert not [line for line in running.log if "Traceback" in line or " 500 " in line]


def _in_order(scores: dict[int, float], indices: list[int]) -> None:
    """`indices` are by score, best first, equal scores in input order."""
    assert indices == sorted(indices, key=lambda i: (-scores[i], i)), (indices, scores)


def _check_ranking(got: list[tuple[int, float]], expected: np.ndarray, what: str) -> None:
    """`got` ((index, score) best first) holds each document once with its expected score, sorted as rank() sorts."""
    indices = [i for i, _ in got]
    assert sorted(indices) == list(range(len(expected))), indices
    assert_close([score for _, score in got], expected[indices], atol=ATOL, what=f"{what}: scores by index")
    assert_close([score for _, score in got], np.sort(expected)[::-1], atol=ATOL, what=f"{what}: sorted scores")
    _in_order(dict(got), indices)


# ------------------------------------------------------------------------------ equal to CrossEncoder


def test_tei_rerank_is_the_sigmoid_of_the_logits_unless_raw_scores(server, msmarco):
    """TEI's rule, whatever the model's own activation (here Identity, as the ms-marco models'): the sigmoid by
    default, the logits themselves with raw_scores."""
    pairs = [(QUERY, document) for document in DOCUMENTS]
    logits = msmarco.predict(pairs)  # the model's own activation: Identity
    assert_close(logits, msmarco.predict(pairs, activation_fn=lambda x: x), atol=0, what="identity model")
    default = server.post("/rerank", {"query": QUERY, "texts": DOCUMENTS})
    assert default.status_code == 200, default.text
    _check_ranking([(r["index"], r["score"]) for r in default.json()], sigmoid(logits), "/rerank")
    assert all(set(r) == {"index", "score"} for r in default.json())  # no text unless asked
    raw = server.post("/rerank", {"query": QUERY, "texts": DOCUMENTS, "raw_scores": True, "return_text": True}).json()
    _check_ranking([(r["index"], r["score"]) for r in raw], logits, "/rerank raw_scores")
    assert all(r["text"] == DOCUMENTS[r["index"]] for r in raw)
    assert np.ptp(logits) > 1e-3 and not np.allclose(sigmoid(logits), logits, atol=0.1)  # the two can be told apart


def test_v1_rerank_equals_rank_with_the_models_own_activation(server, msmarco):
    documents = [DOCUMENTS[0], {"text": DOCUMENTS[1], "title": "ignored"}, *DOCUMENTS[2:]]  # Cohere's objects too
    response = server.post("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": documents})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = msmarco.rank(QUERY, DOCUMENTS)
    scores = np.empty(len(DOCUMENTS), dtype=np.float32)
    scores[[r["corpus_id"] for r in expected]] = [r["score"] for r in expected]
    _check_ranking([(r["index"], r["relevance_score"]) for r in body["results"]], scores, "/v1/rerank")
    assert all(set(r) == {"index", "relevance_score"} for r in body["results"])  # no document unless asked
    tokens = sum(map(len, msmarco.tokenizer.pair_tokens([QUERY] * len(DOCUMENTS), DOCUMENTS).input_ids))
    assert body["model"] == "msmarco" and body["id"].startswith("rerank-")
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert body["meta"] == {"tokens": {"input_tokens": tokens, "output_tokens": 0}}


def test_v1_rerank_of_a_sigmoid_model_and_tei_raw_scores_agree_with_predict(server, sigmoid_dir):
    model = minibert.CrossEncoder(sigmoid_dir)
    pairs = [(QUERY, document) for document in DOCUMENTS]
    body = server.post("/v1/rerank", {"model": "sig", "query": QUERY, "documents": DOCUMENTS}).json()
    _check_ranking([(r["index"], r["relevance_score"]) for r in body["results"]], model.predict(pairs), "sigmoid model")
    assert all(0 < r["relevance_score"] < 1 for r in body["results"])


def test_top_n_and_return_documents(server, msmarco):
    expected = msmarco.rank(QUERY, DOCUMENTS, return_documents=True)
    top = server.post("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": DOCUMENTS, "top_n": 3,
                                     "return_documents": True}).json()["results"]  # fmt: skip
    assert len(top) == 3
    assert_close([r["relevance_score"] for r in top], [r["score"] for r in expected[:3]], atol=ATOL, what="top 3")
    assert all(r["document"] == {"text": DOCUMENTS[r["index"]]} for r in top)
    everything = server.post("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": DOCUMENTS, "top_n": 99})
    assert len(everything.json()["results"]) == len(DOCUMENTS)  # more than were sent: all
    whole = server.post("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": DOCUMENTS, "top_n": 3.0})
    assert len(whole.json()["results"]) == 3  # JSON's 3.0 is the integer 3


def test_empty_query_and_long_pairs_are_scored_as_the_library_scores_them(server, msmarco):
    empty = server.post("/rerank", {"query": "", "texts": DOCUMENTS[:3], "raw_scores": True}).json()
    _check_ranking([(r["index"], r["score"]) for r in empty], msmarco.predict([("", d) for d in DOCUMENTS[:3]]), "''")
    long_query = "seasons and tilt " * 400
    cut = server.post("/rerank", {"query": long_query, "texts": DOCUMENTS[3:5], "raw_scores": True}).json()
    expected = msmarco.predict([(long_query, d) for d in DOCUMENTS[3:5]])  # truncated longest_first, as predict
    _check_ranking([(r["index"], r["score"]) for r in cut], expected, "truncated pairs")


def test_cohere_client_reranks_against_the_server(server, msmarco):
    cohere = pytest.importorskip("cohere")
    client = cohere.Client(api_key="unused", base_url=server.url, timeout=60, max_retries=0)
    response = client.rerank(model="msmarco", query=QUERY, documents=DOCUMENTS, top_n=4, return_documents=True)
    expected = msmarco.rank(QUERY, DOCUMENTS)[:4]
    assert len(response.results) == 4
    assert_close([r.relevance_score for r in response.results], [r["score"] for r in expected], atol=ATOL,
                 what="Cohere's client")  # fmt: skip
    assert [r.document.text for r in response.results] == [DOCUMENTS[r.index] for r in response.results]
    assert response.id and response.meta.tokens.input_tokens > 0
    with pytest.raises(cohere.errors.NotFoundError) as refused:
        client.rerank(model="embed", query=QUERY, documents=["a"])
    assert "is an embedding model" in str(refused.value.body)


# ------------------------------------------------------------------------------ errors


ERRORS = [
    ("/rerank", {"query": QUERY, "texts": []}, 400, "texts is an empty list; send at least one document"),
    ("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": []}, 400, "documents is an empty list"),
    ("/rerank", {"query": QUERY, "texts": ["a"] * (LIMIT + 1)}, 413,
     f"texts holds {LIMIT + 1} documents, more than this server's --max-client-rerank-documents {LIMIT}"),
    ("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": ["a"] * (LIMIT + 1)}, 413,
     f"--max-client-rerank-documents {LIMIT}"),
    ("/rerank", {"query": QUERY, "texts": ["a", DOCUMENTS[4]], "truncate": False}, 413,
     "the query with texts[1] is longer than the model's max length of 512 tokens (1 pair(s) are)"),
    ("/rerank", {"texts": ["a"]}, 422, "query is required"),
    ("/rerank", {"query": QUERY}, 422, "texts is required"),
    ("/rerank", {"query": 3, "texts": ["a"]}, 422, "query must be a valid string, got the number 3"),
    ("/rerank", {"query": QUERY, "texts": "a"}, 422, "texts must be a valid list, got the string 'a'"),
    ("/rerank", {"query": QUERY, "texts": ["a", "b", 3]}, 422, "texts[2] must be a valid string, got the number 3"),
    ("/rerank", {"query": QUERY, "texts": ["a"], "raw_scores": "yes"}, 422, "raw_scores must be a valid boolean"),
    ("/rerank", {"query": QUERY, "texts": ["a"], "return_text": 1}, 422, "return_text must be a valid boolean"),
    ("/rerank", {"query": QUERY, "texts": ["a"], "truncate": None, "raw_scores": None}, 200, ""),  # null: default
    ("/rerank", [QUERY, "a"], 422, "the body must be a JSON object"),
    ("/v1/rerank", {"query": QUERY, "documents": ["a"]}, 422, "model is required"),
    ("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": ["a", None]}, 422,
     'documents[1] must be a string or an object {"text": string}, got null'),
    ("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": [{"text": 3}]}, 422,
     "documents[0].text must be a valid string, got the number 3"),
    ("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": ["a", {"title": "t"}]}, 422,
     "documents[1].text is required"),
    ("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": ["a"], "top_n": 0}, 422,
     "top_n must be greater than or equal to 1, got the number 0"),
    ("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": ["a"], "top_n": 1.5}, 422,
     "top_n must be a valid integer, got the number 1.5"),
    ("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": ["a"], "return_documents": "no"}, 422,
     "return_documents must be a valid boolean"),
    ("/v1/rerank", {"model": "gpt-4", "query": QUERY, "documents": ["a"]}, 404,
     "model 'gpt-4' is not served here; served: msmarco (reranker), sig (reranker), embed (embedding)"),
    # the library's own checks (CrossEncoder.rank's): a "\ud800" escape decodes to a lone surrogate
    ("/rerank", {"query": "q\ud800", "texts": ["a"]}, 422, "query contains a lone surrogate (U+D800 at character 1)"),
    ("/rerank", {"query": QUERY, "texts": ["a", "b\udfff"]}, 422, "texts[1] contains a lone surrogate (U+DFFF"),
    ("/v1/rerank", {"model": "msmarco", "query": QUERY, "documents": ["a", {"text": "\ud800"}]}, 422,
     "documents[1] contains a lone surrogate"),
    # a route asked of the other kind of model
    ("/v1/rerank", {"model": "embed", "query": QUERY, "documents": ["a"]}, 404,
     "model 'embed' is an embedding model, not a reranker (a cross-encoder: it scores query-document pairs): ask it "
     "at POST /v1/embeddings"),
    ("/v1/embeddings", {"model": "msmarco", "input": "a"}, 404,
     "model 'msmarco' is a reranker (a cross-encoder: it scores query-document pairs), not an embedding model: ask "
     "it at POST /v1/rerank"),
]  # fmt: skip


@pytest.mark.parametrize("path, body, status, message", ERRORS, ids=[f"{e[2]}-{e[3][:40]}" for e in ERRORS])
def test_bad_requests_get_the_status_and_an_error_in_the_routes_shape(server, path, body, status, message):
    response = server.post(path, body)
    assert response.status_code == status, response.text
    if status == 200:
        return
    if path.startswith("/v1/"):
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and message in error["message"], error
        assert error["type"] == "invalid_request_error"
    else:
        error = response.json()
        assert set(error) == {"error", "error_type"} and message in error["error"], error


def test_the_document_limit_is_inclusive_and_reported(server):
    assert server.post("/rerank", {"query": QUERY, "texts": ["a"] * LIMIT}).status_code == 200
    documents = [{"text": "a"}] * LIMIT
    assert server.post("/v1/rerank", {"model": "sig", "query": "q", "documents": documents}).status_code == 200
    assert httpx.get(f"{server.url}/info").json()["max_client_rerank_documents"] == LIMIT


def test_the_default_document_limit_takes_1000_candidates(msmarco_dir):
    """TEI's 32 for embeddings would refuse a reranker's usual request: the default here is 1000."""
    running = Server("--model", str(msmarco_dir))
    try:
        ok = running.post("/rerank", {"query": "q", "texts": [f"passage {i}" for i in range(1000)]})
        assert ok.status_code == 200 and len(ok.json()) == 1000
        over = running.post("/rerank", {"query": "q", "texts": ["p"] * 1001})
        assert over.status_code == 413 and "--max-client-rerank-documents 1000" in over.json()["error"]
    finally:
        assert running.stop() == 0


def test_tei_routes_without_a_model_of_their_kind_are_400(make_cross_encoder_dir, make_bert_dir):
    only_reranker = Server("--model", str(make_cross_encoder_dir("bert", "tiny")))
    try:
        refused = only_reranker.post("/embed", {"inputs": "a"})
        assert refused.status_code == 400 and refused.json()["error_type"] == "Validation"
        assert refused.json()["error"].startswith("this server serves no embedding model; its models (")
        info = httpx.get(f"{only_reranker.url}/info").json()
        assert info["model_type"] == {"reranker": {"architecture": "BertForSequenceClassification",
                                                   "activation_fn": "sigmoid"}}  # fmt: skip
        assert (info["dimensions"], info["normalized"], info["max_input_length"]) == (None, None, 512)
        assert only_reranker.post("/rerank", {"query": "q", "texts": ["a"]}).status_code == 200
    finally:
        assert only_reranker.stop() == 0
    only_embedder = Server("--model", f"tiny={make_bert_dir('tiny')}")
    try:
        refused = only_embedder.post("/rerank", {"query": "q", "texts": ["a"]})
        assert refused.status_code == 400 and "this server serves no reranker" in refused.json()["error"]
        assert "POST /embed" in refused.json()["error"]
        v1 = only_embedder.post("/v1/rerank", {"model": "tiny", "query": "q", "documents": ["a"]})
        assert v1.status_code == 404 and "is an embedding model, not a reranker" in v1.json()["error"]["message"]
    finally:
        assert only_embedder.stop() == 0


# ------------------------------------------------------------------------------ /info, /v1/models, the contract


def test_info_and_models_say_what_each_model_is(server):
    info = httpx.get(f"{server.url}/info").json()
    assert info["model_id"] == "msmarco"
    assert info["model_type"] == {"reranker": {"architecture": "BertForSequenceClassification",
                                               "activation_fn": "identity"}}  # fmt: skip
    assert info["dimensions"] is None and info["normalized"] is None and info["max_input_length"] == 512
    kinds = {m["name"]: (m["kind"], m["dimensions"]) for m in info["models"]}
    assert kinds == {"msmarco": ("reranker", None), "sig": ("reranker", None), "embed": ("embedding", 32)}
    listed = httpx.get(f"{server.url}/v1/models").json()["data"]
    assert [(m["id"], m["kind"]) for m in listed] == [("msmarco", "reranker"), ("sig", "reranker"),
                                                       ("embed", "embedding")]  # fmt: skip


def test_the_contract_publishes_the_rerank_routes_narrowed_to_this_server(server, msmarco_dir):
    document = httpx.get(f"{server.url}/openapi.json").json()
    responses = {path: set(document["paths"][path]["post"]["responses"]) for path in ("/rerank", "/v1/rerank")}
    assert responses == {"/rerank": {"200", "400", "413", "422", "429", "503"},
                         "/v1/rerank": {"200", "400", "404", "413", "422", "429", "503"}}  # fmt: skip
    schemas = document["components"]["schemas"]
    assert schemas["TeiRerankRequest"]["properties"]["texts"]["maxItems"] == LIMIT
    cohere = schemas["CohereRerankRequest"]["properties"]
    assert cohere["documents"]["maxItems"] == LIMIT and cohere["documents"]["minItems"] == 1
    assert {"msmarco", "sig", str(msmarco_dir), msmarco_dir.name} <= set(cohere["model"]["enum"])
    assert "embed" not in cohere["model"]["enum"]  # each route's names: the models of its kind
    assert schemas["OpenAIEmbeddingRequest"]["properties"]["model"]["enum"][0] == "embed"
    assert "msmarco" not in schemas["OpenAIEmbeddingRequest"]["properties"]["model"]["enum"]


# ------------------------------------------------------------------------------ batching and loading


def test_concurrent_requests_to_three_models_each_get_their_own_results(server, msmarco, sigmoid_dir, make_bert_dir):
    """Pairs of several requests share forward batches, each batch one model's: requests to both rerankers and to the
    embedding model in flight at once each get their own scores and rows."""
    small, embedder = minibert.CrossEncoder(sigmoid_dir), minibert.SentenceTransformer(make_bert_dir("tiny"))
    requests = [(f"query {i} about seasons", [f"passage {j} of {i}: {DOCUMENTS[j][:60]}" for j in range(i % 4 + 2)])
                for i in range(24)]  # fmt: skip
    batches_before = server.metric("minibert_batch_size_count")

    def send(i: int) -> httpx.Response:
        query, texts = requests[i]
        if i % 3 == 0:
            return server.post("/rerank", {"query": query, "texts": texts, "raw_scores": True})  # msmarco
        if i % 3 == 1:
            return server.post("/v1/rerank", {"model": "sig", "query": query, "documents": texts})
        return server.post("/embed", {"inputs": texts})

    with ThreadPoolExecutor(len(requests)) as pool:
        responses = list(pool.map(send, range(len(requests))))
    for i, ((query, texts), response) in enumerate(zip(requests, responses, strict=True)):
        assert response.status_code == 200, response.text
        if i % 3 == 2:
            assert_close(response.json(), embedder.encode(texts), atol=ATOL, what=f"embeddings of request {i}")
            continue
        pairs = [(query, text) for text in texts]
        if i % 3 == 0:
            got, expected = [(r["index"], r["score"]) for r in response.json()], msmarco.predict(pairs)
        else:
            got = [(r["index"], r["relevance_score"]) for r in response.json()["results"]]
            expected = small.predict(pairs)
        _check_ranking(got, expected, f"request {i}")
    assert server.metric("minibert_batch_size_count") - batches_before < len(requests)  # batched across requests


def test_the_server_reranks_on_the_triton_backend(make_cross_encoder_dir):
    """`--backend triton` (here in Triton's interpreter on the CPU): the scores the same facade gives in-process."""
    pytest.importorskip("triton")
    model_dir = make_cross_encoder_dir("bert", "tiny-d32")  # head size 32: the kernels take 16 … 128
    model = minibert.CrossEncoder(model_dir, backend="triton", device="cpu")
    running = Server("--model", f"rr={model_dir}", "--backend", "triton", "--device", "cpu",
                     env={"TRITON_INTERPRET": "1"})  # fmt: skip
    try:
        documents = DOCUMENTS[1:4]  # short ones: the interpreter is slow
        body = running.post("/v1/rerank", {"model": "rr", "query": QUERY, "documents": documents}).json()
        expected = model.predict([(QUERY, document) for document in documents])
        _check_ranking([(r["index"], r["relevance_score"]) for r in body["results"]], expected, "Triton")
    finally:
        assert running.stop() == 0
    assert not [line for line in running.log if "Traceback" in line]


def test_a_cross_encoder_with_several_labels_is_refused_at_load(make_cross_encoder_dir):
    done = subprocess.run(
        [str(MINIBERT), "serve", "--port", "0", "--model", str(make_cross_encoder_dir("bert", "tiny", num_labels=3))],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("minibert: error: cannot load a model: ") and "3 labels (a classifier)" in last, last


def test_the_option_is_checked_like_the_others():
    started = time.monotonic()
    done = subprocess.run([str(MINIBERT), "serve", "--max-client-rerank-documents", "0"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("minibert: error: --max-client-rerank-documents must be a positive"), done.stderr
    assert time.monotonic() - started < 60  # refused before any model is loaded
    help_text = subprocess.run([str(MINIBERT), "serve", "--help"], capture_output=True, text=True).stdout
    assert re.search(r"--max-client-rerank-documents\s.*?\(default\s+1000\)", help_text, re.S), help_text
