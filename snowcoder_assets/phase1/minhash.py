"""MinHash LSH near-deduplication, the pure pieces (the Dagster wiring lives in the assets).

The stages follow datatrove's Signature -> Buckets -> Cluster -> Filter, their files keyed by
`str(MinhashConfig)`:

1. per partition: `signatures` (n x num_perm uint32) and their `band_hashes` (n x bands uint64),
   the small keys stored as (doc_index, band, hash) rows;
2. globally: `candidate_pairs` over every partition's band rows;
3. globally: `cluster` keeps the candidates whose signatures agree on >= threshold of their
   positions and unions them;
4. per cluster: `choose_representative` keeps one file.

A signature is a function of the text, the config and rensa's `RMinHash` (ALGORITHM_VERSION 2
in rensa 0.5.0) alone, not of polars' own hashing, which may change between versions: words are
`\\w+` matches (Unicode) of the lowercased text, each word is hashed with xxh3-64 of its UTF-8
bytes, a shingle of `ngram` consecutive words is `fmix64(sum(word_hash[k] * C[k]))` (odd
constants `C`, arithmetic mod 2**64), and the shingle hashes go to rensa's
`digest_matrix_from_flat_token_hashes`. Regex, lowercasing and the distinct-word table run in
polars and the shingle hashes in numpy, so Python runs once per distinct word of a batch, never
per word or shingle: ~3.7x the throughput of Python-built shingle strings fed to rensa.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
import xxhash
from pydantic import Field, model_validator
from rensa import RMinHash

from snowcoder_assets.strict import StrictModel

WORD_PATTERN = r"\w+"
# Texts per signature batch are cut at this many bytes to bound the word and shingle arrays.
BATCH_BYTES = 32 << 20
# Candidate pairs verified per step: two (chunk x num_perm) signature blocks in memory.
VERIFY_CHUNK = 1 << 16
SignatureLookup = np.ndarray | Callable[[np.ndarray], np.ndarray]


class MinhashConfig(StrictModel):
    """Word n-gram MinHash with LSH banding: the false-positive / false-negative trade-off.

    Two files whose shingle sets have Jaccard similarity J agree on one signature position with
    probability J, on a band of `rows` positions with J**rows, so they share at least one of
    `bands` band hashes (become a candidate pair) with probability

        P(J) = 1 - (1 - J**rows) ** bands

    an S-curve. For the defaults (20 bands x 6 rows of 120 permutations; datatrove uses 14 x 8):

        J = 0.40 -> P = 0.079   (different files: about 8 in 100 become candidates, then fail
                                 verification)
        J = 0.70 -> P = 0.918   (at the threshold)
        J = 0.75 -> P = 0.980   (edited copies: renamed identifiers, lines added and deleted)
        J = 0.85 -> P = 1.000   (light edits)

    16 x 8 of 128 (the earlier default) made only 82% of the pairs at J = 0.75 candidates and
    61% at 0.70, so about one in eight groups of forks at J 0.75-0.80 kept a second copy
    (`test_cluster_collapses_forks_just_above_the_threshold`); 20 x 6 costs ~8x the J ~ 0.4
    candidates (cheap: each is one signature comparison) and 25% more stored band keys.
    More rows per band push the curve right (fewer false candidates, more missed pairs), more
    bands push it left at the cost of more stored keys. A candidate only means some band
    collided, so every candidate is verified by its signature estimate (the fraction of equal
    positions, standard error sqrt(J(1-J)/num_perm), ~0.045 at J = 0.4 for 120 permutations):
    only pairs estimated at >= `threshold` are joined. Verification removes the J ~ 0.4 band
    collisions and the rare band-hash collisions, and because a file joins its cluster through
    any verified pair, a pair missed by LSH is usually still joined through a third copy.
    """

    ngram: int = Field(5, ge=1, description="words per shingle")
    num_perm: int = Field(120, ge=1, description="signature length (MinHash permutations)")
    bands: int = Field(20, ge=1, description="LSH bands; bands * rows == num_perm")
    rows: int = Field(6, ge=1, description="signature positions per band")
    threshold: float = Field(0.7, gt=0, le=1, description="estimated Jaccard to join a cluster")
    seed: int = Field(42, ge=0, description="seed of the MinHash permutations")

    @model_validator(mode="after")
    def _bands_cover_signature(self) -> MinhashConfig:
        if self.bands * self.rows != self.num_perm:
            raise ValueError(
                f"bands * rows must equal num_perm: {self.bands} * {self.rows} != {self.num_perm}"
            )
        return self

    def __str__(self) -> str:
        return (
            f"w{self.ngram}-p{self.num_perm}-b{self.bands}x{self.rows}"
            f"-t{self.threshold:.2f}-s{self.seed}"
        )


def shingle_sets(texts: Sequence[str] | pl.Series, ngram: int) -> list[list[str]]:
    """The distinct word n-grams of each text, words joined by one space, in first-seen order.

    Words are `\\w+` matches (Unicode) of the lowercased text, so case, whitespace and
    punctuation changes alone do not change the set. A text of fewer than `ngram` words gives
    one shingle of all its words, and a text without words (empty, only punctuation) the one
    shingle "": all wordless texts share that set and are duplicates of each other.
    """
    out = []
    for words in _words(_as_series(texts)).to_list():
        if len(words) < ngram:
            out.append([" ".join(words)])
        else:
            grams = zip(*(words[k:] for k in range(ngram)), strict=False)
            out.append(list(dict.fromkeys(map(" ".join, grams))))
    return out


def signatures(texts: Sequence[str] | pl.Series, config: MinhashConfig) -> np.ndarray:
    """MinHash signatures of the texts' `shingle_sets`: (len(texts), num_perm) uint32.

    Deterministic for a config (the same texts give the same rows in any batch or order). A
    null in a polars Series counts as an empty text.
    """
    series = _as_series(texts)
    blocks = [_signature_block(series[a:b], config) for a, b in _batch_bounds(series)]
    if not blocks:
        return np.empty((0, config.num_perm), dtype=np.uint32)
    return np.concatenate(blocks)


def band_hashes(sigs: np.ndarray, config: MinhashConfig) -> np.ndarray:
    """One uint64 per band of `rows` signature values: (n, bands), equal bands hash equally.

    A numpy mix (`h = fmix64(h * G + value)` over the band's values), stable across versions.
    """
    if sigs.ndim != 2 or sigs.shape[1] != config.num_perm:
        raise ValueError(f"signatures must be (n, {config.num_perm}), got {sigs.shape}")
    bands = sigs.reshape(len(sigs), config.bands, config.rows).astype(np.uint64)
    acc = np.zeros(bands.shape[:2], dtype=np.uint64)
    for r in range(config.rows):
        acc = _fmix64(acc * _GOLDEN + bands[:, :, r])
    return acc


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The fraction of positions where two signatures agree: an unbiased estimate of Jaccard."""
    return float(np.count_nonzero(np.asarray(sig_a) == np.asarray(sig_b)) / len(sig_a))


def estimate_jaccard_pairs(sigs_a: np.ndarray, sigs_b: np.ndarray) -> np.ndarray:
    """`estimate_jaccard` of row i of `sigs_a` with row i of `sigs_b`, for every i: float64."""
    return (sigs_a == sigs_b).mean(axis=1)


def candidate_pairs(band_table: pl.DataFrame | pl.LazyFrame) -> np.ndarray:
    """Pairs (i, j), i < j, of doc indexes sharing a (band, hash) key: (m, 2) int64, sorted, unique.

    `band_table` is a polars frame (a `pl.scan_parquet` of every partition's band rows works)
    with columns doc_index (int64, unique across the corpus), band (int32) and hash (uint64).
    Each shared bucket, members sorted, gives its star (first member, each other member) and its
    chain (each member, the next): at most 2(k - 1) pairs for k members instead of k(k - 1)/2,
    still connecting the bucket, and a pair whose star link fails verification (a bucket that
    collided on a stray file) usually still joins along the chain.
    """
    rows = band_table.lazy().select(pl.col("doc_index").cast(pl.Int64), "band", "hash")
    shared = rows.group_by("band", "hash").agg(pl.len().alias("size")).filter(pl.col("size") > 1)
    members = (
        rows.join(shared, on=["band", "hash"], how="semi")
        .group_by("band", "hash")
        .agg(pl.col("doc_index").unique().sort().alias("b"))
    )
    star = members.select(a=pl.col("b").list.first(), b="b").explode("b", empty_as_null=False)
    chain = members.select(a=pl.col("b").list.shift(1), b="b").explode(
        "a", "b", empty_as_null=False
    )
    pairs = (
        pl.concat([star, chain])
        .filter(pl.col("a").is_not_null() & (pl.col("a") != pl.col("b")))
        .unique()
        .sort("a", "b")
        .collect(engine="streaming")
    )
    return pairs.to_numpy().astype(np.int64, copy=False).reshape(-1, 2)


def verify_pairs(pairs: np.ndarray, sigs: SignatureLookup, threshold: float) -> np.ndarray:
    """The candidate pairs whose signatures agree on >= `threshold` of positions: (k, 2) int64.

    `sigs` is an array indexed by doc index (a memory-mapped `.npy` works) or a function from
    an int64 array of doc indexes to their signature rows.
    """
    lookup = sigs if callable(sigs) else sigs.__getitem__
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    kept = [np.empty((0, 2), dtype=np.int64)]
    for start in range(0, len(pairs), VERIFY_CHUNK):
        chunk = pairs[start : start + VERIFY_CHUNK]
        estimate = estimate_jaccard_pairs(lookup(chunk[:, 0]), lookup(chunk[:, 1]))
        kept.append(chunk[estimate >= threshold])
    return np.concatenate(kept)


def cluster(
    num_docs: int, pairs: np.ndarray, sigs: SignatureLookup, config: MinhashConfig
) -> np.ndarray:
    """Cluster root of every doc index 0..num_docs-1: the smallest doc index of its cluster.

    Clusters are the connected components of the verified candidate pairs (`verify_pairs` at
    `config.threshold`); a doc in no verified pair is its own root. The root names the cluster,
    `choose_representative` picks the file that survives.
    """
    return _component_roots(num_docs, verify_pairs(pairs, sigs, config.threshold))


# Rank of each license family, best first; a family is an SPDX id's first "-" field, lowercased.
LICENSE_RANK: dict[str, int] = {
    **dict.fromkeys(["public", "unlicense", "cc0", "0bsd", "wtfpl"], 0),  # public domain
    **dict.fromkeys(["mit", "bsd", "isc", "apache", "zlib", "bsl", "psf", "python"], 1),
    **dict.fromkeys(["mpl", "lgpl", "epl"], 2),  # weak copyleft
    **dict.fromkeys(["gpl", "agpl"], 3),  # strong copyleft
}
UNKNOWN_LICENSE_RANK = 4  # no license, NOASSERTION, or a family not in the table


def license_rank(licenses: Sequence[str] | None) -> int:
    """The rank (0 = most permissive) of a file's best license; none or unknown ranks last.

    | rank | families (SPDX examples)                                                 |
    |------|--------------------------------------------------------------------------|
    | 0    | public-domain, Unlicense, CC0-1.0, 0BSD, WTFPL                           |
    | 1    | MIT, BSD-2/3-Clause, ISC, Apache-2.0, Zlib, BSL-1.0, PSF-2.0, Python-2.0 |
    | 2    | MPL-2.0, LGPL-2.1-only / -or-later, LGPL-3.0, EPL-2.0                    |
    | 3    | GPL-2.0 / 3.0 (any suffix), AGPL-3.0                                     |
    | 4    | anything else: None, [], NOASSERTION, proprietary, CC-BY-*, BUSL-1.1     |
    """
    ranks = [LICENSE_RANK.get(spdx.strip().lower().split("-")[0], 4) for spdx in licenses or []]
    return min(ranks, default=UNKNOWN_LICENSE_RANK)


def choose_representative(members: Sequence[dict]) -> dict:
    """The member of a cluster that survives, by a total, deterministic order.

    Most stars (None = 0), then the best `license_rank`, then the earliest `source_order`,
    then source name, repo, path and doc_id, lexicographically. Members are dicts with keys
    doc_id, stars, licenses (list[str] | None), source_order, source, repo, path.
    """
    if not members:
        raise ValueError("a cluster has at least one member")
    return min(members, key=_survivor_key)


def _survivor_key(member: dict) -> tuple:
    return (
        -(member["stars"] or 0),
        license_rank(member["licenses"]),
        member["source_order"],
        member["source"] or "",
        member["repo"] or "",
        member["path"] or "",
        str(member["doc_id"]),
    )


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def _fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: a bijection that spreads every input bit."""
    x = x ^ (x >> _S33)
    x = x * _FMIX_1
    x = x ^ (x >> _S33)
    x = x * _FMIX_2
    return x ^ (x >> _S33)


def _shingle_multipliers(ngram: int) -> np.ndarray:
    """Odd constants C[k] weighting the k-th word of a shingle (fixed: part of the signature)."""
    return _fmix64(_GOLDEN * np.arange(1, ngram + 1, dtype=np.uint64)) | np.uint64(1)


def _as_series(texts: Sequence[str] | pl.Series) -> pl.Series:
    series = texts if isinstance(texts, pl.Series) else pl.Series(list(texts), dtype=pl.String)
    return series.cast(pl.String).fill_null("")


def _words(texts: pl.Series) -> pl.Series:
    """list[str] of each text's lowercased `\\w+` matches (the streaming engine uses all cores)."""
    frame = pl.LazyFrame({"text": texts})
    words = pl.col("text").str.to_lowercase().str.extract_all(WORD_PATTERN)
    return frame.select(words).collect(engine="streaming").to_series()


def _batch_bounds(texts: pl.Series) -> list[tuple[int, int]]:
    """Consecutive [a, b) slices of at most BATCH_BYTES of text (or one text, if bigger)."""
    ends = np.cumsum(texts.str.len_bytes().to_numpy().astype(np.int64))
    bounds, start = [], 0
    while start < len(texts):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + BATCH_BYTES, side="right")), start + 1)
        bounds.append((start, stop))
        start = stop
    return bounds


