"""The tables the tests, the parity report and the GPU check share: model sizes, texts, tolerances, kernel shapes.

Model sizes are those of the random-init embedding models and cross-encoders (:mod:`.models` builds both).

Plain Python values only (no torch, no pytest), so the GPU check can read them with the image's bare ``python3``.
The tolerances are the design's (ARCHITECTURE.md, "Tolerances", says why each is what it is); never loosen one to
make a test pass.
"""

from __future__ import annotations

# Sizes of the random-init BERT models (vocab stays 30522 so the real tokenizer fits).
BERT_SHAPES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
    "tiny-d32": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37),
    "minilm-l6": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "minilm-l12": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536),
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}

# A ragged batch: one word, a sentence, an empty string, and passages past a max_seq_length of 128.
RAGGED = [
    "short",
    "A somewhat longer sentence about sentence embeddings and semantic search.",
    "",
    "Retrieval systems rank passages by the similarity of their embeddings to the query. " * 8,
    "numbers 1 2 3 and symbols #$% mixed with Ünïcödé and 中文",
    "word " * 300,
]

# Sizes of the random-init DistilBERT models (DistilBertConfig's own key names).
DISTILBERT_SHAPES = {
    "tiny": dict(dim=32, n_layers=2, n_heads=4, hidden_dim=37),
    "tiny-d32": dict(dim=64, n_layers=2, n_heads=2, hidden_dim=37),
    "distilbert-base": dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072),
}

# Sizes of the random-init MPNet models (MPNetConfig's key names).
MPNET_SHAPES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
    "tiny-d32": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37),
    "mpnet-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}

# The MPNet vocabulary around the BERT WordPiece entries (minibert.testing.tokenizers).
MPNET_HEAD_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")
MPNET_MASK_TOKEN = "<mask>"
MPNET_VOCAB_SIZE = len(MPNET_HEAD_TOKENS) + 30522 + 1

# The transformers config arguments of each architecture besides its sizes (as the published models have them).
ARCH_CONFIGS = {
    "bert": dict(vocab_size=30522, max_position_embeddings=512),
    "distilbert": dict(vocab_size=30522, max_position_embeddings=512, pad_token_id=0),
    "mpnet": dict(
        vocab_size=MPNET_VOCAB_SIZE,
        max_position_embeddings=514,
        relative_attention_num_buckets=32,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    ),
}
ARCH_SHAPES = {"bert": BERT_SHAPES, "distilbert": DISTILBERT_SHAPES, "mpnet": MPNET_SHAPES}

