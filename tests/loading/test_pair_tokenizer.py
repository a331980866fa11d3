"""Cross-encoder pairs (BatchTokenizer.pair_tokens / pairs) against the live transformers tokenizer, pair by pair.

The reference is what sentence-transformers' CrossEncoder feeds its model: the model directory's
``AutoTokenizer`` called on the two lists with ``truncation=True, max_length=…`` (and, once per tokenizer, the
``Transformer.preprocess`` that CrossEncoder itself runs). Tokenizers: all-MiniLM-L6-v2's (BERT, 3 special tokens,
token types 0 / 1), the random-init DistilBERT's and MPNet's (no token_type_ids in transformers' output: ours are 0;
MPNet's pair has 4 special tokens), and a BERT tokenizer built from vocab.txt alone. Texts: hostile (empty,
whitespace, NUL and control characters, emoji, combining marks, special-token strings, 10k characters), at
max_lengths from 1 (below the special tokens: transformers cuts nothing) to 512. "truncated" is checked against
transformers' untruncated encoding being longer.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minibert import InputError, ModelLoadError
from minibert.errors import InputTypeError
from minibert.loading.config import load_config
from minibert.loading.tokenizer import BatchTokenizer, PairTokens
from minibert.packing import PackedBatch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TOKENIZER_KINDS = ["bert-real", "bert-tiny", "distilbert", "mpnet", "bert-vocab-only"]
MAX_LENGTHS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 17, 33, 64, 127, 256, 512]

SHORT_TEXTS = [
    "",
    " ",
    "\t\n \u3000\u00a0",  # whitespace only, ASCII and not
    "\x00",
    "a\x00b\x01c\x7f",  # NUL and control characters inside a word
    "Hello, World!",
    "the quick brown fox jumps over the lazy dog again and again",
    "👍🏽 family: 👨‍👩‍👧‍👦 🇫🇷 ☃",  # emoji, modifiers, ZWJ sequences, flags
    "e\u0301\u0301\u0301 nai\u0308ve café Ω≈ç√ Å",  # combining marks, precomposed and not
    "İstanbul ǅ ß ﬁ ǈ",  # case mappings that change length
    "日本語のテキストと中文，한국어",  # CJK (split per character), Hangul
    "مرحبا بالعالم שלום",  # right-to-left scripts
    "\u200b\u200d\ufeff\u2060",  # zero-width characters only
    "[CLS] [SEP] [PAD] [MASK] [UNK] <s> </s> <pad> <mask>",  # special-token strings in the text
    "x" * 150,  # one word longer than WordPiece's 100 characters: [UNK]
    "don't stop-believing... (really)?! 3.14159 #1 @home",
]


def _unicode_soup(n: int, seed: int) -> str:
    """n characters drawn from letters, marks, CJK, emoji, punctuation and spaces (seeded)."""
    rng = np.random.default_rng(seed)
    pools = ["abcdefghij", "éüñçå", "\u0301\u0308", "日本語中文字", "👍🏽🇫🇷", ".,!?-'", "   \n"]
    return "".join(rng.choice(list(pools[i])) for i in rng.integers(0, len(pools), size=n))


LONG_TEXTS = [
    "word " * 2000,  # 10k characters, 2000 tokens
    _unicode_soup(10_000, seed=0),  # 10k characters, thousands of tokens
    "a" * 10_000,  # 10k characters, one [UNK]
]


@pytest.fixture(scope="module")
def tokenizer_dir(real_model_dir, make_bert_dir, make_distilbert_dir, make_mpnet_dir, tmp_path_factory):
    """``get(kind) -> Path``: the model directory of each tokenizer kind (the vocab-only one a private copy)."""
    dirs: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in dirs:
            if kind == "bert-real":
                dirs[kind] = Path(real_model_dir)
            elif kind == "bert-tiny":
                dirs[kind] = make_bert_dir("tiny")
            elif kind == "distilbert":
                dirs[kind] = make_distilbert_dir("tiny")
            elif kind == "mpnet":
                dirs[kind] = make_mpnet_dir("tiny")
            else:  # the BERT tokenizer minibert and transformers build from vocab.txt + tokenizer_config.json
                target = tmp_path_factory.mktemp("vocab-only") / "model"
                shutil.copytree(make_bert_dir("tiny"), target)
                (target / "tokenizer.json").unlink()
                dirs[kind] = target
        return dirs[kind]

    return get


@pytest.fixture(scope="module")
def tokenizers(tokenizer_dir) -> Callable[[str], tuple[BatchTokenizer, PreTrainedTokenizerBase]]:
    """``get(kind) -> (minibert's BatchTokenizer, transformers' AutoTokenizer)`` for one directory, loaded once."""
    from transformers import AutoTokenizer

    loaded: dict[str, tuple[BatchTokenizer, PreTrainedTokenizerBase]] = {}

    def get(kind: str) -> tuple[BatchTokenizer, PreTrainedTokenizerBase]:
        if kind not in loaded:
            model_dir = tokenizer_dir(kind)
            loaded[kind] = (BatchTokenizer(load_config(model_dir)), AutoTokenizer.from_pretrained(model_dir))
        return loaded[kind]

    return get


def transformers_pairs(
    hf: PreTrainedTokenizerBase, queries: Sequence[str], documents: Sequence[str], max_length: int
) -> PairTokens:
    """What transformers gives CrossEncoder's model for these pairs (token types 0 where it returns none), and
    which pairs it cut (their untruncated encoding is longer)."""
    out = hf(list(queries), list(documents), truncation=True, max_length=max_length)
    input_ids = [list(ids) for ids in out["input_ids"]]
    if "token_type_ids" in out:
        token_type_ids = [list(types) for types in out["token_type_ids"]]
    else:
        token_type_ids = [[0] * len(ids) for ids in input_ids]
    whole = hf(list(queries), list(documents), truncation=False)["input_ids"]
    truncated = [len(full) > len(ids) for full, ids in zip(whole, input_ids, strict=True)]
    return PairTokens(input_ids, token_type_ids, truncated)


def assert_same_pairs(
    ours: PairTokens, expected: PairTokens, queries: Sequence[str], documents: Sequence[str], what: str
) -> None:
    """Pair by pair: ids, token types and the truncated flag equal; the message names the first pairs that differ."""
    assert len(ours.input_ids) == len(ours.token_type_ids) == len(ours.truncated) == len(queries)
    wrong = []
    for i, (q, d) in enumerate(zip(queries, documents, strict=True)):
        got = (ours.input_ids[i], ours.token_type_ids[i], ours.truncated[i])
        want = (expected.input_ids[i], expected.token_type_ids[i], expected.truncated[i])
        if got != want:
            wrong.append(f"pair {i} ({q[:30]!r}…, {d[:30]!r}…): minibert {got}, transformers {want}")
    assert not wrong, f"{what}: {len(wrong)} of {len(queries)} pairs differ:\n" + "\n".join(wrong[:5])


def _grid(max_length: int) -> tuple[list[str], list[str]]:
    """Every short text with every short text, and the long texts with short ones both ways and with each other.

    ``tokenizers`` also builds every overflow window of a cut pair (transformers pays the same), the product of
    the two parts' windows when both are cut: below max_length 16 the long texts meet only the empty text and a
    one-token one, and each other only at 512.
    """
    pairs = [(q, d) for q in SHORT_TEXTS for d in SHORT_TEXTS]
    partners = SHORT_TEXTS[::3] if max_length >= 16 else ["", "x" * 150]
    pairs += [pair for long in LONG_TEXTS for short in partners for pair in ((long, short), (short, long))]
    if max_length >= 512:
        pairs += [(a, b) for a in LONG_TEXTS for b in LONG_TEXTS]
    return [q for q, _ in pairs], [d for _, d in pairs]


def assert_grid_as_transformers(ours, hf, max_length: int, what: str) -> None:
    """Every pair of the grid for `max_length` tokenized by `ours` as by transformers' `hf`."""
    queries, documents = _grid(max_length)
    assert_same_pairs(
        ours.pair_tokens(queries, documents, max_length),
        transformers_pairs(hf, queries, documents, max_length),
        queries,
        documents,
        what,
    )


