"""The `minibert` console script end to end, through a subprocess, on the real all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from minibert.testing import assert_close
from tests.helpers import MINIBERT, ROOT

CORPUS = ROOT / "examples" / "corpus.txt"


def run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MINIBERT), *args], input=stdin, capture_output=True, text=True, timeout=300, env=env or os.environ.copy()
    )


@pytest.fixture(scope="module")
def reference(real_model_dir):
    from sentence_transformers import SentenceTransformer as Reference

    return Reference(str(real_model_dir), device="cpu")


def test_info_describes_the_default_model(real_model_dir):
    result = run("info")
    assert result.returncode == 0, result.stderr
    fields = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in result.stdout.splitlines())
    assert fields["architecture"] == "bert"
    assert (fields["layers"], fields["hidden size"], fields["attention heads"]) == ("6", "384", "12")
    assert fields["max_seq_length"] == "256" and fields["pooling"] == "mean" and fields["normalized"] == "yes"
    assert fields["score function"].startswith("cosine")
    from safetensors.numpy import load_file

    stored = load_file(real_model_dir / "model.safetensors")
    # everything but the unused pooler and the position_ids buffer
    expected = sum(v.size for k, v in stored.items() if not k.startswith("pooler.") and "position_ids" not in k)
    assert fields["parameters"] == f"{expected:,}"


def test_encode_to_npy_matches_sentence_transformers(tmp_path, reference):
    texts = ["first line", "", "Ünïcödé and 中文", "a much longer line " * 50]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    result = run("encode", "--input", str(source), "--output", str(out), "--batch-size", "3")
    assert result.returncode == 0, result.stderr
    assert_close(np.load(out), reference.encode(texts), atol=1e-5, what="minibert encode → .npy")


def test_encode_stdin_to_jsonl_on_stdout(reference):
    result = run("encode", "--normalize", stdin="alpha\nbeta gamma\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["index"], r["text"]) for r in rows] == [(0, "alpha"), (1, "beta gamma")]
    assert_close([r["embedding"] for r in rows], reference.encode(["alpha", "beta gamma"]), atol=1e-5, what="jsonl")


def _printed_hits(stdout: str) -> dict[str, list[tuple[float, str]]]:
    hits: dict[str, list[tuple[float, str]]] = {}
    for line in stdout.splitlines():
        if line.startswith("query: "):
            query = line[len("query: ") :]
            hits[query] = []
        elif m := re.match(r"\s*\d+\. (-?[\d.]+)  \[(.+?)\] ", line):
            hits[query].append((float(m.group(1)), m.group(2)))
    return hits


def test_search_ranks_like_sentence_transformers_and_caches_the_corpus(tmp_path, reference, real_model_dir):
    from sentence_transformers import util as st_util

    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(CORPUS.read_bytes())
    env = {**os.environ, "MINIBERT_HOME": str(tmp_path / "home")}
    queries = ["how do I bake bread at home", "what causes the seasons on earth"]
    search = ("search", "--model", str(real_model_dir), "--corpus", str(corpus), "--top-k", "3", *queries)
    first = run(*search, env=env)
    assert first.returncode == 0, first.stderr
    assert "encoding" in first.stderr
    passages = [line for line in CORPUS.read_text().splitlines() if line.strip()]
    ref_hits = st_util.semantic_search(reference.encode(queries), reference.encode(passages), top_k=3)
    printed = _printed_hits(first.stdout)
    for query, expected in zip(queries, ref_hits, strict=True):
        assert [pid for _, pid in printed[query]] == [str(h["corpus_id"]) for h in expected]
        assert_close([s for s, _ in printed[query]], [h["score"] for h in expected], atol=1e-4, what=query)
    assert "bread" in passages[int(printed[queries[0]][0][1])]
    second = run(*search, env=env)
    assert second.returncode == 0 and "encoding" not in second.stderr  # served from the cache
    assert second.stdout == first.stdout
    assert len(list((tmp_path / "home" / "embeddings").glob("*.npy"))) == 1


COUNTS = [  # (command and its other arguments, the count option, its value)
    (("encode",), "--batch-size", "0"),
    (("search", "--corpus", str(CORPUS), "q"), "--batch-size", "0"),
    (("search", "--corpus", str(CORPUS), "q"), "--top-k", "-1"),
    (("eval", str(CORPUS), str(CORPUS), str(CORPUS)), "--batch-size", "-3"),
    (("embed", "--input", str(CORPUS), "--output", "unused"), "--shard-size", "0"),
    (("embed", "--input", str(CORPUS), "--output", "unused", "--ray"), "--threads-per-actor", "0"),
]


@pytest.mark.parametrize("args, option, value", COUNTS, ids=lambda v: " ".join(v[:1]) if isinstance(v, tuple) else v)
def test_every_count_option_is_checked_before_any_work(tmp_path, args, option, value):
    """Before: `search --batch-size 0` ran (the cache hid it), `--top-k -1` failed as 'top_k' after the corpus
    was embedded. Now one line naming the option, before a model is loaded (a missing model would say otherwise)."""
    env = {**os.environ, "MINIBERT_HOME": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    command = [str(MINIBERT), *args, option, value]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert result.returncode == 1 and not result.stdout, result.stderr
    assert result.stderr == f"minibert: error: {option} must be a positive integer, got {value}\n"


def test_download_prints_the_cached_directory(real_model_dir):
    result = run("download")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == real_model_dir


@pytest.mark.parametrize(
    "args, message",
    [
        (("search", "--corpus", "/nonexistent/corpus.txt", "query"), "corpus.txt"),
        (("encode", "--input", "/nonexistent/in.txt"), "in.txt"),
        (("encode", "--output", "out.csv"), "use a .npy or .jsonl"),
        (("info", "--model", "/nonexistent/model"), "/nonexistent/model"),
        (("encode", "--batch-size", "0"), "--batch-size must be a positive integer"),
    ],
)
def test_errors_are_one_clear_line(args, message):
    result = run(*args, stdin="some text\n")
    assert result.returncode == 1
    assert result.stderr.startswith("minibert: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ files, pipes and the OS


@pytest.fixture(scope="module")
def tiny_dir(make_bert_dir):
    return str(make_bert_dir("tiny"))


def _one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minibert: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("name", ["missing/out.npy", "missing/out.jsonl", "a-dir.npy", "full.npy", "full.jsonl"])
def test_output_that_cannot_be_written_is_one_error_line(tmp_path, tiny_dir, name):
    (tmp_path / "a-dir.npy").mkdir()
    for full in ("full.npy", "full.jsonl"):
        (tmp_path / full).symlink_to("/dev/full")  # a disk with no space left
    output = tmp_path / name
    result = run("encode", "--model", tiny_dir, "--output", str(output), stdin="one\ntwo\n")
    reason = {"missing": "No such file or directory", "a-dir": "is a directory", "full": "No space left on device"}
    _one_error_line(result, f"--output {output}", reason[name.split("/")[0].split(".")[0]])
    assert not (tmp_path / "missing").exists() and (tmp_path / "a-dir.npy").is_dir()


def test_a_full_disk_behind_stdout_is_one_error_line(tiny_dir):
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [str(MINIBERT), "encode", "--model", tiny_dir], input="one\ntwo\n", stdout=full, stderr=subprocess.PIPE,
            text=True, timeout=300,
        )  # fmt: skip
    _one_error_line(result, "No space left on device")


def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path, tiny_dir):
    """`minibert encode … | head -n 1`: no traceback, status 141 (128 + SIGPIPE) as for Unix tools."""
    source = tmp_path / "in.txt"
    source.write_text("".join(f"line number {i}\n" for i in range(5000)))
    script = (
        f'"{MINIBERT}" encode --model "{tiny_dir}" --input "{source}" | head -n 1; echo "status=${{PIPESTATUS[0]}}"'
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    first, status = result.stdout.strip().splitlines()
    assert json.loads(first)["index"] == 0
    assert status == "status=141" and result.stderr == "", result.stderr


def test_minibert_home_that_is_a_file(tmp_path, tiny_dir):
    """search answers without the cache (one warning); download fails with one line that names MINIBERT_HOME."""
    home = tmp_path / "home"
    home.write_text("not a directory")
    env = {**os.environ, "MINIBERT_HOME": str(home)}
    result = run("search", "--model", tiny_dir, "--corpus", str(CORPUS), "--top-k", "1", "bread", env=env)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("minibert: warning: ")]
    assert len(warnings) == 1 and "embedding cache" in warnings[0] and "Traceback" not in result.stderr
    assert "query: bread" in result.stdout
    _one_error_line(run("download", "--force", env=env), "MINIBERT_HOME", str(home))


def test_row_i_is_line_i(tmp_path, tiny_dir):
    """Only \\n ends a line (\\r\\n tolerated): U+2028, U+2029, U+0085, form feed and a lone \\r stay in their row."""
    lines = ["a\u2028b", "\x85c", "", "d\x0ce\rf", "g\u2029h\x1ci"]
    data = ("\r\n".join(lines[:2]) + "\n" + "\n".join(lines[2:]) + "\n").encode()
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    for result in (run("encode", "--model", tiny_dir, "--input", str(source)), run_bytes(tiny_dir, data)):
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [(r["index"], r["text"]) for r in rows] == list(enumerate(lines))


def run_bytes(model_dir: str, stdin: bytes) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(MINIBERT), "encode", "--model", model_dir], input=stdin, capture_output=True, timeout=300
    )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def test_stdin_that_is_not_utf8_is_reported_like_a_file(tiny_dir):
    result = run_bytes(tiny_dir, "fine\ncafé au lait\n".encode("latin-1"))
    _one_error_line(
        result, "standard input is not valid UTF-8", "byte 0xe9 at byte offset 8 (line 2)", "iconv -f latin1 -t utf-8"
    )
    assert "surrogate" not in result.stderr


@pytest.mark.parametrize(
    "line, fragment",
    [('{"text": "half a pair \\ud800"}', "field 'text' holds a lone surrogate"), ("[" * 100_000, "nested too deeply")],
    ids=["surrogate escape", "nested 100000 deep"],
)
def test_corpus_problems_name_the_file_and_the_line(tmp_path, tiny_dir, line, fragment):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "fine"}\n' + line + "\n")
    _one_error_line(run("search", "--model", tiny_dir, "--corpus", str(corpus), "q"), f"{corpus}, line 2", fragment)


# ------------------------------------------------------------------------------ the embedding cache


def _search(tiny_dir: str, corpus: str, home: Path, *queries: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINIBERT_HOME": str(home)}
    result = run("search", "--model", tiny_dir, "--corpus", corpus, "--top-k", "2", *(queries or ("q",)), env=env)
    assert result.returncode == 0, result.stderr
    return result


def test_the_same_bytes_parsed_two_ways_are_cached_apart(tmp_path, tiny_dir):
    data = "p1\talpha passage about bread\np2\tbeta passage about seasons\n"
    (tmp_path / "c.txt").write_text(data)
    (tmp_path / "c.tsv").write_text(data)
    as_tsv = _search(tiny_dir, str(tmp_path / "c.tsv"), tmp_path / "home")
    as_txt = _search(tiny_dir, str(tmp_path / "c.txt"), tmp_path / "home")
    assert "encoding" in as_tsv.stderr and "encoding" in as_txt.stderr  # the .txt reading is not served the .tsv rows
    assert "[p1] alpha" in as_tsv.stdout and "p1\talpha" in as_txt.stdout
    assert (
        as_tsv.stdout.split("\n", 3)[2][:12] != as_txt.stdout.split("\n", 3)[2][:12] or as_tsv.stdout != as_txt.stdout
    )
    assert len(list((tmp_path / "home" / "embeddings").glob("*.npy"))) == 2


def test_piped_corpora_are_keyed_on_what_was_read(tmp_path, tiny_dir):
    """`--corpus <(...)`: read once; two different piped corpora never share an entry."""
    home = tmp_path / "home"
    outputs = []
    for words in (("apples", "pears"), ("rockets", "planets")):
        script = (
            f'MINIBERT_HOME="{home}" "{MINIBERT}" search --model "{tiny_dir}" --top-k 2 '
            f"--corpus <(printf '{words[0]}\\n{words[1]}\\n') q"
        )
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and "encoding 2 passages" in result.stderr, result.stderr
        outputs.append(result.stdout)
    assert "apples" in outputs[0] and "rockets" in outputs[1] and "apples" not in outputs[1]
    assert len(list((home / "embeddings").glob("*.npy"))) == 2


@pytest.mark.parametrize("damage", ["NaN rows", "fewer rows", "other dimension", "truncated"])
def test_a_damaged_cache_entry_is_rebuilt_not_served(tmp_path, tiny_dir, damage):
    home = tmp_path / "home"
    first = _search(tiny_dir, str(CORPUS), home, "bread", "seasons")
    (entry,) = (home / "embeddings").glob("*.npy")
    rows = np.load(entry)
    damaged = {
        "NaN rows": lambda: np.save(entry, np.full_like(rows, np.nan)),
        "fewer rows": lambda: np.save(entry, rows[:-1]),
        "other dimension": lambda: np.save(entry, rows[:, :-1]),
        "truncated": lambda: entry.write_bytes(entry.read_bytes()[:-100]),
    }
    damaged[damage]()
    second = _search(tiny_dir, str(CORPUS), home, "bread", "seasons")
    assert "encoding" in second.stderr and second.stdout == first.stdout
    np.testing.assert_array_equal(np.load(entry), rows)  # the entry is whole again
    third = _search(tiny_dir, str(CORPUS), home, "bread", "seasons")
    assert "encoding" not in third.stderr and third.stdout == first.stdout


# ------------------------------------------------------------------------------ prompts, precision, similarity


@pytest.fixture(scope="module")
def prompted_dir(make_bert_dir, tmp_path_factory):
    """A tiny model whose config_sentence_transformers.json declares prompts, a default one and euclidean scores."""
    import shutil

    model_dir = tmp_path_factory.mktemp("prompted") / "model"
    shutil.copytree(make_bert_dir("tiny"), model_dir)
    (model_dir / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "prompts": {"query": "query: ", "document": "passage: "},
                "default_prompt_name": "document",
                "similarity_fn_name": "euclidean",
            }
        )
    )
    return model_dir


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary", "float32"])
def test_encode_precision_writes_what_encode_returns(tmp_path, real_model_dir, precision):
    import minibert

    texts = ["first line", "second, longer line about bread", "Ünïcödé"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    result = run("encode", "--input", str(tmp_path / "in.txt"), "--output", str(out), "--precision", precision)
    assert result.returncode == 0, result.stderr
    expected = minibert.SentenceTransformer(real_model_dir).encode(texts, precision=precision)
    got = np.load(out)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_encode_prompt_name_and_info_show_the_models_prompts(tmp_path, prompted_dir):
    import minibert

    model = minibert.SentenceTransformer(prompted_dir)
    (tmp_path / "in.txt").write_text("how do I bake bread\n")
    for extra, expected in (([], model.encode(["how do I bake bread"])), (["--prompt-name", "query"], None)):
        out = tmp_path / f"out{len(extra)}.npy"
        result = run("encode", "--model", str(prompted_dir), "--input", str(tmp_path / "in.txt"), "--output", str(out),
                     *extra)  # fmt: skip
        assert result.returncode == 0, result.stderr
        if expected is None:
            expected = model.encode_query(["how do I bake bread"])
        np.testing.assert_array_equal(np.load(out), expected)
    bad = run("encode", "--model", str(prompted_dir), "--prompt-name", "title", stdin="x\n")
    assert bad.returncode == 1 and "prompt_name 'title' is not one of this model's prompts" in bad.stderr
    info = run("info", "--model", str(prompted_dir)).stdout
    assert "query='query: '" in info and "document" in info and "euclidean (util.euclidean_sim)" in info


def test_search_scores_with_the_models_similarity_function(tmp_path, prompted_dir):
    """A euclidean model: scores are negative distances between the query (query prompt) and the passages
    (document prompt), ranked like minibert.util.semantic_search with util.euclidean_sim."""
    import minibert
    from minibert import util

    model = minibert.SentenceTransformer(prompted_dir)
    passages = [line for line in CORPUS.read_text().splitlines() if line.strip()]
    expected = util.semantic_search(
        model.encode_query(["bread"]), model.encode_document(passages), top_k=3, score_function=util.euclidean_sim
    )[0]
    env = {**os.environ, "MINIBERT_HOME": str(tmp_path / "home")}
    result = run("search", "--model", str(prompted_dir), "--corpus", str(CORPUS), "--top-k", "3", "bread", env=env)
    assert result.returncode == 0, result.stderr
    printed = _printed_hits(result.stdout)["bread"]
    assert [pid for _, pid in printed] == [str(h["corpus_id"]) for h in expected]
    assert_close([s for s, _ in printed], [h["score"] for h in expected], atol=1e-4, what="euclidean scores")
    assert all(score < 0 for score, _ in printed)
