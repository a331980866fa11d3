"""The HTTP APIs' bodies as pydantic models: the server validates every request body with these, and its OpenAPI
document (:mod:`minibert.serve.openapi`) is generated from them, so what is published is what is checked.

Requests are validated strictly (JSON's types as they are: ``true`` is not an integer, ``"8"`` is not a number,
``8.0`` is the integer 8);
fields the models do not name are ignored, as the APIs do. ``input`` / ``inputs`` is one of four shapes, chosen
by the value itself (:func:`input_kind`), so an error names the element that is wrong, e.g. ``input[2]`` in
``[101, 2054, true]``; so is each of Cohere's ``documents`` (a string or an object with a ``text`` string:
:func:`document_kind`), e.g. ``documents[2].text``.
The response models describe what the routes send; the server builds those bodies directly
(the fuzz test in CI checks them against these models).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

# The tags of the unions' shapes, as they appear in validation errors' locations. Each holds a space, so none is ever
# a field's name (such as "texts" or "text"): error messages drop them (UNION_TAGS) and keep every field.
TEXT, TEXTS, TOKEN_IDS, TOKEN_ID_LISTS = "one text", "list of texts", "token ids", "token id lists"
DOCUMENT_TEXT, DOCUMENT_OBJECT = "document text", "document object"  # the shapes of one of Cohere's documents
UNION_TAGS = (TEXT, TEXTS, TOKEN_IDS, TOKEN_ID_LISTS, DOCUMENT_TEXT, DOCUMENT_OBJECT)

INPUT_SHAPES = "a string, a list of strings, a list of token ids or a list of lists of token ids"


def input_kind(value: Any) -> str | None:
    """Which of the four input shapes `value` is meant to be, from its type and its first element (None: none)."""
    if isinstance(value, str):
        return TEXT
    if not isinstance(value, list):
        return None
    if not value or isinstance(value[0], str):
        return TEXTS  # an empty list is refused as one (400)
    if isinstance(value[0], (int, float)) and not isinstance(value[0], bool):
        return TOKEN_IDS
    if isinstance(value[0], list):
        return TOKEN_ID_LISTS
    return None


def _whole_number(value: Any) -> Any:
    """JSON has one kind of number: 8.0 is the integer 8, as JSON Schema's ``integer`` says."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


TokenId = Annotated[int, Field(ge=0), BeforeValidator(_whole_number)]

Inputs = Annotated[
    Annotated[str, Tag(TEXT)]
    | Annotated[list[str], Field(min_length=1), Tag(TEXTS)]
    | Annotated[list[TokenId], Field(min_length=1), Tag(TOKEN_IDS)]
    | Annotated[list[list[TokenId]], Field(min_length=1), Tag(TOKEN_ID_LISTS)],
    Discriminator(input_kind, custom_error_type="input_shape", custom_error_message=f"Input should be {INPUT_SHAPES}"),
]

INPUTS_HELP = (
    f"what to embed: {INPUT_SHAPES} (the model's word-piece ids, without the special tokens, which the server adds)"
)
OPENAI_INPUTS_HELP = (
    f"what to embed: {INPUT_SHAPES} (OpenAI's token ids, of the tiktoken encoding the server names in "
    "--tiktoken-encoding, default cl100k_base, decoded to text; with --openai-token-ids model, the model's word-piece "
    "ids without the special tokens)"
)
Dimensions = Annotated[int, Field(ge=1), BeforeValidator(_whole_number)]
DIMENSIONS_HELP = "keep the first N dimensions of each embedding (at most the model's width), then re-normalize"


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class OpenAIEmbeddingRequest(_Request):
    """OpenAI's ``POST /v1/embeddings`` body."""

    model: str = Field(description="the name of a served model (GET /v1/models lists them)")
    input: Inputs = Field(description=OPENAI_INPUTS_HELP)
    encoding_format: Literal["float", "base64"] | None = Field(
        None, description="float (default), or base64 of each embedding's little-endian float32 bytes"
    )
    dimensions: Dimensions | None = Field(None, description=DIMENSIONS_HELP)
    user: str | None = Field(None, description="ignored")


# A prompt is text: it cannot be put before token ids. As JSON Schema: inputs that are a list of non-strings (ids)
# allow only a null prompt_name; the validator below checks the same.
_NO_PROMPT_FOR_IDS = {
    "if": {"properties": {"inputs": {"type": "array", "items": {"not": {"type": "string"}}}}},
    "then": {"properties": {"prompt_name": {"type": "null"}}},
}