@pytest.mark.parametrize("max_length", MAX_LENGTHS)
@pytest.mark.parametrize("kind", [kind for kind in TOKENIZER_KINDS if kind != "bert-tiny"])  # bert-real's tokenizer
def test_pairs_equal_transformers_pair_by_pair(tokenizers, kind, max_length):
    ours, hf = tokenizers(kind)
    assert_grid_as_transformers(ours, hf, max_length, f"{kind}, max_length {max_length}")


@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_default_max_length_is_max_seq_length(tokenizers, kind):
    ours, hf = tokenizers(kind)
    queries, documents = _grid(ours.max_seq_length)
    expected = transformers_pairs(hf, queries, documents, ours.max_seq_length)
    assert_same_pairs(ours.pair_tokens(queries, documents), expected, queries, documents, f"{kind}, default")
    assert any(expected.truncated)  # the default really cuts the long pairs


def _truncation_case(types: list[int], whole_types: list[int], max_length: int) -> str:
    """Which part of a BERT pair transformers cut, from its token types with and without truncation."""
    if max_length < 3:  # below [CLS] [SEP] [SEP]
        return "below the special tokens, longer than max_length" if len(types) > max_length else "below, fits"
    q_kept, d_kept = types.count(0) - 2, types.count(1) - 1  # less [CLS] … [SEP] and … [SEP]
    q_all, d_all = whole_types.count(0) - 2, whole_types.count(1) - 1
    if q_kept == d_kept == 0 and q_all and d_all:
        return "both emptied"
    return {(False, False): "none", (True, False): "query", (False, True): "document", (True, True): "both"}[
        (q_kept < q_all, d_kept < d_all)
    ]


