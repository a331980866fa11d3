"""CPU benchmark: minibert's NumPy encoder against sentence-transformers and ONNX Runtime — sentence embeddings
(--task embed, the default), or cross-encoders scoring (query, passage) pairs (--task rerank, below).

What it measures, for each model given with --model:

* Throughput. The contenders — minibert (NumPy), sentence-transformers (torch fp32 on CPU) and ONNX Runtime
  (CPUExecutionProvider running a plain torch.onnx.export of the transformers model; tokenized, pooled and
  normalized by minibert as the model directory says) — embed the same passages of the same corpus with the same
  batch size, each in a worker process of its own (minibert.bench.worker: each runtime as deployed, the others idle,
  every call timed inside its process). Each gets one warm-up batch, then they run alternately (A B C A B C ...,
  --rounds rounds, each round after half a second idle), so machine noise hits all alike. Reported: median docs/s
  and the min-max over rounds; real tokens/s (the tokenizer's token counts: padding is not counted); achieved
  GFLOP/s and its share of the sgemm peak measured in the same run; the ratio of medians to sentence-transformers;
  each contender's max |delta| against sentence-transformers' embeddings of the first 64 passages. Contenders that
  are not installed are named in one line, not an error.
* Queries (minibert.bench.queries): the same contenders on short queries — queries/s on batches of --batch-size
  distinct queries over alternating rounds, then every query alone, contenders taking turns pass by pass, as
  p50 / p95 / p99 latency — and the bandwidth floor of one query: the encoder layers' parameter bytes (streamed
  from memory at least once per forward) ÷ the read bandwidth (np.add.reduce) measured in the same run. Queries:
  --queries FILE; else $MINIBERT_BENCH_QUERIES; else the TREC DL 2019 queries beside a checkout
  (../shared/data/msmarco-queries.tsv); else the first 8 words of corpus passages. --no-queries skips them.
* FLOPs: encoder layers only, counted from the config and each passage's real token count L (padding is not
  counted; embeddings, pooling and Dense layers are left out). Per layer:
  2*L*C*3C (QKV) + 2*L*C*C (attention output) + 2*2*L*C*F (FFN) + 2*2*L^2*C (QK^T and A*V).
* sgemm peak: the best of several np.matmul on BERT-shaped float32 matrices ([4096, C] @ [C, 3C],
  [4096, C] @ [C, F], [4096, F] @ [F, C]): the GEMM rate NumPy's BLAS reaches on this machine.
* Cold start: wall time from spawning a fresh `python -c` that imports, loads the model and encodes one
  sentence, to its exit; median of 3, for minibert and sentence-transformers. The model files are in the
  OS page cache by then, so this is process start-up, imports and loading, not disk reads.
* Peak RSS: a subprocess (python -m minibert.bench.rss_child) encodes the chosen passages (or --rss-limit of
  them; 0 = the whole corpus) with minibert 3 times and reports its RSS after loading and after each repeat
  (flat means no growth) and its peak, compared with the size of the weights file + 300 MB. The peak is VmHWM
  from /proc/self/status where there is one: on Linux getrusage's ru_maxrss keeps the spawning process's peak
  across exec (a child of this benchmark process would report this process's size), so ru_maxrss is the
  fallback only where /proc is missing.

Cross-encoders (--task rerank; minibert.bench.rerank): the same three contenders as rerankers — minibert's
CrossEncoder (NumPy), sentence-transformers' CrossEncoder (torch fp32 on CPU) and ONNX Runtime (the transformers
encoder exported as above, behind minibert's CrossEncoder, which tokenizes the pairs, takes the [CLS] rows and runs
the classification head) — on (query, passage) pairs, pair i = (query i mod Q, passage i), the first --limit
passages, batch --batch-size:
* Pairs/s: one warm-up call on 64 pairs (also each contender's max |delta| of scores against
  sentence-transformers'), then alternating rounds of predict(pairs); median pairs/s, min-max, tokens/s, GFLOP/s
  and its share of the sgemm peak, the ratio of medians to sentence-transformers.
* Rerank latency: every query with --candidates (default 100) passages — query j's are the corpus passages from
  j * candidates on, round and round — one rank(query, candidates) call each, the contenders taking turns every
  8 queries (each turn after one untimed call);
  p50 / p95 / p99 ms and the p50 ratio to sentence-transformers'.
* Models: a cross-encoder name or directory (cross-encoder/ms-marco-MiniLM-L6-v2, fetched when not found), or
  `ms-marco-MiniLM-L6-v2-shape` (the default): a seeded random-init BertForSequenceClassification of that model's
  shape (6 x 384, 12 heads, intermediate 1536, one label, max_length 512) with the all-MiniLM-L6-v2 tokenizer,
  built once under $MINIBERT_HOME/bench/. Cold start and peak RSS are not measured for this task.
* Rows: in the same long-format CSV, each `what` beginning "cross-encoder, "; the PNG (pairs/s, rerank latency)
  goes beside the CSV as <name>-rerank.png (benchmarks/cpu-rerank.png by default), never over the embedding plot.

Models: any name or directory minibert resolves (fetched with minibert.loading.download.download when it is not
found), or `bert-base-shape`: a seeded random-init 12 x 768 BERT (mean pooling, max_seq_length 256) with the
all-MiniLM-L6-v2 tokenizer, built once with transformers under $MINIBERT_HOME/bench/ (speed does not depend
on the weights' values). --model may be repeated or a comma list.

Corpus: --corpus FILE (.tsv, .jsonl or plain text, read as `minibert search` reads it); else
$MINIBERT_BENCH_CORPUS; else the MS MARCO sample beside a source checkout (../shared/data/msmarco-passages.tsv);
else paragraphs of the docstrings in the Python standard library's source (real English prose present
wherever Python is), written once to $MINIBERT_HOME/bench/.

Output: markdown tables on stdout, long-format CSV rows appended to --csv (one per measured value: docs/s,
tokens/s, GFLOP/s, queries/s, latencies, the floor, cold starts, peak RSS — median, p20, p80 over the rounds;
minibert.bench.results), and a PNG of docs/s, queries/s and one-query latency per contender per model (when
matplotlib is installed).

    minibert bench [--model M[,M2]] [--corpus FILE] [--queries FILE] [--limit N] [--rounds R] [--no-cold-start]
    minibert bench --task rerank [--model CROSS_ENCODER] [--limit PAIRS] [--candidates K] [--rounds R]
    python benchmarks/cpu.py --smoke     # a few passages, one round: runs every code path in seconds
    python benchmarks/cpu.py --task rerank --smoke
"""

# One piece per module (this docstring is `minibert bench --help`'s description, so the map lives here):
#   options      the command-line options and their checks; light, `minibert --help` imports only this
#   run          one model's measurements, the whole run, main() for benchmarks/cpu.py
#   contenders   minibert, sentence-transformers, ONNX Runtime (OnnxEncoder, a backend behind minibert's facade)
#   processes    the cold starts and the peak-RSS child (rss_child, run as python -m minibert.bench.rss_child)
#   queries      the query rows: distinct-query batches, one-query latency, the bandwidth floor
#   rerank       --task rerank: a cross-encoder's pairs/s and rerank latency
#   work         FLOP counts;  machine  CPU, versions, commit, sgemm peak;  corpus  the default corpus
#   choice       what a --model value names (random-init shapes are built by minibert.testing)
#   timing       the clocks, the alternation;  report  markdown, CSV (append_csv), PNG — timing and append_csv serve
#                benchmarks/ too
#   results      the long-format result rows (the one schema of benchmarks/results.csv)
#   paths        the checkout and the bench's folder under MINIBERT_HOME
