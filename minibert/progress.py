"""Progress reporting for long encodes: tqdm when it is installed, else a plain stderr line.

When ``show_progress_bar`` is None it follows sentence-transformers' default: shown only when the
``minibert`` logger is at INFO or DEBUG level.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger("minibert")


def should_show(show_progress_bar: bool | None) -> bool:
    if show_progress_bar is None:
        return logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
    return bool(show_progress_bar)


@contextmanager
def progress(total: int, desc: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; draws a bar of `total` steps on stderr while enabled."""
    if not enabled:
        yield lambda n: None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        with tqdm(total=total, desc=desc) as bar:
            yield bar.update
        return
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        sys.stderr.write(f"\r{desc}: {done}/{total} ({100 * done // max(total, 1)}%)")
        sys.stderr.flush()

    try:
        yield advance
    finally:
        sys.stderr.write("\n")