def test_the_grid_reaches_every_truncation_case(tokenizers):
    """The cases the comparison must cover all occur in it (all-MiniLM-L6-v2's tokenizer, as transformers cuts):
    no cut, only the query cut, only the document cut, both cut, both emptied (max_length = the 3 special tokens),
    and nothing cut although the pair is longer than max_length (max_length below them)."""
    _, hf = tokenizers("bert-real")
    seen = set()
    for max_length in (1, 2, 3, 4, 5, 9, 17, 64, 512):
        queries, documents = _grid(max_length)
        cut = transformers_pairs(hf, queries, documents, max_length).token_type_ids
        whole = hf(queries, documents, truncation=False)["token_type_ids"]
        seen |= {_truncation_case(t, w, max_length) for t, w in zip(cut, whole, strict=True)}
    expected = {"none", "query", "document", "both", "both emptied", "below the special tokens, longer than max_length"}
    assert expected <= seen, f"cases never reached: {expected - seen}"


def test_longest_first_splits_as_tokenizers_does(tokenizers):
    """The split itself, by hand (M = max_length − 3 content tokens): the shorter part is kept when it takes at most
    half of M, else ⌊M/2⌋ goes to the shorter and ⌈M/2⌉ to the longer, the document on a tie."""
    ours, _ = tokenizers("bert-real")
    a, b = ours.pair_tokens(["a"], ["b"], 16).input_ids[0][1:-1:2]  # the ids of "a" and "b"

    def split(n_query: int, n_document: int, max_length: int) -> tuple[int, int]:
        ids = ours.pair_tokens(["a " * n_query], ["b " * n_document], max_length).input_ids[0]
        return ids.count(a), ids.count(b)

    assert split(10, 8, 8) == (3, 2)  # M = 5, both cut: the longer query gets ⌈5/2⌉
    assert split(8, 10, 8) == (2, 3)
    assert split(9, 9, 8) == (2, 3)  # a tie: the document gets the extra one
    assert split(2, 9, 8) == (2, 3)  # the query takes ≤ M/2: kept whole, the document gets the rest
    assert split(3, 9, 8) == (2, 3)  # 3 > 5/2: halves
    assert split(9, 2, 8) == (3, 2)
    assert split(4, 1, 8) == (4, 1)  # fits
    assert split(4, 4, 3) == (0, 0)  # M = 0: both emptied
    assert split(4, 4, 2) == (4, 4)  # below the 3 special tokens: nothing is cut
    assert ours.pair_tokens(["a " * 4], ["b " * 4], 2).truncated == [False]


