"""Progress reporting for long encodes: tqdm when it is installed, else a plain stderr line.

When ``show_progress_bar`` is None it follows sentence-transformers' default: shown only when the
``minibert`` logger is at INFO or DEBUG level.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger("minibert")


def should_show(show_progress_bar: bool | None) -> bool:
    if show_progress_bar is None:
        return logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
    return bool(show_progress_bar)


@contextmanager
def progress(
    total: int, desc: str, enabled: bool, unit: str = "it", initial: int = 0
) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; draws a bar of `total` steps (`initial` already done) on stderr while enabled, with the
    rate in `unit` per second and the time left."""
    if not enabled:
        yield lambda n: None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        with tqdm(total=total, desc=desc, unit=unit, initial=initial) as bar:
            yield bar.update
        return
    done = initial
    start = time.monotonic()

    def advance(n: int) -> None:
        nonlocal done
        done += n
        rate = (done - initial) / max(time.monotonic() - start, 1e-9)
        eta = f", {(total - done) / rate:.0f} s left" if rate > 0 and total > done else ""
        sys.stderr.write(f"\r{desc}: {done}/{total} ({100 * done // max(total, 1)}%), {rate:.1f} {unit}/s{eta}")
        sys.stderr.flush()

    try:
        yield advance
    finally:
        sys.stderr.write("\n")
