"""The input battery: whatever users paste into encode() gives finite embeddings of the documented shape, or a
minibert exception (a TypeError / ValueError too) whose message says what to do.

Documented shapes: a str gives [d]; a list-like of n str gives [n, d] float32 in input order; ``[]`` gives [0, d].
Texts past max_seq_length tokens are truncated; long texts are tokenized from a prefix (minibert.loading.tokenizer).
"""

from __future__ import annotations

import time
import unicodedata

import numpy as np
import pytest

import minibert
from minibert import InputError, InputTypeError, MinibertError
from minibert.testing import assert_close

D = 384  # all-MiniLM-L6-v2


@pytest.fixture(scope="module")
def model(real_model_dir):
    return minibert.SentenceTransformer(real_model_dir)


@pytest.fixture(scope="module")
def reference(real_model_dir):
    from sentence_transformers import SentenceTransformer as Reference

    return Reference(str(real_model_dir), device="cpu")


def _generator():
    yield from ("first", "second", "third")


# --------------------------------------------------------------------------- inputs that must be embedded

# (case id, input, expected shape); every one must come back finite, float32
ACCEPTED = [
    ("empty list", [], (0, D)),
    ("empty tuple", (), (0, D)),
    ("empty string", "", (D,)),
    ("list of one empty string", [""], (1, D)),
    ("whitespace only", " \t\n\r\u3000\u00a0", (D,)),
    ("a str gives one vector", "what is a sentence embedding", (D,)),
    ("a tuple", ("a", "b"), (2, D)),
    ("a generator", _generator(), (3, D)),
    ("a 1-D array of str", np.array(["alpha", "beta"]), (2, D)),
    ("a 1-D object array of str", np.array(["alpha", "beta", "gamma"], dtype=object), (3, D)),
    ("a 0-length array", np.array([], dtype=str), (0, D)),
    ("control characters", "bell\x07 escape\x1b[31m red\x1b[0m back\x08space form\x0cfeed", (D,)),
    ("NUL bytes", "a\x00b\x00\x00c", (D,)),
    ("only NUL bytes", "\x00" * 50, (D,)),
    ("C1 controls and DEL", "\x7f\x80\x85\x9f text", (D,)),
    ("right-to-left text", "مرحبا بالعالم — שלום עולם", (D,)),
    ("bidi overrides and marks", "\u202eevil\u202c \u200fRLM\u200e \u2067isolate\u2069", (D,)),
    ("emoji ZWJ, flags, skin tones, keycaps", "👨‍👩‍👧‍👦 🇫🇷🇯🇵 👍🏽 1️⃣ 🏳️‍🌈", (D,)),
    ("a long run of combining marks", "e" + "\u0301" * 5000, (D,)),
    ("zero-width characters only", "\u200b\u200c\u200d\u2060\ufeff", (D,)),
    ("Unicode non-characters", "\ufdd0\ufffe\uffff\U0001fffe\U0010ffff", (D,)),
    ("private use", "\ue000\uf8ff\U000f0000", (D,)),
    ("line and paragraph separators", "one\u2028two\u2029three\r\nfour\x85five", (D,)),
    ("one 100 KB word", "x" * 100_000, (D,)),
    ("100 KB of punctuation", "!?." * 35_000, (D,)),
    ("100 KB of CJK", "東京は日本の首都です。" * 10_000, (D,)),
    ("mixed scripts in a list", ["Ελληνικά", "Русский", "हिन्दी", "ไทย", "한국어", ""], (6, D)),
]


