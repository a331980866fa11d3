"""`minibert serve` under load vs `model.encode` in the same run: does dynamic batching recover the batch efficiency
that one-passage requests throw away?

In one run, on the same model and the same passages (the MS MARCO sample beside a checkout, else --corpus):

- cold start: spawn `minibert serve` → the first `GET /health` that answers 200 (median of 3 starts);
- direct: `model.encode(passages, batch_size=32)` in this process;
- (a) 32 concurrent clients, each sending one passage per request (`POST /v1/embeddings`, base64 as OpenAI's
  clients ask);
- (b) 4 concurrent clients sending 32 passages per request;

direct, (a) and (b) alternating for --rounds rounds (the server idles while this process encodes, and this
process only waits while the server works). Reported: docs/s (median, min–max), the ratio to direct, latency
p50 / p90 / p99 per request, errors (any status but 200, or a wrong row count), and the server's RSS before and
after --rss-requests one-query requests (the 43 TREC DL queries cycled: many small requests, what a leak
would show up in). The load generator is one asyncio process with keep-alive connections (httpx), cheap next to
the forward it waits on; it shares the machine's cores with the server, as a client on the same host would.

    python benchmarks/serve_load.py [--model M] [--corpus FILE] [--limit N] [--rounds R] [--rss-requests N]
    python benchmarks/serve_load.py --smoke      # a few passages, one round: every code path in seconds
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a checkout without `pip install -e .`

from _common import save_rows  # noqa: E402
from minibert.bench.corpus import default_corpus  # noqa: E402
from minibert.bench.machine import machine_description, versions  # noqa: E402
from minibert.retrieval.corpus import read_corpus  # noqa: E402

MINIBERT = Path(sys.executable).parent / "minibert"
QUERIES = ROOT.parent / "shared" / "data" / "msmarco-queries.tsv"
CSV = ROOT / "benchmarks" / "serve.csv"
COLUMNS = ["date", "machine", "versions", "model", "passages", "contender", "round", "docs_per_s", "p50_ms",
           "p90_ms", "p99_ms", "errors"]  # fmt: skip


class Server:
    """A `minibert serve --port 0` process."""

    def __init__(self, model: str) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(MINIBERT), "serve", "--port", "0", "--model", model, "--max-client-batch-size", "64"],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = re.search(r"at (http://\S+)", self.process.stderr.readline()).group(1)
        # the request log (a line per request) must be read, or the server blocks on a full pipe
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    async def ready(self, client) -> float:
        """Seconds from spawning to the first /health 200."""
        while True:
            try:
                if (await client.get(f"{self.url}/health")).status_code == 200:
                    return time.perf_counter() - self.started
            except Exception:  # not listening yet
                pass
            await asyncio.sleep(0.01)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


async def _load(url: str, model: str, batches: list[list[str]], concurrency: int) -> tuple[float, list, int]:
    """Send `batches` (one request each) from `concurrency` workers over keep-alive connections opened for this
    phase (a connection left idle between phases is closed by the server's keep-alive timeout, and reusing it
    would race that close); (docs/s, per-request seconds, errors)."""
    import httpx

    queue = list(reversed(batches))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while queue:
            texts = queue.pop()
            start = time.perf_counter()
            response = await client.post(f"{url}/v1/embeddings", json={"model": model, "input": texts,
                                                                       "encoding_format": "base64"})  # fmt: skip
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200 or len(response.json()["data"]) != len(texts):
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return sum(map(len, batches)) / (time.perf_counter() - start), latencies, errors


def _percentiles(latencies: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return 1000 * q[49], 1000 * q[89], 1000 * q[98]


async def _main(args: argparse.Namespace) -> None:
    import httpx

    import minibert

    texts = [p.embed_text for p in read_corpus(args.corpus or default_corpus())][: args.limit]
    queries = [p.embed_text for p in read_corpus(QUERIES)] if QUERIES.is_file() else texts[:43]
    model = minibert.SentenceTransformer(args.model)
    async with httpx.AsyncClient(timeout=300) as client:
        cold = []
        for _ in range(1 if args.smoke else 3):
            server = Server(args.model)
            cold.append(await server.ready(client))
            if len(cold) < (1 if args.smoke else 3):
                server.stop()
        model.encode(texts[:32], batch_size=32)  # warm-up, both sides
        await _load(server.url, args.model, [texts[:32]], 1)
        plans = {"(a) 32 clients × 1 passage": (32, [[t] for t in texts]),
                 "(b) 4 clients × 32 passages": (4, [texts[i : i + 32] for i in range(0, len(texts), 32)])}  # fmt: skip
        results: dict[str, list[tuple[float, tuple, int]]] = {"direct encode, batch 32": []}
        results.update({name: [] for name in plans})
        for round_index in range(args.rounds):
            print(f"round {round_index + 1}/{args.rounds}", file=sys.stderr)
            start = time.perf_counter()
            model.encode(texts, batch_size=32)
            results["direct encode, batch 32"].append((len(texts) / (time.perf_counter() - start), (), 0))
            for name, (concurrency, batches) in plans.items():
                docs, latencies, errors = await _load(server.url, args.model, batches, concurrency)
                results[name].append((docs, _percentiles(latencies), errors))
        rss_before = server.rss_mb()
        cycled = [[queries[i % len(queries)]] for i in range(args.rss_requests)]
        _, _, rss_errors = await _load(server.url, args.model, cycled, 32)
        rss_after = server.rss_mb()
        status = server.stop()

    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    direct = statistics.median(d for d, _, _ in results["direct encode, batch 32"])
    print(f"- command: {' '.join(['serve_load.py', *sys.argv[1:]])}\n- machine: {machine_description()}\n"
          f"- versions: {versions()}\n- date: {date}\n- model: {args.model}; {len(texts)} passages per round, "
          f"{args.rounds} alternating round(s)\n")  # fmt: skip
    print("| contender | docs/s median (min–max) | × direct | latency p50 / p90 / p99 ms (median round) | errors |")
    print("|---|---|---|---|---|")
    rows = []
    common = {"date": date, "machine": machine_description(), "versions": versions(), "model": args.model,
              "passages": len(texts)}  # fmt: skip
    for name, runs in results.items():
        rates = [d for d, _, _ in runs]
        median = statistics.median(rates)
        middle = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        latency = " / ".join(f"{v:.0f}" for v in middle[1]) if middle[1] else "–"
        errors = sum(e for _, _, e in runs)
        print(f"| {name} | {median:.1f} ({min(rates):.1f}–{max(rates):.1f}) | {median / direct:.2f}× | {latency} | "
              f"{errors if middle[1] else '–'} |")  # fmt: skip
        for i, (docs, percentiles, errs) in enumerate(runs):
            p50, p90, p99 = percentiles or ("", "", "")
            rows.append({**common, "contender": name, "round": i, "docs_per_s": f"{docs:.2f}",
                         "p50_ms": p50 and f"{p50:.1f}", "p90_ms": p90 and f"{p90:.1f}",
                         "p99_ms": p99 and f"{p99:.1f}", "errors": errs})  # fmt: skip
    print(f"\ncold start (spawn → /health 200): {statistics.median(cold):.2f} s (median of {len(cold)}; "
          f"{', '.join(f'{c:.2f}' for c in cold)})")
    print(f"server RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after {args.rss_requests} more one-query "
          f"requests ({rss_errors} errors); server exit status after SIGTERM: {status}")
    save_rows("serve_load.py", args.csv, CSV, args.smoke, COLUMNS, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("MINIBERT_SERVE_MODEL", "all-MiniLM-L6-v2"))
    parser.add_argument("--corpus", type=Path, help="passages (default: the MS MARCO sample beside a checkout)")
    parser.add_argument("--limit", type=int, default=512, help="passages per round (default 512)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--rss-requests", type=int, default=10_000, help="requests between the RSS readings")
    parser.add_argument("--csv", type=Path, help=f"CSV to append rows to (default {CSV.relative_to(ROOT)})")
    parser.add_argument("--smoke", action="store_true", help="64 passages, one round, 200 RSS requests")
    args = parser.parse_args()
    if args.smoke:
        args.limit, args.rounds, args.rss_requests = min(args.limit, 64), 1, 200
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
