"""The peak-RSS child: encode passages with minibert in a fresh process and print what its memory did, as JSON.

    python -m minibert.bench.rss_child MODEL_DIR TEXTS_JSON BATCH_SIZE REPEATS

Prints one line: {"after_load", "after_repeats", "vmhwm", "ru_maxrss", "peak", "peak_source"}, in bytes. RSS is
/proc/self/statm's resident pages (None where there is no /proc); "peak" is VmHWM from /proc/self/status, the
process's own high-water mark, else getrusage's ru_maxrss ("peak_source" says which): on Linux ru_maxrss carries
over the peak of the process that spawned this one across exec. Imports only minibert, so the numbers are its.
"""

from __future__ import annotations

import json
import os
import resource
import sys

import minibert


def rss() -> int | None:
    """Resident set size now, in bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def high_water_mark() -> int | None:
    """VmHWM, the peak resident set size of this process, in bytes."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def measure(model_dir: str, texts: list[str], batch_size: int, repeats: int) -> dict:
    model = minibert.SentenceTransformer(model_dir)
    after_load = rss()
    after_repeats = []
    for _ in range(repeats):
        model.encode(texts, batch_size=batch_size)
        after_repeats.append(rss())
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    hwm = high_water_mark()
    return {
        "after_load": after_load,
        "after_repeats": after_repeats,
        "vmhwm": hwm,
        "ru_maxrss": ru_maxrss,
        "peak": ru_maxrss if hwm is None else hwm,
        "peak_source": "ru_maxrss" if hwm is None else "VmHWM",
    }


def main(argv: list[str]) -> None:
    model_dir, texts_file, batch_size, repeats = argv
    with open(texts_file, encoding="utf-8") as f:
        texts = json.load(f)
    print(json.dumps(measure(model_dir, texts, int(batch_size), int(repeats))))


if __name__ == "__main__":
    main(sys.argv[1:])