class _TeiInputsRequest(_Request):
    """TEI's inputs, truncation and prompt: what ``/embed`` and ``/embed_all`` share."""

    model_config = ConfigDict(json_schema_extra=_NO_PROMPT_FOR_IDS)

    inputs: Inputs = Field(description=INPUTS_HELP)
    truncate: bool | None = Field(None, description="cut inputs past the model's max length (default true)")
    truncation_direction: Literal["Right"] | None = Field(None, description="only Right is supported")
    prompt_name: str | None = Field(
        None, description="a prompt of the model's config_sentence_transformers.json (for text inputs only)"
    )

    @field_validator("prompt_name")
    @classmethod
    def _no_prompt_for_token_ids(cls, prompt_name: str | None, info: ValidationInfo) -> str | None:
        if prompt_name is not None and input_kind(info.data.get("inputs")) in (TOKEN_IDS, TOKEN_ID_LISTS):
            raise PydanticCustomError("prompt_for_ids", "Input should be null with token-id inputs (a prompt is text)")
        return prompt_name


class TeiEmbedRequest(_TeiInputsRequest):
    """text-embeddings-inference's ``POST /embed`` body."""

    normalize: bool | None = Field(None, description="L2-normalize (default: as the model directory says)")
    dimensions: Dimensions | None = Field(None, description=DIMENSIONS_HELP)


class TeiEmbedAllRequest(_TeiInputsRequest):
    """text-embeddings-inference's ``POST /embed_all`` body: every token's last hidden state."""


class TeiEmbedAllResponse(RootModel[list[list[list[float]]]]):
    """Per input, in input order, each token's vector (special tokens included), [tokens, hidden size]."""


def text_kind(value: Any) -> str | None:
    """A text or a list of texts (None: neither)."""
    return TEXT if isinstance(value, str) else TEXTS if isinstance(value, list) else None


def id_kind(value: Any) -> str | None:
    """A list of token ids or a list of such lists, by its first element (None: not a list)."""
    if not isinstance(value, list):
        return None
    return TOKEN_ID_LISTS if value and isinstance(value[0], list) else TOKEN_IDS


TokenizeInputs = Annotated[
    Annotated[str, Tag(TEXT)] | Annotated[list[str], Field(min_length=1), Tag(TEXTS)],
    Discriminator(text_kind, custom_error_type="input_shape", custom_error_message="Input should be a string or a "
                  "list of strings"),
]  # fmt: skip
DecodeIds = Annotated[
    Annotated[list[TokenId], Field(min_length=1), Tag(TOKEN_IDS)]
    | Annotated[list[list[TokenId]], Field(min_length=1), Tag(TOKEN_ID_LISTS)],
    Discriminator(id_kind, custom_error_type="input_shape", custom_error_message="Input should be a list of token "
                  "ids or a list of lists of token ids"),
]  # fmt: skip


class TeiTokenizeRequest(_Request):
    """text-embeddings-inference's ``POST /tokenize`` body."""

    inputs: TokenizeInputs = Field(description="a text or a list of texts")
    add_special_tokens: bool = Field(True, description="add the model's special tokens ([CLS] … [SEP])")
    prompt_name: str | None = Field(None, description="a prompt of the model's, put before each text")


class SimpleToken(BaseModel):
    id: int
    text: str = Field(description="the input's characters the token covers (a special token: its own string)")
    special: bool
    start: int | None = Field(description="UTF-8 byte offset where the token starts in the input (null: special)")
    stop: int | None = Field(description="UTF-8 byte offset where it ends (null: special)")


class TeiTokenizeResponse(RootModel[list[list[SimpleToken]]]):
    """Per input, its tokens in order (all of them: the tokenization is not cut to the max length)."""


class TeiDecodeRequest(_Request):
    """text-embeddings-inference's ``POST /decode`` body."""

    ids: DecodeIds = Field(description="token ids of the first embedding model, or a list of such lists")
    skip_special_tokens: bool = Field(True, description="leave the special tokens out of the text")


class TeiDecodeResponse(RootModel[list[str]]):
    """One text per id list."""


# ------------------------------------------------------------------------------------------ reranking

QUERY_HELP = "the query the documents are scored against (an empty one is scored too)"