def _signature_block(texts: pl.Series, config: MinhashConfig) -> np.ndarray:
    word_hashes, counts = _word_hashes(_words(texts))
    tokens, offsets = _shingle_hashes(word_hashes, counts, config.ngram)
    matrix = RMinHash.digest_matrix_from_flat_token_hashes(
        tokens, offsets, config.num_perm, config.seed
    )
    return np.array(matrix.to_rows(), dtype=np.uint32).reshape(len(texts), config.num_perm)


def _word_hashes(words: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(xxh3-64 of every word, flat uint64; words per text, int64).

    Each distinct word is hashed once in Python; polars' own (version-dependent) hash only
    finds the distinct words within this batch and never reaches the signature.
    """
    counts = words.list.len().to_numpy().astype(np.int64)
    flat = words.list.explode(empty_as_null=False, keep_nulls=False)
    key = flat.hash(0)
    first = key.is_first_distinct()
    distinct = flat.filter(first).to_list()
    stable = np.fromiter(
        (xxhash.xxh3_64_intdigest(word.encode()) for word in distinct),
        dtype=np.uint64,
        count=len(distinct),
    )
    table = pl.DataFrame({"key": key.filter(first), "h": pl.Series(stable, dtype=pl.UInt64)})
    mapped = pl.DataFrame({"key": key}).join(table, on="key", how="left", maintain_order="left")
    return mapped["h"].to_numpy().astype(np.uint64, copy=False), counts


def _shingle_hashes(word_hashes: np.ndarray, counts: np.ndarray, ngram: int) -> tuple:
    """(flat shingle hashes, row offsets int64): the windows of `ngram` words of each text, or
    one shingle of all its words for a text shorter than that (0 words: the hash of none).

    Every window of the flat word array is summed with contiguous slices, then the windows that
    stay inside their text are kept; only the short texts need a masked sum.
    """
    multipliers = _shingle_multipliers(ngram)
    shingles = np.where(counts >= ngram, counts - ngram + 1, 1)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(shingles, out=offsets[1:])
    total, ends = len(word_hashes), np.cumsum(counts)
    padded = np.concatenate([word_hashes, np.zeros(ngram, dtype=np.uint64)])
    windows = padded[:total] * multipliers[0]
    for k in range(1, ngram):
        windows += padded[k : total + k] * multipliers[k]
    inside = np.arange(total) + ngram <= np.repeat(ends, counts)
    short = counts < ngram
    short_starts, short_counts = (ends - counts)[short], counts[short]
    short_sums = np.zeros(len(short_starts), dtype=np.uint64)
    for k in range(ngram - 1):
        word = np.where(k < short_counts, padded[short_starts + k], np.uint64(0))
        short_sums += word * multipliers[k]
    sums = np.empty(offsets[-1], dtype=np.uint64)
    of_short_text = np.repeat(short, shingles)
    sums[~of_short_text] = windows[inside]
    sums[of_short_text] = short_sums
    return _fmix64(sums), offsets


def _component_roots(num_docs: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find in numpy: hook each pair's larger root under the smaller, compress, repeat.

    Parents only ever decrease, so each root is the smallest index of its component.
    """
    parent = np.arange(num_docs, dtype=np.int64)
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        root_a, root_b = parent[a], parent[b]
        differ = root_a != root_b
        if not differ.any():
            return parent
        low, high = np.minimum(root_a, root_b)[differ], np.maximum(root_a, root_b)[differ]
        np.minimum.at(parent, high, low)
        while not np.array_equal(grand := parent[parent], parent):
            parent = grand
