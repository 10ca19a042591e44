"""LSH band keys gathered batch by batch, then bucketed one band at a time: the candidate pairs
of `dup_clusters` without a frame of every file's rows.

Each streamed batch adds, per band, one uint64 column of hashes and the (shared) int64 array of
the files' doc indexes: 8 bytes per file and band, the least an in-memory LSH can hold. The
pairs are those of `minhash.candidate_pairs`: in every bucket of a band (files with the same
hash there), members ordered by `rank`, the star (first member, each other) and the chain (each
member, the next), so verification and clustering see the same pairs.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class BandBuckets:
    """Band hashes of doc indexes `0..num_docs-1`, added in any order, bucketed on `pairs`."""

    def __init__(self, num_docs: int) -> None:
        self.num_docs = num_docs
        self._hashes: list[list[np.ndarray]] = []  # band -> chunks of hashes
        self._owners: list[list[np.ndarray]] = []  # band -> chunks of doc indexes

    def add(self, owners: np.ndarray, bands: pa.Array | pa.ChunkedArray) -> None:
        """One batch: `owners[i]` is the doc index of row i of `bands` (a list<uint64> column),
        negative for a row that takes no part (a file already dropped, or not in the corpus)."""
        if isinstance(bands, pa.ChunkedArray):
            bands = bands.combine_chunks()
        owners = np.asarray(owners, dtype=np.int64)
        if len(owners) != len(bands):
            raise ValueError(f"{len(owners)} owners for {len(bands)} rows of band keys")
        lengths = bands.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
        flat = bands.flatten().to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
        keep = owners >= 0
        if not keep.any():
            return
        width = int(lengths.max(initial=0))
        self._grow(width)
        if (lengths == width).all():  # the usual case: every file has all bands
            matrix = flat.reshape(len(owners), width)[keep]
            kept = owners[keep]
            for band in range(width):
                self._hashes[band].append(np.ascontiguousarray(matrix[:, band]))
                self._owners[band].append(kept)
            return
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        for band in range(width):
            rows = keep & (lengths > band)
            self._hashes[band].append(flat[starts[rows] + band])
            self._owners[band].append(owners[rows])

    def pairs(self, rank: np.ndarray) -> np.ndarray:
        """Candidate pairs (a, b) of doc indexes, a < b, sorted and unique: (m, 2) int64.

        `rank[i]` orders doc index i within a bucket (the position of its doc_id among all).
        The buckets are consumed: each band's keys are freed once its pairs are taken.
        """
        found = [np.empty(0, dtype=np.int64)]
        for band in range(len(self._hashes)):
            hashes, owners = self._take(band)
            found.append(self._band_pairs(hashes, owners, rank))
        keys = np.unique(np.concatenate(found))
        return np.stack([keys // self.num_docs, keys % self.num_docs], axis=1)

    def _grow(self, width: int) -> None:
        while len(self._hashes) < width:
            self._hashes.append([])
            self._owners.append([])

    def _take(self, band: int) -> tuple[np.ndarray, np.ndarray]:
        hashes, self._hashes[band] = self._hashes[band], []
        owners, self._owners[band] = self._owners[band], []
        if not hashes:
            return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
        return np.concatenate(hashes), np.concatenate(owners)

    def _band_pairs(self, hashes: np.ndarray, owners: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """The encoded (lo * num_docs + hi) star and chain pairs of one band's buckets."""
        if len(hashes) < 2:
            return np.empty(0, dtype=np.int64)
        order = np.lexsort((rank[owners], hashes))
        hashes, owners = hashes[order], owners[order]
        del order
        same = hashes[1:] == hashes[:-1]  # entry i + 1 is in the bucket of entry i
        if not same.any():
            return np.empty(0, dtype=np.int64)
        position = np.arange(len(hashes))
        first = np.maximum.accumulate(np.where(np.concatenate([[False], same]), 0, position))
        later = np.flatnonzero(same) + 1  # every member but the first of its bucket
        a = np.concatenate([owners[first[later]], owners[later - 1]])
        b = np.concatenate([owners[later], owners[later]])
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        distinct = lo != hi
        return np.unique(lo[distinct] * self.num_docs + hi[distinct])
