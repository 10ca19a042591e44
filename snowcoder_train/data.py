"""Packed training sequences, read by global position from the packer's memmapped shards.

A phase reads the index's sequences in order, `repeats` times: position p is sequence
`order_r[p % N]` of repeat `r = p // N`, where repeat 0 is the index order (the packer already
shuffled globally) and repeat r > 0 is a permutation seeded by (seed, phase, r). The position
is the only data state a checkpoint needs, so a resumed run reads exactly what it would have.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from snowcoder_train.manifest import read_index


class PackedSequences:
    def __init__(self, index_path: str | Path, phase: str, seed: int) -> None:
        index_path = Path(index_path)
        index = read_index(index_path)
        self.seq_len = int(index["seq_len"])
        self.shards = [
            np.memmap(
                index_path.parent / shard["path"],
                dtype=index["dtype"],
                mode="r",
                shape=(shard["num_sequences"], self.seq_len),
            )
            for shard in index["shards"]
        ]
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])
        self.num_sequences = int(self.starts[-1])
        self._seed = (seed, zlib.crc32(phase.encode()))
        self._order: tuple[int, np.ndarray | None] = (0, None)  # the last repeat's order

    def order(self, repeat: int) -> np.ndarray | None:
        """Sequence ids of a repeat in reading order; None for repeat 0 (index order)."""
        if repeat == 0:
            return None
        if self._order[0] != repeat:
            rng = np.random.default_rng([*self._seed, repeat])
            self._order = (repeat, rng.permutation(self.num_sequences))
        return self._order[1]

    def sequence_ids(self, position: int, count: int) -> np.ndarray:
        positions = np.arange(position, position + count)
        ids = positions % self.num_sequences
        for repeat in np.unique(positions // self.num_sequences):
            order = self.order(int(repeat))
            if order is not None:
                mask = positions // self.num_sequences == repeat
                ids[mask] = order[ids[mask]]
        return ids

    def batch(self, position: int, count: int) -> np.ndarray:
        """`count` sequences from global `position` on, as an int64 (count, seq_len) array."""
        ids = self.sequence_ids(position, count)
        shard_of = np.searchsorted(self.starts, ids, side="right") - 1
        rows = [self.shards[s][i - self.starts[s]] for s, i in zip(shard_of, ids, strict=True)]
        return np.stack(rows).astype(np.int64)
