"""`dup_clusters`: exact groups and MinHash clusters over every partition's stored keys.

It reads only small per-file keys, never file contents, and streams them partition by
partition: of every file its doc_id and normalized content hash, and its band hashes (kept as one
uint64 per band, bucketed a band at a time); signatures only of candidate pairs, and the other
metadata (repo, path, stars, licenses) only of the members of a cluster, so no frame of every
file's rows is ever built. It writes each partition's decisions to its own file. The
asset reports, per partition, the digest of those decisions as the data version of
`dedup_decisions[<partition>]`, and only for partitions whose decisions changed: so
`deduped_files` re-runs where decisions really changed, not in every partition.

Survivor rule: in every group the representative is chosen by `choose_representative` (most
stars, most permissive license, earliest source, then source/repo/path), except that a file that
survived the previous run (an *incumbent*, read from this asset's own previous output) is
preferred over a newcomer. So adding a shard never drops a file that was already in the corpus,
even when a new copy would be the better representative: the new copy is dropped instead, and
existing partitions keep their decisions. Only when a new file bridges two old clusters does one
old survivor lose (its partition's decisions change). Deleting `data/dup_clusters` gives the
canonical choice on the next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig, split_partition_key
from snowcoder_assets.io import digest, open_parquet, read_table, write_table
from snowcoder_assets.layout import dedup_dir, lineage_part_path
from snowcoder_assets.lineage.schemas import DUP_CLUSTERS_SCHEMA
from snowcoder_assets.phase1.band_keys import BandBuckets
from snowcoder_assets.phase1.file_signals import minhash_path
from snowcoder_assets.phase1.filtered_files import FILTERED_SCHEMA, filtered_path
from snowcoder_assets.storage import DataPath

DROPPED_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)
STATE_FILE = "state.parquet"
# What clustering reads of every filtered file; the members of a cluster also give the rest of
# MEMBER_COLUMNS (lang and bytes, say, never); minhash files give doc_id, bands, and signature
# for the candidates alone.
KEY_COLUMNS = ["doc_id", "exact_hash"]
MEMBER_COLUMNS = ["doc_id", "source", "partition", "repo", "path", "stars", "licenses",
                  "exact_hash"]  # fmt: skip
READ_BATCH_ROWS = 64 * 1024
Log = Callable[[str], None]


@dataclass
class DedupSummary:
    docs: int = 0
    exact_dropped: int = 0
    near_dropped: int = 0
    cluster_sizes: Counter[int] = field(default_factory=Counter)
    digests: dict[str, str] = field(default_factory=dict)  # partition -> decisions digest


def output_dir(config: SnowcoderConfig) -> Path:
    return dedup_dir(config.data_dir, str(config.dedup.minhash))


def decisions_path(config: SnowcoderConfig, source: str, shard: str) -> Path:
    return output_dir(config) / source / f"{shard}.parquet"


def load_partition_decisions(
    config: SnowcoderConfig, source: str, shard: str
) -> dict[str, tuple[str, str, str]]:
    """doc_id -> (stage, reason, detail) for the partition's files that dedup drops."""
    path = decisions_path(config, source, shard)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no dedup decisions for {source}/{shard}; materialize dup_clusters first"
        )
    rows = pl.read_parquet(str(path)).to_dicts()
    return {r["doc_id"]: (r["stage"], r["reason"], r["detail"]) for r in rows}


def run_dup_clusters(
    config: SnowcoderConfig, partitions: list[str], recorded: dict[str, str], log: Log
) -> DedupSummary:
    """Cluster every filtered file of `partitions`; write the decision file of each partition
    whose decisions differ from `recorded` (partition -> digest the instance holds), the
    cluster lineage and the survivor state."""
    summary = DedupSummary()
    corpus = _load_keys(config, partitions)
    summary.docs = corpus.size
    dropped: dict[str, tuple[str, str, str]] = {}
    clusters: list[dict[str, Any]] = []
    if config.dedup.exact:
        _exact(config, corpus, dropped, clusters, summary)
    if config.dedup.near:
        log(f"near dedup over {corpus.size - len(dropped)} files of {len(partitions)} partitions")
        _near(config, corpus, dropped, clusters, summary)
    _write(config, partitions, recorded, corpus, dropped, clusters, summary)
    return summary


