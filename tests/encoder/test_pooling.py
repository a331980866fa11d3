"""The packed layout (minibert.packing) and pooling on it (minibert.encoder.pooling) against the padded layout and
the live sentence-transformers Pooling module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minibert.encoder.pooling import pool
from minibert.encoder.reference import position_ids as padded_position_ids
from minibert.packing import PackedBatch
from minibert.testing import assert_close

POOLING_MODES = ["cls", "mean", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]


def _packed(padded_ids: np.ndarray, lengths: list[int], pad: int = 0) -> PackedBatch:
    """Pack the first `lengths[b]` ids of each row of a [B, T] array."""
    ids = np.concatenate([row[:n] for row, n in zip(padded_ids, lengths, strict=True)]).astype(np.int64)
    cu_seqlens = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return PackedBatch(ids, np.zeros_like(ids), cu_seqlens, pad)


def test_to_padded_restores_the_padded_batch():
    rng = np.random.default_rng(0)
    lengths = [5, 1, 7, 3]
    ids = rng.integers(3, 100, size=(4, 7))
    padded = _packed(ids, lengths, pad=1).to_padded()
    mask = np.arange(7)[None, :] < np.array(lengths)[:, None]
    np.testing.assert_array_equal(padded.attention_mask, mask.astype(np.int64))
    np.testing.assert_array_equal(padded.input_ids, np.where(mask, ids, 1))
    assert padded.token_type_ids.shape == (4, 7) and not padded.token_type_ids.any()


def test_packed_position_ids_equal_the_padded_ones():
    # 1 is MPNet's padding id; it also occurs inside the text, where transformers gives it position 1 too
    ids = np.array([[0, 5, 1, 7, 2, 1, 1], [0, 9, 2, 1, 1, 1, 1], [0, 4, 4, 4, 4, 4, 2], [1] * 7])
    lengths = [5, 3, 7, 0]  # an empty sequence last: offsets end at N
    mask = np.arange(7)[None, :] < np.array(lengths)[:, None]
    batch = _packed(ids, lengths, pad=1)
    for padding_idx in (None, 1):
        expected = np.broadcast_to(padded_position_ids(np.where(mask, ids, 1), padding_idx), ids.shape)[mask]
        np.testing.assert_array_equal(batch.position_ids(padding_idx), expected)


@pytest.mark.parametrize("modes", [[mode] for mode in POOLING_MODES] + [POOLING_MODES])
def test_pooling_packed_rows_matches_sentence_transformers_pooling_module(modes):
    from sentence_transformers.sentence_transformer.modules import Pooling

    rng = np.random.default_rng(1)
    lengths = [1, 9, 4, 16, 2]
    B, T, C = len(lengths), max(lengths), 24
    token_embeddings = rng.normal(size=(B, T, C)).astype(np.float32) * 3
    mask = (np.arange(T)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    reference = Pooling(C, pooling_mode=modes)(
        {"token_embeddings": torch.from_numpy(token_embeddings), "attention_mask": torch.from_numpy(mask)}
    )["sentence_embedding"].numpy()
    cu_seqlens = np.concatenate([[0], np.cumsum(lengths)])
    ours = pool(token_embeddings[mask.astype(bool)], cu_seqlens, modes)
    assert ours.dtype == np.float32
    assert_close(ours, reference, atol=1e-6, rtol=1e-6, what=f"pooling {modes}")


def test_a_sequence_without_tokens_pools_to_zeros():
    hidden = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    cu_seqlens = np.array([0, 0, 3, 3, 4])  # empty, 3 tokens, empty, 1 token
    pooled = pool(hidden, cu_seqlens, POOLING_MODES).reshape(4, len(POOLING_MODES), 3)
    assert not pooled[[0, 2]].any()
    np.testing.assert_array_equal(pooled[1, POOLING_MODES.index("cls")], hidden[0])
    np.testing.assert_array_equal(pooled[1, POOLING_MODES.index("lasttoken")], hidden[2])
    np.testing.assert_array_equal(pooled[3, POOLING_MODES.index("mean")], hidden[3])


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_token_ids_given_without_special_tokens_are_wrapped_like_text(arch, make_bert_dir, make_mpnet_dir):
    """BatchTokenizer.with_special_tokens (the server's token-id inputs): [CLS] … [SEP] / <s> … </s> read off the
    tokenizer's own template, truncated to max_seq_length as text is."""
    import minibert

    model = minibert.SentenceTransformer({"bert": make_bert_dir, "mpnet": make_mpnet_dir}[arch]("tiny"))
    tokenizer = model.tokenizer
    for ids in tokenizer.token_ids(["hello world", "", "a somewhat longer sentence, with punctuation!"]):
        assert tokenizer.with_special_tokens(ids[1:-1]) == ids
    long = tokenizer.with_special_tokens(list(range(5, 5 + 1000)))
    assert len(long) == model.max_seq_length and long[1:-1] == list(range(5, 5 + tokenizer.max_content_tokens))
    packed = PackedBatch.from_ids([[1, 2, 3], [], [4]], pad_token_id=0)
    assert packed.input_ids.tolist() == [1, 2, 3, 4] and packed.cu_seqlens.tolist() == [0, 3, 3, 4]