def test_token_types_follow_the_tokenizer(tokenizers):
    """BERT: 0 up to and with the first [SEP], 1 after; DistilBERT and MPNet (no token_type_ids in transformers'
    output): 0. MPNet's pair is <s> q </s></s> d </s>."""
    for kind in ("bert-real", "bert-vocab-only"):
        ours, _ = tokenizers(kind)
        tokens = ours.pair_tokens(["hello there"], ["general kenobi"], 64)
        first_sep = tokens.input_ids[0].index(102)
        assert tokens.token_type_ids[0] == [0] * (first_sep + 1) + [1] * (len(tokens.input_ids[0]) - first_sep - 1)
    for kind in ("distilbert", "mpnet"):
        ours, hf = tokenizers(kind)
        assert "token_type_ids" not in hf(["q"], ["d"])
        tokens = ours.pair_tokens(["hello there"], ["general kenobi"], 64)
        assert tokens.token_type_ids[0] == [0] * len(tokens.input_ids[0])
    ours, _ = tokenizers("mpnet")
    assert ours.pair_special_tokens == 4
    ids = ours.pair_tokens(["q"], ["d"]).input_ids[0]
    assert ids[0] == 0 and ids[2:4] == [2, 2] and ids[-1] == 2 and len(ids) == 6


@pytest.mark.parametrize("kind", ["bert-real", "distilbert", "mpnet"])
def test_sentence_transformers_preprocess_gives_the_same_pairs(tokenizer_dir, tokenizers, kind):
    """The call CrossEncoder makes (Transformer.preprocess on (query, document) tuples, padded): the same real
    tokens and token types at each max_length."""
    from sentence_transformers.base.modules.transformer import Transformer

    ours, _ = tokenizers(kind)
    module = Transformer(str(tokenizer_dir(kind)))
    for max_length in (3, 5, 17, 64):
        queries, documents = _grid(max_length)
        features = module.preprocess(list(zip(queries, documents, strict=True)), max_length=max_length)
        mask = features["attention_mask"].numpy().astype(bool)  # [B, T]
        padded_ids = features["input_ids"].numpy()
        padded_types = features["token_type_ids"].numpy() if "token_type_ids" in features else np.zeros_like(mask)
        tokens = ours.pair_tokens(queries, documents, max_length)
        expected = PairTokens(
            [row[m].tolist() for row, m in zip(padded_ids, mask, strict=True)],
            [row[m].tolist() for row, m in zip(padded_types, mask, strict=True)],
            tokens.truncated,  # preprocess does not say which pairs it cut (compared with transformers above)
        )
        assert_same_pairs(tokens, expected, queries, documents, f"{kind} preprocess, max_length {max_length}")


def _edited_copy(source: Path, target: Path, **tokenizer_config) -> Path:
    shutil.copytree(source, target)
    path = target / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    for key, value in tokenizer_config.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    path.write_text(json.dumps(cfg))
    return target


@pytest.mark.parametrize(
    ("kind", "edit"),
    [
        ("bert-tiny", {"truncation_side": "left"}),  # cut from the start of each part
        ("bert-tiny", {"model_input_names": ["input_ids", "attention_mask"]}),  # no token types returned
        ("distilbert", {"model_input_names": ["input_ids", "token_type_ids", "attention_mask"]}),
        ("distilbert", {"tokenizer_class": None}),  # AutoTokenizer then picks BertTokenizer: token types 0 / 1
        ("mpnet", {"tokenizer_class": None}),  # … and MPNetTokenizer here: none
    ],
)
def test_tokenizer_config_settings_are_followed(tokenizer_dir, tmp_path, kind, edit):
    from transformers import AutoTokenizer

    model_dir = _edited_copy(tokenizer_dir(kind), tmp_path / "model", **edit)
    ours, hf = BatchTokenizer(load_config(model_dir)), AutoTokenizer.from_pretrained(model_dir)
    for max_length in (4, 9, 33, 128):
        assert_grid_as_transformers(ours, hf, max_length, f"{kind} {edit}, max_length {max_length}")


