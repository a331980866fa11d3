"""Embedding corpora of any size: ``minibert embed``, on one machine (:mod:`.job`) or through Ray Data
(:mod:`minibert.embed.ray`).

:mod:`.inputs` reads the corpus as a stream, :mod:`.shards` writes and reads the Parquet shards and the manifest,
:mod:`.job` is the resumable single-machine job. pyarrow is needed (``pip install 'minibert[embed]'``); Ray only
for ``--ray``. ``minibert search`` and ``minibert eval`` read a finished output with :func:`read_output`.
"""

from .inputs import CorpusInput, open_input
from .job import EmbedSettings, Summary, run_embed_job
from .shards import read_output

__all__ = ["CorpusInput", "EmbedSettings", "Summary", "open_input", "read_output", "run_embed_job"]