@dataclass
class _Corpus:
    """What clustering keeps of every file: its doc_id and exact-content key, by doc index.

    Doc indexes run over the partitions' filtered files in partition and then file order, so
    a partition's files are one range (`offsets[p]:offsets[p + 1]`) and a later read of a
    partition finds a file's index by its row. `rank` is each file's position in doc_id order,
    the order of an LSH bucket's members (as `minhash.candidate_pairs` takes them over doc_id
    sorted indexes), so the candidate pairs are the same. Everything else of a file (repo, path,
    stars, licenses, ...) is read only for the members of a cluster, one partition at a time.
    """

    filtered: list[DataPath]
    minhash: list[DataPath]
    offsets: np.ndarray
    doc_ids: pl.Series
    exact_keys: np.ndarray | None  # a 64-bit hash of exact_hash (grouping is by the string)
    dropped: np.ndarray = field(init=False)  # by doc index
    partition_of: dict[str, str] = field(default_factory=dict)  # dropped doc_id -> partition

    def __post_init__(self) -> None:
        self.dropped = np.zeros(self.size, dtype=bool)

    @property
    def size(self) -> int:
        return len(self.doc_ids)

    def rank(self) -> np.ndarray:
        rank = np.empty(self.size, dtype=np.int64)
        rank[self.doc_ids.arg_sort().to_numpy()] = np.arange(self.size)
        return rank

    def ranges(self) -> Iterator[tuple[int, int, int]]:
        """(partition number, first doc index, end) of every partition."""
        for p in range(len(self.filtered)):
            yield p, int(self.offsets[p]), int(self.offsets[p + 1])