def test_a_bad_truncation_side_is_refused_when_pairs_are_asked_for(tokenizer_dir, tmp_path):
    model_dir = _edited_copy(tokenizer_dir("bert-tiny"), tmp_path / "model", truncation_side="middle")
    ours = BatchTokenizer(load_config(model_dir))  # single texts do not read it
    assert ours(["still fine"]).lengths.tolist() == [4]
    with pytest.raises(ModelLoadError, match=r"tokenizer_config\.json: 'truncation_side' must be 'left' or 'right'"):
        ours.pairs(["q"], ["d"])


text_chars = st.sampled_from([*"abcdefgh ijk.,!?'-\t\n\x00éü\u0301日本👍\u200b", "[SEP]", "</s>", "word "])
hostile_text = st.lists(text_chars, max_size=60).map("".join)


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pairs=st.lists(st.tuples(hostile_text, hostile_text), min_size=1, max_size=8),
    max_length=st.integers(1, 48),
    kind=st.sampled_from(["bert-real", "mpnet"]),
)
def test_arbitrary_pairs_equal_transformers(tokenizers, pairs, max_length, kind):
    ours, hf = tokenizers(kind)
    queries, documents = [q for q, _ in pairs], [d for _, d in pairs]
    tokens = ours.pair_tokens(queries, documents, max_length)
    assert_same_pairs(tokens, transformers_pairs(hf, queries, documents, max_length), queries, documents, kind)
    if max_length >= ours.pair_special_tokens:
        assert all(len(ids) <= max_length for ids in tokens.input_ids)
        assert all(len(ids) == max_length for ids, cut in zip(tokens.input_ids, tokens.truncated, strict=True) if cut)


def test_pairs_packs_ids_and_token_types(tokenizers):
    ours, _ = tokenizers("bert-real")
    queries, documents = _grid(17)
    tokens = ours.pair_tokens(queries, documents, 17)
    batch = ours.pairs(queries, documents, 17)
    assert isinstance(batch, PackedBatch) and batch.pad_token_id == ours.pad_token_id
    assert batch.lengths.tolist() == [len(ids) for ids in tokens.input_ids]
    assert batch.input_ids.tolist() == [i for ids in tokens.input_ids for i in ids]
    assert batch.token_type_ids.tolist() == [t for types in tokens.token_type_ids for t in types]
    assert batch.token_type_ids.any()  # the documents' 1s made it in
    padded = batch.to_padded()
    for row, types in enumerate(tokens.token_type_ids):
        assert padded.token_type_ids[row, : len(types)].tolist() == types
        assert not padded.token_type_ids[row, len(types) :].any()
    empty = ours.pairs([], [])
    assert empty.lengths.tolist() == [] and empty.input_ids.shape == (0,)


def test_from_ids_takes_token_types_of_the_same_shape():
    batch = PackedBatch.from_ids([[1, 2, 3], [], [4, 5]], pad_token_id=0, token_type_ids=[[0, 0, 1], [], [0, 1]])
    assert batch.token_type_ids.tolist() == [0, 0, 1, 0, 1] and batch.token_type_ids.dtype == np.int64
    assert PackedBatch.from_ids([[1, 2], [3]], pad_token_id=0).token_type_ids.tolist() == [0, 0, 0]
    for wrong in ([[0, 0, 1], [0]], [[0, 0], [], [0, 1]], [[0, 0, 1], []]):
        with pytest.raises(ValueError, match="token_type_ids must be one sequence per id sequence and as long"):
            PackedBatch.from_ids([[1, 2, 3], [], [4, 5]], pad_token_id=0, token_type_ids=wrong)


def test_bad_arguments_are_refused_by_name(tokenizers):
    ours, _ = tokenizers("bert-real")
    with pytest.raises(InputError, match="one document per query: 2 queries, 1 documents"):
        ours.pair_tokens(["a", "b"], ["c"])
    for value, error in ((0, InputError), (-3, InputError), (True, InputTypeError), (2.5, InputTypeError)):
        with pytest.raises(error, match="max_length must be a positive integer"):
            ours.pairs(["a"], ["b"], value)