# Sizes of the random-init ELECTRA cross-encoders (ElectraConfig's key names). ELECTRA's embeddings are
# `embedding_size` wide; when that differs from `hidden_size` the model has ``electra.embeddings_project`` (a Linear
# embedding_size → hidden_size after the embedding LayerNorm), as electra-small has, and none when they are equal,
# as electra-base (cross-encoder/ms-marco-electra-base) has.
ELECTRA_SHAPES = {
    "tiny": dict(embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
    "tiny-unprojected": dict(
        embedding_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
    ),
    "tiny-d16": dict(
        embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
    ),
    "electra-small": dict(
        embedding_size=128, hidden_size=256, num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024
    ),
    "electra-base": dict(
        embedding_size=768, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
}

# The cross-encoders (sequence-classification models, minibert.testing.models.build_cross_encoder_dir): their
# transformers config arguments besides the sizes, and the sizes. BERT's are the embedding models' (MiniLM-L6 is
# cross-encoder/ms-marco-MiniLM-L6-v2's shape); ELECTRA is kept out of ARCH_SHAPES, which lists the embedding models.
CROSS_ENCODER_CONFIGS = {"bert": ARCH_CONFIGS["bert"], "electra": dict(vocab_size=30522, max_position_embeddings=512)}
CROSS_ENCODER_SHAPES = {"bert": BERT_SHAPES, "electra": ELECTRA_SHAPES}

# The activations sentence-transformers' CrossEncoder applies to the logits, as the dotted torch.nn class names its
# configs store (any name not starting with "torch." is ignored unless trust_remote_code).
ACTIVATION_IDENTITY = "torch.nn.modules.linear.Identity"
ACTIVATION_SIGMOID = "torch.nn.modules.activation.Sigmoid"

# The ragged texts every parity check runs on; LONG is past max_seq_length (and, for MPNet, past 128 tokens, so the
# log-spaced relative-position buckets are used).
LONG = "Dense retrieval encodes queries and passages into vectors and ranks passages by similarity. " * 30

# Every (architecture, size, pooling, normalize) combination the model table uses, at the real size,
# plus the tiny size of each architecture.
TABLE_CONFIGS = [
    ("bert", "minilm-l6", "mean", True),  # all-MiniLM-L6-v2, msmarco-MiniLM-L6-cos-v5, multi-qa-MiniLM-L6-cos-v1
    ("bert", "minilm-l12", "mean", True),  # msmarco-MiniLM-L12-cos-v5
    ("bert", "bert-base", "mean", False),  # msmarco-bert-base-dot-v5
    ("bert", "minilm-l6", "cls", False),  # multi-qa-MiniLM-L6-dot-v1
    ("distilbert", "distilbert-base", "mean", True),  # msmarco-distilbert-cos-v5, multi-qa-distilbert-cos-v1
    ("distilbert", "distilbert-base", "mean", False),  # msmarco-distilbert-dot-v5
    ("distilbert", "distilbert-base", "cls", False),  # msmarco-distilbert-base-tas-b, multi-qa-distilbert-dot-v1
    ("mpnet", "mpnet-base", "mean", True),  # multi-qa-mpnet-base-cos-v1
    ("mpnet", "mpnet-base", "cls", False),  # multi-qa-mpnet-base-dot-v1
    *[(arch, "tiny", mode, norm) for arch in ARCH_SHAPES for mode in ("mean", "cls") for norm in (False, True)],
]

# Real weights (all-MiniLM-L6-v2) against sentence-transformers: varied text of every kind.
LONG_PROSE = (
    "The history of the printing press begins with movable type in East Asia and continues with "
    "Gutenberg's press in Mainz, which made books cheaper and spread literacy across Europe. "
) * 12  # ≈ 400 tokens: longer than max_seq_length (256)

VARIED_TEXTS = [
    # short and ordinary
    "Hello world",
    "What is the capital of France?",
    "how do i bake sourdough bread at home",
    "Symptoms of dehydration include thirst, headache and dark urine.",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar.",
    "weather tomorrow",
    "I",
    "OK",
    "?",
    # empty, whitespace, invisible
    "",
    " ",
    "   \t  ",
    "\n\n",
    "\u200b",
    "zero\u200bwidth\u200cjoiner\u200dtest",
    "\ufeffbyte order mark at the start",
    "soft\u00adhyphen",
    " leading and trailing spaces ",
    "tabs\tand\nnewlines\r\ninside",
    # accents and European scripts
    "Café naïve résumé façade",
    "Über die Brücke gehen wir morgen früh.",
    "¿Dónde está la biblioteca? ¡Aquí!",
    "Ærø og Ålborg ligger i Danmark.",
    "Straße, Maß und Fuß",
    "Łódź jest dużym miastem w Polsce.",
    "İstanbul ve Ankara; ǅemal; ﬁnance",
    "Ελληνικά: Η Αθήνα είναι η πρωτεύουσα.",
    "Привет, мир! Москва — столица России.",
    "Київ є столицею України.",
    # CJK, RTL, Indic, Thai
    "東京は日本の首都です。",
    "北京是中国的首都，人口众多。",
    "서울은 한국의 수도입니다.",
    "مرحبا بالعالم، كيف حالك اليوم؟",
    "שלום עולם, מה שלומך?",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีชาวโลก",
    "mixed English and 中文 and العربية in one line",
    # emoji
    "I love pizza 🍕🍕🍕",
    "👨‍👩‍👧‍👦 family emoji with zero-width joiners",
    "🏳️‍🌈 flag sequence and 👍🏽 skin tone",
    "🙂",
    # code, numbers, symbols
    "def f(x):\n    return [i ** 2 for i in range(x)]",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
    '<div class="main">Hello &amp; welcome</div>',
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "https://example.com/path?query=1&other=two#anchor",
    "user@example.com wrote: see C:\\Users\\me\\file.txt",
    "3.14159 2.71828 1e-10 -42 1,000,000 0x1F",
    "2024-01-15T10:30:00Z",
    "$100 €85 £70 ¥10000",
    "a + b = c; x² + y² = z²; ∑ ∫ √ ∞ ≠ ≤",
    "!!!???...,,,;;;",
    "#hashtag @mention",
    # repetition and length
    "word " * 40,
    "a" * 150,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    LONG_PROSE,
    "x " * 600,
    "Passage: " + LONG_PROSE + " The end.",
    # control characters
    "nul\x00byte",
    "bell\x07and\x1bescape",
    "UPPER CASE TEXT SHOULD BE LOWERED",
    "MiXeD cAsE tExT",
]

# The bounds (ARCHITECTURE.md, "Tolerances"): max |Δ| of each path against its reference.
EMBEDDING_ATOL = 1e-5  # normalized embeddings (NumPy, or Triton fp32 with TF32 off) vs sentence-transformers fp32
HIDDEN_ATOL, HIDDEN_RTOL = 1e-4, 1e-5  # last hidden states and unnormalized embeddings vs transformers
HALF_FACTOR = 3.0  # Triton fp16 / bf16: ≤ this × the reference's own fp16 / bf16 error (flash-attention's rule)
SERVED_ATOL = 1e-6  # the server, the corpus job and Ray vs model.encode of the same texts in-process
METRICS_ATOL = 1e-9  # retrieval metrics vs pytrec_eval
# The kernels against a float64 reference on random inputs, by dtype: |Δ| ≤ tol · (1 + |reference|).
KERNEL_TOLERANCES = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}

# The kernels' awkward shapes, for the interpreter tests and the GPU check alike.
AWKWARD_LENGTHS = [1, 2, 7, 63, 64, 65, 129, 257, 512]  # around the 64-wide tiles and block edges, up to BERT's 512
MEDIUM_LENGTHS = [1, 2, 7, 16, 17, 63, 65, 130]  # for the small-tile cases (the interpreter pays per tile)
HEAD_DIMS = [64, 32, 128, 16]  # the head sizes the attention launcher takes: MiniLM / BERT-base, tiny, the bounds
POOLING_WIDTHS = [32, 37, 384, 768]
# Row counts per row width for the row-wise kernels (GELU, LayerNorm): one element, a prime, MiniLM's and BERT-base's
# hidden sizes, one short of a power of two, their FFN sizes; 1 row and non-powers of two, few for the wide rows (the
# interpreter pays per element).
ROWS_BY_WIDTH = {
    1: [1, 37, 300], 37: [1, 7, 65], 384: [1, 7, 65], 768: [1, 5, 33], 1023: [1, 3, 17],
    1536: [1, 3, 9], 3072: [1, 3, 9],
}  # fmt: skip