def _batches(path: DataPath, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The given columns of one parquet file, batch by batch: every read clustering does."""
    with open_parquet(path) as parquet:
        yield from parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns)


def _load_keys(config: SnowcoderConfig, partitions: list[str]) -> _Corpus:
    keys = [split_partition_key(p) for p in partitions]
    filtered = [filtered_path(config.data_dir, *key) for key in keys]
    columns = KEY_COLUMNS if config.dedup.exact else KEY_COLUMNS[:1]
    ids: list[pl.Series] = [pl.Series("doc_id", [], dtype=pl.String)]
    exact: list[np.ndarray] = [np.empty(0, dtype=np.uint64)]
    offsets = [0]
    for path in filtered:
        rows = 0
        for batch in _batches(path, columns):
            frame = pl.from_arrow(batch)
            ids.append(frame["doc_id"])
            if config.dedup.exact:
                exact.append(frame["exact_hash"].hash(seed=0).to_numpy())
            rows += batch.num_rows
        offsets.append(offsets[-1] + rows)
    return _Corpus(
        filtered=filtered,
        minhash=[minhash_path(config.data_dir, *key) for key in keys],
        offsets=np.array(offsets, dtype=np.int64),
        doc_ids=pl.concat(ids, rechunk=True),
        exact_keys=np.concatenate(exact) if config.dedup.exact else None,
    )


def _members(config: SnowcoderConfig, corpus: _Corpus, wanted: np.ndarray) -> pl.DataFrame:
    """The `MEMBER_COLUMNS` of the files whose doc index is in `wanted` (sorted int64), in
    doc_id order, with their doc_index, source_order and incumbent: what choosing a survivor
    and writing its cluster need, read only from the partitions that hold such a file."""
    is_wanted = np.zeros(corpus.size, dtype=bool)
    is_wanted[wanted] = True
    frames = [_empty_members()]
    for p, lo, hi in corpus.ranges():
        if not is_wanted[lo:hi].any():
            continue
        row = lo
        for batch in _batches(corpus.filtered[p], MEMBER_COLUMNS):
            take = np.flatnonzero(is_wanted[row : row + batch.num_rows])
            if take.size:
                frame = pl.from_arrow(batch.take(pa.array(take))).with_columns(
                    doc_index=pl.Series(row + take, dtype=pl.Int64)
                )
                if not frame["doc_id"].equals(corpus.doc_ids.gather(row + take), check_names=False):
                    raise RuntimeError(f"{corpus.filtered[p]} changed while clustering")
                frames.append(frame)
            row += batch.num_rows
    members = pl.concat(frames, how="vertical_relaxed").sort("doc_id")
    order = {s.name: i for i, s in enumerate(config.sources)}
    return members.with_columns(
        source_order=pl.col("source").replace_strict(order, default=len(order)),
        incumbent=pl.col("doc_id").is_in(_incumbents(config, members["doc_id"]).implode()),
    )


def _empty_members() -> pl.DataFrame:
    schema = pa.schema([FILTERED_SCHEMA.field(name) for name in MEMBER_COLUMNS])
    return pl.from_arrow(schema.empty_table()).with_columns(doc_index=pl.lit(0, dtype=pl.Int64))


def _incumbents(config: SnowcoderConfig, doc_ids: pl.Series) -> pl.Series:
    """Those of `doc_ids` that survived the previous run, streamed from its state file."""
    state = output_dir(config) / STATE_FILE
    found = [pl.Series("doc_id", [], dtype=pl.String)]
    if state.is_file() and len(doc_ids):
        wanted = doc_ids.implode()
        for batch in _batches(state, ["doc_id"]):
            column = pl.from_arrow(batch)["doc_id"]
            found.append(column.filter(column.is_in(wanted)))
    return pl.concat(found)


def _pick(members: list[dict[str, Any]]) -> dict[str, Any]:
    from snowcoder_assets.phase1.minhash import choose_representative

    incumbents = [m for m in members if m["incumbent"]]
    return choose_representative(incumbents or members)


def _settle(
    members: list[dict[str, Any]],
    cluster_id: str | None,
    method: str,
    similarity: Callable[[dict, dict], float],
    corpus: _Corpus,
    dropped: dict,
    clusters: list,
    summary: DedupSummary,
) -> int:
    """Keep one member of a cluster, drop the others with their reason; the number dropped.
    A cluster without a natural id (near duplicates) is named after its representative."""
    rep = _pick(members)
    cluster_id = cluster_id or f"{method}:{rep['doc_id']}"
    summary.cluster_sizes[len(members)] += 1
    for m in members:
        sim = similarity(m, rep)
        clusters.append(_cluster_row(m, cluster_id, rep, method, sim))
        if m["doc_id"] != rep["doc_id"]:
            where = f"{rep['repo']}/{rep['path']}"
            detail = (
                f"same content as {where}"
                if method == "exact"
                else f"~{sim:.2f} Jaccard with {where}"
            )
            dropped[m["doc_id"]] = (f"{method}_dedup", f"{method}_duplicate", detail)
            corpus.dropped[m["doc_index"]] = True
            corpus.partition_of[m["doc_id"]] = m["partition"]
    return len(members) - 1


def _exact(
    config: SnowcoderConfig,
    corpus: _Corpus,
    dropped: dict,
    clusters: list,
    summary: DedupSummary,
) -> None:
    """Groups of equal exact_hash. The files whose 64-bit key of it is shared are read whole
    and grouped by the string itself, so a collision of keys joins no group."""
    assert corpus.exact_keys is not None
    shared = pl.Series(corpus.exact_keys).is_duplicated().to_numpy()
    if not shared.any():
        return
    docs = _members(config, corpus, np.flatnonzero(shared))
    groups = docs.filter(pl.col("exact_hash").is_duplicated()).group_by("exact_hash")
    for (content_hash,), group in sorted(groups, key=lambda g: str(g[0][0])):
        summary.exact_dropped += _settle(
            group.sort("doc_id").to_dicts(), f"exact:{content_hash}", "exact",
            lambda *_: 1.0, corpus, dropped, clusters, summary,
        )  # fmt: skip


def _near(
    config: SnowcoderConfig,
    corpus: _Corpus,
    dropped: dict,
    clusters: list,
    summary: DedupSummary,
) -> None:
    """MinHash LSH over the files exact dedup kept: band keys streamed partition by partition
    into per-band buckets, candidate pairs verified on the signatures of candidates alone,
    clusters as the components of the verified pairs (union-find over doc indexes)."""
    from snowcoder_assets.phase1.minhash import cluster, estimate_jaccard

    alive = ~corpus.dropped
    if int(alive.sum()) < 2:
        return
    buckets = BandBuckets(corpus.size)
    for p, lo, hi in corpus.ranges():
        index = _partition_index(corpus, lo, hi, alive[lo:hi])
        for batch in _batches(corpus.minhash[p], ["doc_id", "bands"]):
            buckets.add(_owners(batch, index), batch.column("bands"))
    pairs = buckets.pairs(corpus.rank())
    del buckets
    if len(pairs) == 0:
        return
    candidates = np.unique(pairs)  # sorted doc indexes; a candidate's position is its node
    matrix = _signatures(corpus, candidates)
    nodes = np.searchsorted(candidates, pairs)
    roots = cluster(len(candidates), nodes, matrix, config.dedup.minhash)
    members_by_root: dict[int, list[int]] = {}
    for node, root in enumerate(roots.tolist()):
        members_by_root.setdefault(root, []).append(node)
    grouped = [nodes for nodes in members_by_root.values() if len(nodes) >= 2]
    if not grouped:
        return
    docs = _members(config, corpus, candidates[np.sort(np.concatenate(grouped))])
    row_of = {i: k for k, i in enumerate(docs["doc_index"].to_list())}

    def similarity(member: dict, rep: dict) -> float:
        pair = np.searchsorted(candidates, [member["doc_index"], rep["doc_index"]])
        return estimate_jaccard(matrix[pair[0]], matrix[pair[1]])

    for member_nodes in grouped:
        rows = sorted(row_of[i] for i in candidates[member_nodes].tolist())
        summary.near_dropped += _settle(
            docs[rows].to_dicts(), None, "near", similarity, corpus, dropped, clusters, summary
        )


def _partition_index(corpus: _Corpus, lo: int, hi: int, keep: np.ndarray) -> pl.DataFrame:
    """doc_id -> doc_index of the partition's files that `keep` marks."""
    frame = pl.DataFrame(
        {"doc_id": corpus.doc_ids.slice(lo, hi - lo), "doc_index": np.arange(lo, hi)}
    )
    return frame.filter(pl.Series(keep))


def _owners(batch: pa.RecordBatch, index: pl.DataFrame) -> np.ndarray:
    """The doc index of each row of a minhash batch in `index`, -1 for a row not in it."""
    ids = pl.from_arrow(batch.select(["doc_id"]))
    joined = ids.join(index, on="doc_id", how="left", validate="m:1", maintain_order="left")
    return joined["doc_index"].fill_null(-1).to_numpy()


def _signatures(corpus: _Corpus, candidates: np.ndarray) -> np.ndarray:
    """The signature of each candidate, row k for `candidates[k]`: read from the partitions
    that hold a candidate, only those files' rows kept."""
    is_candidate = np.zeros(corpus.size, dtype=bool)
    is_candidate[candidates] = True
    matrix: np.ndarray | None = None
    for p, lo, hi in corpus.ranges():
        if not is_candidate[lo:hi].any():
            continue
        index = _partition_index(corpus, lo, hi, is_candidate[lo:hi])
        for batch in _batches(corpus.minhash[p], ["doc_id", "signature"]):
            owners = _owners(batch, index)
            rows = np.flatnonzero(owners >= 0)
            if not rows.size:
                continue
            block = _signature_rows(batch.column("signature").take(pa.array(rows)))
            if matrix is None:
                matrix = np.zeros((len(candidates), block.shape[1]), dtype=block.dtype)
            matrix[np.searchsorted(candidates, owners[rows])] = block
    assert matrix is not None
    return matrix


def _signature_rows(sigs: pa.Array) -> np.ndarray:
    """A list<uint32> column as a (rows, num_perm) matrix (signatures of unequal length raise)."""
    lengths = sigs.value_lengths().to_numpy(zero_copy_only=False)
    if sigs.null_count == 0 and len(lengths) and (lengths == lengths[0]).all():
        flat = sigs.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(sigs), int(lengths[0]))
    return np.stack(sigs.to_numpy(zero_copy_only=False))


