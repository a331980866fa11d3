"""CPU encode benchmark: minibert (NumPy) vs sentence-transformers and ONNX Runtime. The code is minibert.bench
(also `minibert bench`); this script runs it from a checkout. `python benchmarks/cpu.py --help` lists the options.

    python benchmarks/cpu.py [--model M[,M2]] [--corpus FILE] [--limit N] [--rounds R]
    python benchmarks/cpu.py --model all-MiniLM-L6-v2,bert-base-shape
    python benchmarks/cpu.py --smoke
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout without `pip install -e .`

from minibert.bench.run import main

if __name__ == "__main__":
    sys.exit(main(prog="cpu.py"))
