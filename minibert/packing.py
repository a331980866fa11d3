"""The packed layout every backend takes: a batch's real tokens end to end, delimited by ``cu_seqlens``.

Sequence b of a batch owns tokens (rows) ``cu_seqlens[b] : cu_seqlens[b + 1]`` of the packed arrays — the
layout of flash-attention's varlen API — so no work or memory goes to padding. :class:`PackedBatch` is what
the tokenizer emits (for a cross-encoder's pairs, with their token types); :meth:`PackedBatch.to_padded` gives
the right-padded ``[B, T]`` layout that the readable forward and transformers take. The index helpers below are
the one place that turns offsets into per-token indices.

Shape letters: N = tokens of the batch, B = sequences, T = the longest sequence.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


def first_seen(keys: Sequence[Hashable]) -> tuple[list, np.ndarray | None]:
    """(the distinct keys in first-seen order, each key's index among them [n] — None when all are distinct)."""
    first: dict[Hashable, int] = {}
    index = np.fromiter((first.setdefault(k, len(first)) for k in keys), dtype=np.intp, count=len(keys))
    return (list(keys), None) if len(first) == len(keys) else (list(first), index)


def sequence_of_token(cu_seqlens: np.ndarray) -> np.ndarray:
    """Which sequence each token belongs to: [B + 1] offsets -> [N] values in 0 … B-1."""
    return np.repeat(np.arange(len(cu_seqlens) - 1), np.diff(cu_seqlens))


def position_in_sequence(cu_seqlens: np.ndarray) -> np.ndarray:
    """Each token's position inside its own sequence, from 0: [B + 1] offsets -> [N]."""
    return np.arange(cu_seqlens[-1]) - np.repeat(cu_seqlens[:-1], np.diff(cu_seqlens))


@dataclass(frozen=True)
class PaddedBatch:
    """A right-padded batch, the layout transformers and the readable forward take. B = batch, T = longest."""

    input_ids: np.ndarray  # [B, T] int64, padded with the pad token
    attention_mask: np.ndarray  # [B, T] int64, 1 = real token, 0 = padding
    token_type_ids: np.ndarray  # [B, T] int64


@dataclass(frozen=True)
class PackedBatch:
    """The tokenizer's output: the batch's real tokens laid end to end, no padding. N = tokens, B = sequences.

    Sequence b is tokens ``cu_seqlens[b] : cu_seqlens[b + 1]`` (flash-attention's varlen layout). Every backend
    takes this; :meth:`to_padded` gives the padded layout for the readable forward and for transformers.
    """

    input_ids: np.ndarray  # [N] int64
    token_type_ids: np.ndarray  # [N] int64
    cu_seqlens: np.ndarray  # [B + 1] int64: 0, …, N, non-decreasing
    pad_token_id: int

    @classmethod
    def from_ids(
        cls,
        sequences: Sequence[Sequence[int]],
        pad_token_id: int,
        token_type_ids: Sequence[Sequence[int]] | None = None,
    ) -> PackedBatch:
        """Pack token-id sequences (special tokens included) end to end. Token types: `token_type_ids`, one
        sequence of them per id sequence and as long (a pair's 0 … 0 1 … 1); without them 0 (single sentences)."""
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))  # [B]
        cu_seqlens = np.concatenate([[0], np.cumsum(lengths)])  # [B + 1]
        input_ids = np.fromiter(itertools.chain.from_iterable(sequences), np.int64, int(cu_seqlens[-1]))  # [N]
        if token_type_ids is None:
            return cls(input_ids, np.zeros_like(input_ids), cu_seqlens, pad_token_id)
        type_lengths = np.fromiter(map(len, token_type_ids), dtype=np.int64, count=len(token_type_ids))  # [B]
        if not np.array_equal(type_lengths, lengths):
            raise ValueError(
                f"token_type_ids must be one sequence per id sequence and as long: {len(token_type_ids)} sequences "
                f"for {len(sequences)}, or a sequence of another length"
            )
        types = np.fromiter(itertools.chain.from_iterable(token_type_ids), np.int64, len(input_ids))  # [N]
        return cls(input_ids, types, cu_seqlens, pad_token_id)

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per sequence, special tokens included: [B]."""
        return np.diff(self.cu_seqlens)

    @property
    def max_seqlen(self) -> int:
        """The longest sequence's length (0 for an empty batch)."""
        return int(self.lengths.max(initial=0))

    def position_ids(self, padding_idx: int | None) -> np.ndarray:
        """The position ids the model embeds: [N]. Absolute (0 … L-1 per sequence) when `padding_idx` is None;
        RoBERTa-style (MPNet) otherwise: real tokens count from padding_idx + 1, tokens equal to padding_idx
        get padding_idx (what transformers computes from the padded ids; padding is never part of a pack)."""
        if padding_idx is None:
            return position_in_sequence(self.cu_seqlens)
        real = (self.input_ids != padding_idx).astype(np.int64)  # [N]
        counted = np.concatenate([[0], np.cumsum(real)])  # [N + 1]: real tokens up to each token, whole pack
        before = np.repeat(counted[self.cu_seqlens[:-1]], self.lengths)  # [N]: those in earlier sequences
        return (counted[1:] - before) * real + padding_idx

    def distinct(self) -> tuple[PackedBatch, np.ndarray | None]:
        """(the batch's distinct sequences — equal ids and token types — packed in first-seen order, each sequence's
        index among them: [B]; None when all are distinct)."""
        ids, types, bounds = self.input_ids.tolist(), self.token_type_ids.tolist(), self.cu_seqlens.tolist()
        distinct, index = first_seen([(tuple(ids[a:b]), tuple(types[a:b])) for a, b in itertools.pairwise(bounds)])
        if index is None:
            return self, None
        return PackedBatch.from_ids([k for k, _ in distinct], self.pad_token_id, [t for _, t in distinct]), index

    def to_padded(self) -> PaddedBatch:
        """The same batch right-padded to the longest sequence: [B, T] ids (pad token), mask and types."""
        B, T = len(self.cu_seqlens) - 1, self.max_seqlen
        rows, cols = sequence_of_token(self.cu_seqlens), position_in_sequence(self.cu_seqlens)  # [N] each
        input_ids = np.full((B, T), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((B, T), dtype=np.int64)
        token_type_ids = np.zeros((B, T), dtype=np.int64)
        input_ids[rows, cols] = self.input_ids
        attention_mask[rows, cols] = 1
        token_type_ids[rows, cols] = self.token_type_ids
        return PaddedBatch(input_ids, attention_mask, token_type_ids)