def test_threads_share_one_tokenizer_across_max_lengths(tokenizers):
    """More max_lengths than the tokenizer keeps copies for, from 8 threads at once: each call's pairs are the
    ones it gets alone."""
    ours, _ = tokenizers("bert-real")
    queries = [*SHORT_TEXTS, LONG_TEXTS[1], ""] * 4
    documents = [*SHORT_TEXTS[::-1], "", LONG_TEXTS[0]] * 4
    max_lengths = [5, 9, 17, 33, 64, 100, 128, 200, 256, 300, 400, 512] * 3
    alone = {n: ours.pair_tokens(queries, documents, n) for n in set(max_lengths)}
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: ours.pair_tokens(queries, documents, n), max_lengths))
    for n, result in zip(max_lengths, results, strict=True):
        assert result == alone[n], f"max_length {n} differs under threads"


# ------------------------------------------------------------------------------ two long texts in one pair


def _long_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Pairs of two texts far past the shortcut's length (about 8 characters per max_length token), each made of
    words, accents, CJK, a word past max_input_chars_per_word, special-token strings and whitespace runs."""
    rng = np.random.default_rng(seed)
    words = ["the", "seasons", "tilt", "unaffable", "playing", "Ünïcödé", "中文", "naïve", "café", "x" * 120,
             "[SEP]", " \t ", "e\u0301", "🌍", _unicode_soup(20, seed)]  # fmt: skip
    texts = [" ".join(rng.choice(words, size=int(rng.integers(40, 400)))) for _ in range(2 * n)]
    return texts[0::2], texts[1::2]


@pytest.mark.parametrize("kind", ["bert-real", "mpnet", "distilbert"])
@pytest.mark.parametrize("max_length", [9, 16, 17, 33, 64])
def test_two_long_texts_are_cut_before_pairing_and_equal_transformers(tokenizers, kind, max_length):
    """Both texts long: each is cut to the prefix of the tokens longest_first keeps before the pair is encoded
    (the whole pair would make tokenizers build every combination of the two texts' overflow windows: 40,000-word
    texts took 43 s and 12 GB here). The result must be transformers' exactly."""
    ours, hf = tokenizers(kind)
    queries, documents = _long_pairs(12, seed=max_length)
    assert min(map(len, queries + documents)) > 8 * max_length  # the shortcut's condition
    assert_same_pairs(ours.pair_tokens(queries, documents, max_length),
                      transformers_pairs(hf, queries, documents, max_length), queries, documents, kind)  # fmt: skip


_PEAK_RSS = """
import re, sys
from minibert.loading.config import load_config
from minibert.loading.tokenizer import BatchTokenizer
words = "the seasons come from the tilt of earth axis relative to its orbit".split()
text = " ".join(words[i % len(words)] for i in range(int(sys.argv[2])))
BatchTokenizer(load_config(sys.argv[1])).pair_tokens([text], [text[::-1]], 512)
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())[1]) // 1024)  # this process's peak
"""


def test_a_pair_of_two_long_texts_costs_memory_linear_in_them(tokenizer_dir):
    """20,000 words on each side, max_length 512: before the texts were cut before pairing, the pair encoder's
    overflow windows took 3 GB here (and 12 GB at 40,000 words); cut, the process peaks near 100 MB."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(tokenizer_dir("bert-real")), "20000"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 600, f"peak RSS {done.stdout.strip()} MB"


@pytest.mark.parametrize("room", [0, 1, 2, 7, 8, 33])
def test_longest_first_keeps_what_tokenizers_keeps(tokenizers, room):
    """Against the tokenizers library itself: 'a' repeated n_query times with 'b' repeated n_document times, one
    token each, counted after its own longest_first truncation to room + the special tokens."""
    from minibert.loading.tokenizer import longest_first

    ours, hf = tokenizers("bert-real")
    sizes = [(n, m) for n in range(room + 4) for m in range(room + 4)]
    out = hf([" a" * n for n, _ in sizes], [" b" * m for _, m in sizes], truncation="longest_first",
             max_length=room + ours.pair_special_tokens)  # fmt: skip
    a, b = hf.convert_tokens_to_ids(["a", "b"])
    for (n, m), ids in zip(sizes, out["input_ids"], strict=True):
        assert longest_first(n, m, room) == (ids.count(a), ids.count(b)), (n, m, room)
