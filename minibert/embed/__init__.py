"""Embedding corpora of any size: ``minibert embed`` — one job (:mod:`.job`), run in this process (:mod:`.local`) or
through Ray Data (:mod:`.ray`).

:mod:`.inputs` reads the corpus as a stream, :mod:`.shards` writes and reads the Parquet shards and the manifest,
:mod:`.contract` is what the job and its runners share, :mod:`.reuse` lets ``minibert search`` and ``minibert eval``
use a finished output. pyarrow is needed (``pip install 'minibert[embed]'``); Ray only for ``--ray``.
"""

from .contract import EmbedSettings
from .inputs import CorpusInput, open_input
from .job import Summary, run_embed_job
from .shards import read_output

__all__ = ["CorpusInput", "EmbedSettings", "Summary", "open_input", "read_output", "run_embed_job"]