@pytest.mark.parametrize(("case", "sentences", "shape"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_input_gives_finite_embeddings_of_the_documented_shape(model, case, sentences, shape):
    out = model.encode(sentences)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32, case
    assert out.shape == shape, f"{case}: shape {out.shape}, expected {shape}"
    assert np.isfinite(out).all(), f"{case}: non-finite values"


def test_containers_give_the_rows_a_list_gives(model):
    texts = ["first", "second", "third"]
    expected = model.encode(texts)
    for same in (tuple(texts), _generator(), np.array(texts), np.array(texts, dtype=object), iter(texts)):
        assert_close(model.encode(same), expected, atol=0, what=type(same).__name__)


def test_pandas_series_is_accepted_in_its_order(model):
    pd = pytest.importorskip("pandas")
    series = pd.Series(["third", "first", "second"], index=[10, 3, 7])
    assert_close(model.encode(series), model.encode(["third", "first", "second"]), atol=0, what="Series")


def _category_sample(category: str, count: int = 24) -> str:
    """Up to `count` code points of one general category, spread over the whole code space, joined."""
    points = [c for c in range(0x110000) if unicodedata.category(chr(c)) == category]
    step = max(1, len(points) // count)
    return "".join(chr(c) for c in points[::step][:count])


CATEGORIES = [
    "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",
    "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn",
]  # fmt: skip


@pytest.fixture(scope="module")
def category_texts() -> dict[str, str]:
    return {category: _category_sample(category) for category in CATEGORIES}


def test_every_unicode_category_is_embedded_as_sentence_transformers_does(model, reference, category_texts):
    """Each general category but Cs (surrogates, below): finite, and equal to the live reference."""
    texts = [category_texts[c] for c in CATEGORIES]
    assert all(texts)
    ours = model.encode(texts)
    assert np.isfinite(ours).all()
    assert_close(ours, reference.encode(texts), atol=1e-5, what="one text per Unicode category")


def test_surrogate_category_is_refused_by_name(model):
    surrogates = _category_sample("Cs")
    with pytest.raises(InputError, match=r"lone surrogate \(U\+D800 at character 0\)"):
        model.encode(surrogates)


# ------------------------------------------------------------------------------------ inputs that must fail

# (case id, input, exception, pattern the message must match)
REFUSED = [
    ("None", None, InputTypeError, r"sentences is None.*pass '' for an empty text"),
    ("bytes", b"bytes are not text", InputTypeError, r"sentences is bytes.*decode it first"),
    ("bytearray", bytearray(b"abc"), InputTypeError, r"sentences is bytearray.*decode"),
    ("memoryview", memoryview(b"abc"), InputTypeError, r"sentences is memoryview.*decode"),
    ("an int", 42, InputTypeError, r"sentences is int.*str\(x\)"),
    ("a float", 3.5, InputTypeError, r"sentences is float"),
    ("a dict", {"text": "a dict"}, InputTypeError, r"dict; pass a list of str, e\.g\. list\(d\.values\(\)\)"),
    ("a set", {"a", "b"}, InputTypeError, r"set, which has no order.*sorted"),
    ("a frozenset", frozenset({"a"}), InputTypeError, r"frozenset, which has no order"),
    ("None item", ["ok", "fine", None], InputTypeError, r"sentences\[2\] is None"),
    ("int item", ["ok", 7], InputTypeError, r"sentences\[1\] is int"),
    ("bytes item", [b"x"], InputTypeError, r"sentences\[0\] is bytes.*decode"),
    ("NaN item", ["ok", float("nan")], InputTypeError, r"sentences\[1\].*NaN is usually a missing value.*fillna"),
    ("nested list", [["a", "b"], ["c"]], InputTypeError, r"sentences\[0\] is list.*flat list of str"),
    ("tuple item", ["a", ("b",)], InputTypeError, r"sentences\[1\] is tuple.*flatten"),
    ("2-D array", np.array([["a", "b"], ["c", "d"]]), InputError, r"2-D array of shape \(2, 2\).*ravel"),
    ("0-D array", np.array("one"), InputError, r"0-D array.*item\(\)"),
    ("array of bytes", np.array([b"a", b"b"]), InputTypeError, r"dtype \|S1.*astype\(str\)"),
    ("array of ints", np.arange(3), InputTypeError, r"dtype int64, expected str"),
    ("array of floats", np.ones(2), InputTypeError, r"dtype float64"),
    ("lone high surrogate", "abc\ud800", InputError, r"lone surrogate \(U\+D800 at character 3\).*clean the text"),
    ("lone low surrogate item", ["fine", "x\udfffy"], InputError, r"sentences\[1\] contains a lone surrogate"),
]


@pytest.mark.parametrize(("case", "sentences", "error", "pattern"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_input_raises_a_minibert_error_that_says_what_to_do(model, case, sentences, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        model.encode(sentences)
    assert isinstance(info.value, MinibertError)
    assert isinstance(info.value, TypeError if error is InputTypeError else ValueError)


def test_a_dataframe_is_refused_with_the_column_hint(model):
    pd = pytest.importorskip("pandas")
    with pytest.raises(InputError, match=r"2-D DataFrame.*df\['text'\]"):
        model.encode(pd.DataFrame({"text": ["a", "b"]}))


def test_a_series_with_a_missing_value_names_its_position(model):
    pd = pytest.importorskip("pandas")
    with pytest.raises(InputTypeError, match=r"sentences\[1\] is float.*fillna"):
        model.encode(pd.Series(["a", None, "c"]))


def test_nothing_is_encoded_before_a_bad_item_is_found(model, monkeypatch):
    """A bad item late in a long list is reported before any batch runs (no wasted work, nothing half-done)."""
    calls = []
    monkeypatch.setattr(model, "embed", lambda batch, normalize=None: calls.append(batch))
    with pytest.raises(InputTypeError, match=r"sentences\[999\]"):
        model.encode(["fine"] * 999 + [None])
    assert calls == []


@pytest.mark.parametrize(
    "batch_size, error",
    [(0, InputError), (-1, InputError), (2.5, InputTypeError), ("8", InputTypeError), (True, InputTypeError),
     (None, InputTypeError)],
)  # fmt: skip
def test_bad_batch_size_is_refused_by_name(model, batch_size, error):
    with pytest.raises(error, match="batch_size must be a positive integer"):
        model.encode(["a"], batch_size=batch_size)


@pytest.mark.parametrize("truncate_dim, error", [(0, InputError), (-3, InputError), (1.5, InputTypeError)])
def test_bad_truncate_dim_is_refused_by_name(model, truncate_dim, error):
    with pytest.raises(error, match="truncate_dim must be a positive integer"):
        model.encode(["a"], truncate_dim=truncate_dim)


# --------------------------------------------------------------------------------------------- long texts


class _RecordingTokenizer:
    """Wraps a tokenizers.Tokenizer and records how many characters each call was given."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.chars: list[int] = []

    def encode(self, text, *args, **kwargs):
        self.chars.append(len(text))
        return self._inner.encode(text, *args, **kwargs)

    def encode_batch(self, texts, *args, **kwargs):
        self.chars.extend(len(t) for t in texts)
        return self._inner.encode_batch(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.mark.parametrize(
    "unit",
    ["lorem ipsum dolor sit amet ", "東京は日本の首都です。", "word" * 40 + " ", "a,b;c.d!"],
    ids=["prose", "cjk", "long words", "punctuation"],
)
def test_long_strings_are_truncated_from_a_bounded_prefix(model, monkeypatch, unit):
    """1 MB and 10 MB strings: the tokenizer reads the same prefix of both (no work that grows with the text past
    what truncation keeps), and the ids are those the tokenizers library gives a 100 KB head of the text whole."""
    recorder = _RecordingTokenizer(model.tokenizer._tokenizer)
    prefix_chars = {}
    for megabytes in (1, 10):
        text = unit * (megabytes * 1_000_000 // len(unit) + 1)
        monkeypatch.setattr(model.tokenizer, "_tokenizer", recorder)
        recorder.chars.clear()
        start = time.perf_counter()
        embedding = model.encode(text)
        elapsed = time.perf_counter() - start
        prefix_chars[megabytes] = max(recorder.chars)
        monkeypatch.undo()
        assert embedding.shape == (D,) and np.isfinite(embedding).all()
        ids = model.tokenize([text]).input_ids
        whole_head = model.tokenizer._tokenizer.encode(text[:100_000]).ids  # the Rust tokenizer, no prefix logic
        assert ids.tolist() == whole_head and len(whole_head) == model.max_seq_length
        # a guard against quadratic work, not a benchmark: what is left is a linear scan of the text
        assert elapsed < 10, f"encoding a {megabytes} MB string took {elapsed:.1f} s"
    assert prefix_chars[10] == prefix_chars[1] < 100_000, f"characters the tokenizer read: {prefix_chars}"


# ------------------------------------------------------------------------------ constructor and progress


def test_cuda_without_a_gpu_is_refused_clearly(real_model_dir):
    with pytest.raises(minibert.BackendUnavailableError, match=r"no CUDA GPU.*use device='cpu'"):
        minibert.SentenceTransformer(real_model_dir, device="cuda")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "onnx"}, "backend='onnx' is not one of numpy, triton"),
        ({"backend": "numpy", "device": "cuda"}, "the NumPy backend runs on device='cpu'"),
        ({"dtype": "float16"}, "the NumPy backend runs on device='cpu' in float32"),
    ],
)
def test_bad_backend_arguments(real_model_dir, kwargs, message):
    with pytest.raises(minibert.InputError, match=message):
        minibert.SentenceTransformer(real_model_dir, **kwargs)


@pytest.mark.parametrize(
    ("device", "error", "message"),
    [
        ("nonsense", InputError, r"device='nonsense' is not a device name torch knows.*'cuda:N'"),
        ("cuda:x", InputError, r"device='cuda:x' is not a device name torch knows"),
        (5, InputTypeError, r"device is int, expected a str such as 'cpu'"),
        ("mps", minibert.BackendUnavailableError, r"device='mps' is not supported by the Triton backend"),
    ],
)
def test_bad_device_is_a_minibert_error(real_model_dir, device, error, message):
    with pytest.raises(error, match=message):
        minibert.SentenceTransformer(real_model_dir, device=device)


def test_a_torch_device_is_taken_by_its_name(real_model_dir):
    torch = pytest.importorskip("torch")
    assert minibert.SentenceTransformer(real_model_dir, device=torch.device("cpu")).backend == "numpy"


def test_progress_bar_follows_the_flag(model, capsys):
    model.encode(["a", "b", "c"], batch_size=1, show_progress_bar=True)
    assert "3/3" in capsys.readouterr().err
    model.encode(["a", "b", "c"], batch_size=1, show_progress_bar=False)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------ the sentence-transformers 5/6 arguments of encode

# (case id, encode keyword arguments, exception, pattern the message must match)
REFUSED_ARGUMENTS = [
    ("unknown precision", {"precision": "int4"}, InputError, r"precision 'int4' is not supported; pass one of"),
    ("precision not a str", {"precision": 8}, InputTypeError, r"precision must be a str, one of 'float32'"),
    ("output_value None", {"output_value": None}, InputError, r"output_value=None.*not supported; pass 'sentence_emb"),
    ("unknown output_value", {"output_value": "cls"}, InputError, r"output_value 'cls' is not supported; pass"),
    ("output_value not a str", {"output_value": 1}, InputTypeError, r"output_value must be a str"),
    ("prompt not a str", {"prompt": b"query: "}, InputTypeError, r"prompt must be a str.*got bytes"),
    ("unknown prompt_name", {"prompt_name": "passage"}, InputError, r"prompt_name 'passage' is not one of.*'query'"),
    ("prompt_name not a str", {"prompt_name": 0}, InputTypeError, r"prompt_name must be a str, one of 'query'"),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "error", "pattern"), REFUSED_ARGUMENTS, ids=[c[0] for c in REFUSED_ARGUMENTS]
)
def test_bad_encode_arguments_are_refused_by_name_before_any_work(model, monkeypatch, case, kwargs, error, pattern):
    calls = []
    monkeypatch.setattr(model, "embed", lambda batch, normalize=None: calls.append(batch))
    with pytest.raises(error, match=pattern) as info:
        model.encode(["a", "b"], **kwargs)
    assert isinstance(info.value, MinibertError) and "\n" not in str(info.value)
    assert calls == []


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"prompts": ["query: "]}, InputTypeError, r"prompts must be a dict of prompt names to prompt texts"),
        ({"prompts": {"query": None}}, InputTypeError, r"prompts must be a dict .* both str"),
        ({"default_prompt_name": "passage"}, InputError, r"default_prompt_name 'passage' is not one of the prompts"),
        ({"default_prompt_name": 1}, InputTypeError, r"default_prompt_name must be a str"),
        ({"similarity_fn_name": "cos"}, InputError, r"similarity_fn_name 'cos' is not supported; pass one of 'cosine'"),
        ({"similarity_fn_name": 2}, InputTypeError, r"similarity_fn_name must be a str"),
    ],
)
def test_bad_prompt_and_similarity_arguments_to_the_constructor(real_model_dir, kwargs, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        minibert.SentenceTransformer(real_model_dir, **kwargs)
    assert "\n" not in str(info.value)
