"""``minibert embed --ray``: :class:`Embedder` for ``Dataset.map_batches``, and the job's Ray runner :class:`RayRunner`.

:class:`Embedder` is a picklable callable class, torch-free: each Ray actor loads the model once (in its
constructor) and embeds the batches it is given, with the local job's rule for a batch
(:func:`minibert.embed.local.embed_texts`) and the same record checks
(:func:`minibert.retrieval.corpus.passage_from_fields`)::

    ds = ray.data.read_parquet("s3://bucket/corpus/")
    ds = ds.map_batches(
        Embedder,
        fn_constructor_kwargs={"model": "all-MiniLM-L6-v2", "threads": 4},
        batch_size=32,
        num_cpus=4,  # = threads: Ray places actors so that a machine's cores are not oversubscribed
        compute=ray.data.ActorPoolStrategy(size=16),
    )
    ds.write_parquet("s3://bucket/embeddings/")

(Ray 2.5x / 2.6x: ``compute=ActorPoolStrategy(...)`` sizes the pool; ``concurrency=`` is deprecated there.)

:class:`RayRunner` produces a job's rows for :func:`minibert.embed.job.run_embed_job`, which does everything else
(manifest, resuming, ranges, shards) as for the local runner. The same input formats — ``.parquet`` through
``ray.data.read_parquet``, ``.jsonl`` and ``.tsv`` through ``ray.data.read_text`` and minibert's own line parser
(so a passage is exactly what the local job reads), plain text refused, as its passages are named by line
position, which Ray's parallel readers do not know — then ``map_batches(Embedder)`` on a fixed pool of actors
(float32 rows), and the driver iterates them in input order (``preserve_order``) one shard at a time (Ray's
``write_parquet`` is not used: it may reorder rows within a file). Where it differs from the local runner: the
whole input goes through Ray again when a job resumes (only the writing of finished shards is skipped); and
batches are cut where Ray cuts them, so rows equal the local job's to float32 rounding (≤ 1e-6), not bitwise. Only
the driver writes, so the output directory need only be on its machine. Ray is imported only here: the plain CPU
path never loads it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, InputError, positive_int
from ..loading.identity import model_identity
from ..retrieval.corpus import JsonFields, Passage, parse_line, passage_from_fields
from . import shards
from .contract import EmbedSettings, Shard
from .inputs import CorpusInput
from .local import embed_texts
from .shards import SCALAR_PRECISIONS, stored_rows

__all__ = ["Embedder", "RayRunner"]


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise BackendUnavailableError("minibert embed --ray needs Ray Data; pip install 'minibert[ray]'") from None
    return ray


def _records(batch: Any) -> list[dict[str, Any]]:
    """The rows of a Ray batch (pyarrow Table, pandas DataFrame or dict of NumPy arrays) as dicts of Python values."""
    if hasattr(batch, "to_pylist"):  # pyarrow.Table
        return batch.to_pylist()
    if hasattr(batch, "to_dict"):  # pandas.DataFrame: through Arrow, so NaN/None become None and numbers Python's
        import pyarrow as pa

        return pa.Table.from_pandas(batch, preserve_index=False).to_pylist()
    columns = {name: np.asarray(values).tolist() for name, values in batch.items()}
    n = len(next(iter(columns.values()), []))
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def _where(row: dict[str, Any], fields: JsonFields) -> str:
    """A record named in errors: by its id when it has one."""
    pid = next((row[name] for name in fields.id_candidates() if row.get(name) is not None), None)
    return "a row" if pid is None else f"the row with id {pid!r}"


class Embedder:
    """Embeds Ray Data batches: each row's ``text`` (and optional ``title``) becomes one embedding row.

    Args:
        model: a model directory, hub id or short name, resolved on each actor's machine as ``minibert.load`` does.
        batch_size: texts per forward; the rows of a batch Ray hands over are embedded this many at a time.
        precision: "float32", "int8", "uint8", "binary" or "ubinary" (int8 / uint8 need ``ranges``).
        normalize: L2-normalize the rows (beyond what the model does).
        ranges: [2, d] per-dimension min and max for int8 / uint8 (the single-machine job's first-shard rule).
        threads: the forward's threads in this actor (give Ray the same ``num_cpus``); None: all cores it sees.
        id_field, text_field, title_field: the column names (default: ``_id`` else ``id``; ``text``; ``title``).
        identity: the model identity hash every actor must find (``minibert.loading.identity.model_identity``), or
            None.
        lines_of: None when batches hold records (columns); else the path of the .tsv / .jsonl corpus file whose
            lines the ``text`` column holds (``ray.data.read_text``), parsed by minibert's parser for that format.

    Returns (per call): the batch's kind — a pyarrow Table, a pandas DataFrame or a dict of NumPy arrays — with
    ``id`` (str) and ``embedding`` (one row of the precision's type per input row), in input order.
    """

    def __init__(
        self,
        model: str,
        batch_size: int = 32,
        precision: str = "float32",
        normalize: bool = False,
        ranges: list[list[float]] | None = None,
        threads: int | None = None,
        id_field: str | None = None,
        text_field: str = "text",
        title_field: str = "title",
        identity: str | None = None,
        lines_of: str | None = None,
    ) -> None:
        from ..model import load

        self.settings = EmbedSettings(batch_size=batch_size, precision=precision, normalize=normalize).checked()
        if self.settings.precision in SCALAR_PRECISIONS and ranges is None:
            raise InputError(f"precision {precision!r} needs ranges ([2, d] min and max) so every actor codes alike")
        self.ranges = None if ranges is None else np.asarray(ranges, np.float32)
        self.fields = JsonFields(id=id_field, text=text_field, title=title_field)
        self.lines_of = lines_of
        self.model = load(model, threads=None if threads is None else positive_int("threads", threads))
        if identity is not None and model_identity(self.model.config) != identity:
            raise InputError(f"model {model!r} on this node is not the driver's (its files differ); install the same")

    def _passages(self, batch: Any) -> list[Passage]:
        if self.lines_of is None:
            return [passage_from_fields(_where(row, self.fields), row, None, self.fields) for row in _records(batch)]
        p = Path(self.lines_of)
        lines = [row["text"] for row in _records(batch)]
        return [parse_line(p, f"corpus {p}, line {line[:40]!r}", line, None, self.fields) for line in lines]

    def __call__(self, batch: Any) -> Any:
        passages = self._passages(batch)
        rows = stored_rows(
            embed_texts(self.model, [p.embed_text for p in passages], self.settings),
            self.settings.precision,
            self.ranges,
        )
        ids = [p.id for p in passages]
        if hasattr(batch, "to_pylist"):
            return shards.shard_table(ids, rows, self.settings.precision)
        if hasattr(batch, "to_dict"):
            import pandas as pd

            return pd.DataFrame({"id": ids, "embedding": list(rows)})
        return {"id": np.asarray(ids, dtype=object), "embedding": rows}


def _dataset(ray: Any, source: CorpusInput) -> tuple[Any, str | None]:
    """The input as a Ray Dataset, and the corpus file whose lines its ``text`` column holds (None: Parquet
    records)."""
    path = str(source.path.resolve())
    if source.format == "parquet":
        return ray.data.read_parquet(path, num_cpus=0), None
    return ray.data.read_text(path, num_cpus=0), path  # .tsv / .jsonl (plain text is refused before)


def _actor_pool(ray: Any, actors: int, parquet: bool) -> Any:
    """A fixed pool of `actors`; for Parquet one that starts at one actor and grows to `actors`: read_parquet lists
    its files in a task that takes a whole CPU (Ray 2.60, whatever the read's num_cpus), so a fixed pool holding every
    CPU would leave it none and the job would wait forever."""
    if parquet:
        return ray.data.ActorPoolStrategy(min_size=1, max_size=actors, initial_size=1)
    return ray.data.ActorPoolStrategy(size=actors)


_REMOTE_MINIBERT_ERROR = re.compile(r"^minibert\.errors\.\w+: (.+(?:\n.+)*)", re.MULTILINE)


def _root_cause(exc: BaseException) -> str:
    """What went wrong, on one line: the message of the minibert error an actor raised (Ray hands it back as text in
    the remote traceback), else the first line of the innermost Ray error."""
    found = _REMOTE_MINIBERT_ERROR.findall(str(exc))
    if found:
        return " ".join(found[-1].split())
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return _root_cause(cause)
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _float_rows(batch: Any) -> np.ndarray:
    """The ``embedding`` column of a pyarrow batch (fixed-size lists of float32) as [n, d]."""
    embedding = batch.column("embedding").combine_chunks()
    return embedding.values.to_numpy(zero_copy_only=False).reshape(batch.num_rows, -1)


def _ready(rows: np.ndarray, advance: Callable[[int], None]) -> np.ndarray:
    advance(len(rows))
    return rows


class RayRunner:
    """Computes a job's rows through Ray Data (module docstring).

    Args:
        model: the model name or directory each actor loads (on its own machine), as the driver was given it.
        address: the cluster to join ('auto': the one this machine belongs to); "" starts a local Ray for the job.
        actors: embedding actors (default: the cluster's CPUs / threads_per_actor).
        threads_per_actor: each actor's forward threads, and the CPUs Ray reserves for it.
    """

    def __init__(self, model: str, *, address: str = "", actors: int | None = None, threads_per_actor: int = 1):
        self.model, self.address = model, address
        self.actors = None if actors is None else positive_int("--actors", actors)
        self.threads_per_actor = positive_int("--threads-per-actor", threads_per_actor)
        self.description = {"runner": "ray"}
        self._cluster: dict[str, int] = {}

    def check(self, source: CorpusInput) -> None:
        _import_ray()
        if source.format == "txt":
            raise InputError(
                f"--input {source.path}: plain text names passages by line position, which Ray's parallel readers do "
                "not know; convert it to .tsv (id<TAB>text) or .jsonl with ids, or run without --ray"
            )

    def shards(self, source: CorpusInput, settings: EmbedSettings, identity: str) -> Iterator[Shard]:
        ray = _import_ray()
        started_ray = not ray.is_initialized()
        if started_ray:
            ray.init(address=self.address or None, include_dashboard=False, logging_level="WARNING",
                     log_to_driver=False)  # fmt: skip
        options = ray.data.DataContext.get_current().execution_options
        preserved = options.preserve_order
        try:
            alive = [node for node in ray.nodes() if node["Alive"]]
            self._cluster = {"nodes": len(alive), "cpus": sum(int(n["Resources"].get("CPU", 0)) for n in alive)}
            if self.actors is None:
                self.actors = max(1, int(ray.cluster_resources().get("CPU", 1)) // self.threads_per_actor)
            options.preserve_order = True
            dataset, lines_of = _dataset(ray, source)
            embedded = dataset.map_batches(
                Embedder,
                fn_constructor_kwargs={
                    "model": self.model,
                    "batch_size": settings.batch_size,
                    "normalize": settings.normalize,
                    "threads": self.threads_per_actor,
                    "id_field": source.fields.id,
                    "text_field": source.fields.text,
                    "title_field": source.fields.title,
                    "identity": identity,
                    "lines_of": lines_of,
                },
                batch_size=settings.batch_size,
                batch_format="pyarrow",
                num_cpus=self.threads_per_actor,
                compute=_actor_pool(ray, self.actors, parquet=lines_of is None),
            )
            batches = embedded.iter_batches(batch_size=settings.shard_size, batch_format="pyarrow", prefetch_batches=2)
            for batch in batches:
                yield Shard(batch.column("id").to_pylist(), functools.partial(_ready, _float_rows(batch)))
        except ray.exceptions.RayError as exc:
            raise InputError(f"the Ray job failed: {_root_cause(exc)}") from None
        finally:
            options.preserve_order = preserved
            if started_ray:
                ray.shutdown()

    def report(self) -> dict[str, Any]:
        return {"ray": {"actors": self.actors, "threads_per_actor": self.threads_per_actor, **self._cluster}}