def _cluster_row(
    member: dict, cluster_id: str, rep: dict, method: str, similarity: float
) -> dict[str, Any]:
    return {
        "doc_id": member["doc_id"],
        "partition": member["partition"],
        "cluster_id": cluster_id,
        "representative_doc_id": rep["doc_id"],
        "method": method,
        "similarity": round(float(similarity), 4),
    }


def _write(
    config: SnowcoderConfig,
    partitions: list[str],
    recorded: dict[str, str],
    corpus: _Corpus,
    dropped: dict,
    clusters: list,
    summary: DedupSummary,
) -> None:
    """Per-partition decision and cluster lineage files (only where they changed), then the
    survivor state the next run treats as incumbents."""
    by_partition: dict[str, list[dict]] = {}
    for doc_id, (stage, reason, detail) in sorted(dropped.items()):
        by_partition.setdefault(corpus.partition_of[doc_id], []).append(
            {"doc_id": doc_id, "stage": stage, "reason": reason, "detail": detail}
        )
    clusters_by_partition: dict[str, list[dict]] = {}
    for row in clusters:
        clusters_by_partition.setdefault(row.pop("partition"), []).append(row)
    for key in partitions:
        source, shard = split_partition_key(key)
        rows = by_partition.get(key, [])
        members = sorted(clusters_by_partition.get(key, []), key=lambda r: r["doc_id"])
        summary.digests[key] = digest(rows)
        target = decisions_path(config, source, shard)
        if summary.digests[key] != recorded.get(key) or not target.is_file():
            write_table(target, pa.Table.from_pylist(rows, schema=DROPPED_SCHEMA))
        _write_if_changed(
            lineage_part_path(config.data_dir, "dup_clusters", "dedup", source, shard),
            pa.Table.from_pylist(members, schema=DUP_CLUSTERS_SCHEMA),
        )
    survivors = corpus.doc_ids.filter(pl.Series(~corpus.dropped)).sort()
    write_table(output_dir(config) / STATE_FILE, survivors.to_frame("doc_id").to_arrow())


def _write_if_changed(path: Path, table: pa.Table) -> None:
    """Cluster ids of untouched partitions can still move (a union-find root changed): compare
    with the file on disk and rewrite only when the rows differ."""
    if path.is_file() and read_table(path).equals(table):
        return
    write_table(path, table)
