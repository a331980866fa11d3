"""The models a server serves: each loaded once, found by any of its names, and turning checked requests into token
ids through the facade's prepare stage (so a request's texts get exactly the checks ``encode`` applies).

``--model M`` serves M under the name given, its short name and its hub id (``all-MiniLM-L6-v2``,
``sentence-transformers/all-MiniLM-L6-v2``, or a directory's own name); ``--model ALIAS=M`` adds ALIAS. The first
model is the one TEI's routes (which name no model) use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, InputTypeError
from ..loading.resolve import canonical_model_id, looks_like_path
from ..model import Prepared, SentenceTransformer
from .protocol import ApiError, EmbedRequest


@dataclass(frozen=True)
class ModelSpec:
    """A --model value: what to load, and the names to serve it under."""

    source: str
    names: tuple[str, ...]

    @classmethod
    def parse(cls, value: str) -> ModelSpec:
        alias, sep, source = value.partition("=")
        if not sep or looks_like_path(alias):  # no alias (a directory's path may hold '=')
            alias, source = "", value
        if not source.strip() or (sep and not alias.strip() and source != value):
            raise InputError(f"--model {value!r}: expected a model name or directory, or ALIAS=MODEL")
        names = [alias.strip()] if alias.strip() else []
        names.append(source)
        if looks_like_path(source):
            names.append(Path(source).name)
        else:
            model_id = canonical_model_id(source)
            names += [model_id, model_id.split("/", 1)[1]]
        return cls(source, tuple(dict.fromkeys(n for n in names if n)))


@dataclass
class ServedModel:
    """A loaded model and the names it answers to; ``name`` is the one responses report."""

    name: str
    names: tuple[str, ...]
    model: SentenceTransformer

    @property
    def dimension(self) -> int:
        return self.model.get_sentence_embedding_dimension()

    def prepare(self, request: EmbedRequest) -> Prepared:
        """The request's inputs through the facade's prepare stage — the checks, prompt and tokenizer ``encode``
        uses — as 422s naming the input; with ``truncate: false``, a 413 naming the first input that is longer than
        the model's max length."""
        try:
            if request.texts is not None:
                prepared = self.model.prepare(request.texts, prompt_name=request.prompt_name, field=request.field)
            else:
                prepared = self.model.prepare_token_ids(request.token_ids, field=request.field)
        except (InputError, InputTypeError) as exc:
            raise ApiError(422, str(exc), param=request.field) from None
        too_long = [i for i, cut in enumerate(prepared.truncated) if cut]
        if too_long and not request.truncate:
            raise ApiError(
                413,
                f"input {too_long[0]} is longer than the model's max length of {self.model.max_seq_length} tokens "
                f"({len(too_long)} input(s) are); send truncate: true, or shorten it",
            )
        return prepared


def check_unique(entries: list[tuple[str, tuple[str, ...]]]) -> None:
    """InputError naming the first name that two (source, names) entries both answer to: one would be unreachable."""
    owner: dict[str, str] = {}
    for source, names in entries:
        for name in names:
            if owner.setdefault(name, source) != source:
                raise InputError(
                    f"--model {owner[name]} and --model {source} both answer to {name!r}; serve each model once, "
                    "under its own ALIAS="
                )


class ServedModels:
    """Every model the server serves, by name; two models answering to one name are refused (InputError)."""

    def __init__(self, specs: list[ModelSpec], options: Mapping[str, Any] | None = None) -> None:
        check_unique([(spec.source, spec.names) for spec in specs])
        self.specs = specs
        self.options = dict(options or {})  # SentenceTransformer's keyword arguments: device, dtype, backend, threads
        self.models: list[ServedModel] = []

    def load(self) -> None:
        """Load every model (slow: run off the event loop). A model of minibert's table (loading/known_models.py) also
        answers to its table names, e.g. a cache directory of all-MiniLM-L6-v2 to ``all-MiniLM-L6-v2``."""
        models = []
        for spec in self.specs:
            model = SentenceTransformer(spec.source, **self.options)
            known = model.known_model
            table_names = (known.name, f"sentence-transformers/{known.name}") if known else ()
            models.append(ServedModel(spec.names[0], tuple(dict.fromkeys((*spec.names, *table_names))), model))
        check_unique([(spec.source, served.names) for spec, served in zip(self.specs, models, strict=True)])
        self.models = models

    @property
    def ready(self) -> bool:
        return bool(self.models)

    def find(self, name: str | None) -> ServedModel:
        """The model answering to `name` (None: the first one), else a 404 listing what is served."""
        if name is None:
            return self.models[0]
        for served in self.models:
            if name in served.names:
                return served
        listing = ", ".join(served.name for served in self.models)
        raise ApiError(
            404, f"model {name!r} is not served here; served: {listing}", param="model", code="model_not_found"
        )