def document_kind(value: Any) -> str | None:
    """Which of a document's two shapes `value` is meant to be: a string, or an object with a text (None: neither)."""
    if isinstance(value, str):
        return DOCUMENT_TEXT
    return DOCUMENT_OBJECT if isinstance(value, dict) else None


class RerankDocument(_Request):
    """One of Cohere's documents given as an object: its ``text`` is ranked, its other fields are ignored."""

    text: str = Field(description="the document's text")


Document = Annotated[
    Annotated[str, Tag(DOCUMENT_TEXT)] | Annotated[RerankDocument, Tag(DOCUMENT_OBJECT)],
    Discriminator(
        document_kind,
        custom_error_type="document_shape",
        custom_error_message='Input should be a string or an object {"text": string}',
    ),
]
TopN = Annotated[int, Field(ge=1), BeforeValidator(_whole_number)]


class TeiRerankRequest(_Request):
    """text-embeddings-inference's ``POST /rerank`` body."""

    query: str = Field(description=QUERY_HELP)
    texts: list[str] = Field(min_length=1, description="the documents to score against the query")
    truncate: bool | None = Field(
        None, description="cut pairs past the model's max length, longest part first (default true)"
    )
    raw_scores: bool | None = Field(
        None, description="the model's logits as they are (default false: their sigmoid, as TEI gives them)"
    )
    return_text: bool | None = Field(None, description="put each document's text in its result (default false)")


class CohereRerankRequest(_Request):
    """Cohere's (v1) and Jina's ``POST /v1/rerank`` body."""

    model: str = Field(description="the name of a served reranker (GET /v1/models lists them)")
    query: str = Field(description=QUERY_HELP)
    documents: list[Document] = Field(
        min_length=1, description='the documents to score against the query: strings, or objects {"text": string}'
    )
    top_n: TopN | None = Field(None, description="return the best N (default, or more than were sent: all)")
    return_documents: bool | None = Field(
        None, description="put each document's text in its result as document.text (default false)"
    )


class TeiRank(BaseModel):
    index: int = Field(description="the document's position in texts")
    score: float
    text: str | None = Field(None, description="with return_text: the document")


class TeiRerankResponse(RootModel[list[TeiRank]]):
    """One result per document, best score first (ties in input order)."""


class RerankedDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    index: int = Field(description="the document's position in documents")
    relevance_score: float = Field(description="the model's score, with the model's own activation")
    document: RerankedDocument | None = Field(None, description="with return_documents: the document")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class RerankTokens(BaseModel):
    input_tokens: int
    output_tokens: int


class RerankMeta(BaseModel):
    tokens: RerankTokens


class CohereRerankResponse(BaseModel):
    """Cohere's fields (id, results, meta.tokens) and Jina's (model, usage, results) in one body."""

    id: str
    results: list[RerankResult] = Field(description="best relevance_score first (ties in input order), top_n of them")
    model: str
    usage: Usage
    meta: RerankMeta


# ------------------------------------------------------------------------------------------ the other routes


class Embedding(BaseModel):
    object: Literal["embedding"]
    embedding: list[float] | str = Field(description="floats, or base64 with encoding_format base64")
    index: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: Usage


Kind = Literal["embedding", "reranker"]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    owned_by: str
    kind: Kind = Field(description="embedding: POST /v1/embeddings; reranker (a cross-encoder): POST /v1/rerank")


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class TeiEmbedResponse(RootModel[list[list[float]]]):
    """One embedding per input, in input order."""


class ServedModelInfo(BaseModel):
    name: str
    aliases: list[str]
    kind: Kind
    dimensions: int | None = Field(description="the embeddings' width; null for a reranker")
    max_input_length: int = Field(description="tokens per input (a reranker: per query-document pair)")


class Info(BaseModel):
    """The first model served (as TEI describes its one model) and the server's limits; every model in models."""

    model_id: str
    model_dtype: str
    model_type: dict[str, dict[str, str]] = Field(
        description='{"embedding": {"pooling"}} or {"reranker": {"architecture", "activation_fn"}}'
    )
    dimensions: int | None
    normalized: bool | None
    max_input_length: int
    max_batch_tokens: int
    max_client_batch_size: int
    max_client_rerank_documents: int
    max_concurrent_requests: int
    payload_limit: int
    auto_truncate: bool
    models: list[ServedModelInfo]
    version: str


class Health(BaseModel):
    status: Literal["ok"]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail


class TeiError(BaseModel):
    error: str
    error_type: str
