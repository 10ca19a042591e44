"""`dup_clusters`: exact groups and MinHash clusters over every partition's stored keys.

It reads only small per-file keys (normalized content hash, band hashes; signatures of candidate
pairs alone), never file contents, and writes each partition's decisions to its own file. The
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig, split_partition_key
from snowcoder_assets.io import digest, write_table
from snowcoder_assets.layout import dedup_dir, lineage_part_path
from snowcoder_assets.lineage.schemas import DUP_CLUSTERS_SCHEMA
from snowcoder_assets.phase1.file_signals import minhash_path
from snowcoder_assets.phase1.filtered_files import FILTERED_SCHEMA, filtered_path

DROPPED_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)
STATE_FILE = "state.parquet"
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
    rows = pl.read_parquet(path).to_dicts()
    return {r["doc_id"]: (r["stage"], r["reason"], r["detail"]) for r in rows}


def run_dup_clusters(
    config: SnowcoderConfig, partitions: list[str], recorded: dict[str, str], log: Log
) -> DedupSummary:
    """Cluster every filtered file of `partitions`; write the decision file of each partition
    whose decisions differ from `recorded` (partition -> digest the instance holds), the
    cluster lineage and the survivor state."""
    summary = DedupSummary()
    docs = _load_docs(config, partitions)
    summary.docs = docs.height
    dropped: dict[str, tuple[str, str, str]] = {}
    clusters: list[dict[str, Any]] = []
    if config.dedup.exact:
        _exact(docs, dropped, clusters, summary)
    if config.dedup.near:
        log(f"near dedup over {docs.height - len(dropped)} files of {len(partitions)} partitions")
        _near(config, docs, partitions, dropped, clusters, summary)
    _write(config, partitions, recorded, docs, dropped, clusters, summary)
    return summary


def _load_docs(config: SnowcoderConfig, partitions: list[str]) -> pl.DataFrame:
    paths = [str(filtered_path(config.data_dir, *split_partition_key(p))) for p in partitions]
    order = {s.name: i for i, s in enumerate(config.sources)}
    if not paths:
        return (
            pl.from_arrow(FILTERED_SCHEMA.empty_table())
            .with_row_index("doc_index")
            .with_columns(source_order=pl.lit(0), incumbent=pl.lit(False))
        )
    docs = pl.read_parquet(paths).sort("doc_id").with_row_index("doc_index")
    state = output_dir(config) / STATE_FILE
    previous = (
        pl.read_parquet(state)["doc_id"] if state.is_file() else pl.Series([], dtype=pl.String)
    )
    return docs.with_columns(
        source_order=pl.col("source").replace_strict(order, default=len(order)),
        incumbent=pl.col("doc_id").is_in(previous.implode()),
    )


def _pick(members: list[dict[str, Any]]) -> dict[str, Any]:
    from snowcoder_assets.phase1.minhash import choose_representative

    incumbents = [m for m in members if m["incumbent"]]
    return choose_representative(incumbents or members)


def _settle(
    members: list[dict[str, Any]],
    cluster_id: str | None,
    method: str,
    similarity: Callable[[dict, dict], float],
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
    return len(members) - 1


def _exact(docs: pl.DataFrame, dropped: dict, clusters: list, summary: DedupSummary) -> None:
    groups = docs.filter(pl.col("exact_hash").is_duplicated()).group_by("exact_hash")
    for (content_hash,), group in sorted(groups, key=lambda g: str(g[0][0])):
        summary.exact_dropped += _settle(
            group.to_dicts(), f"exact:{content_hash}", "exact", lambda *_: 1.0,
            dropped, clusters, summary,
        )  # fmt: skip


def _near(
    config: SnowcoderConfig,
    docs: pl.DataFrame,
    partitions: list[str],
    dropped: dict,
    clusters: list,
    summary: DedupSummary,
) -> None:
    from snowcoder_assets.phase1.minhash import candidate_pairs, cluster, estimate_jaccard

    survivors = docs.filter(~pl.col("doc_id").is_in(list(dropped)))
    if survivors.height < 2:
        return
    minhash_paths = [
        str(minhash_path(config.data_dir, *split_partition_key(p))) for p in partitions
    ]
    index = survivors.select("doc_id", "doc_index")
    bands = (
        pl.scan_parquet(minhash_paths)
        .select("doc_id", "bands")
        .join(index.lazy(), on="doc_id", how="inner")
        .with_columns(band=pl.int_ranges(0, pl.col("bands").list.len(), dtype=pl.Int32))
        .explode("bands", "band")
        .rename({"bands": "hash"})
        .select("doc_index", "band", "hash")
    )
    pairs = candidate_pairs(bands)
    if len(pairs) == 0:
        return
    candidates = np.unique(pairs)
    sig_frame = (
        pl.scan_parquet(minhash_paths)
        .select("doc_id", "signature")
        .join(index.lazy(), on="doc_id", how="inner")
        .filter(pl.col("doc_index").is_in(candidates.tolist()))
        .collect()
    )
    position = np.full(docs.height, -1, dtype=np.int64)
    position[sig_frame["doc_index"].to_numpy()] = np.arange(sig_frame.height)
    matrix = np.stack(sig_frame["signature"].to_numpy()) if sig_frame.height else None

    def lookup(idx: np.ndarray) -> np.ndarray:
        return matrix[position[idx]]

    roots = cluster(docs.height, pairs, lookup, config.dedup.minhash)
    members_by_root: dict[int, list[int]] = {}
    for i in candidates.tolist():
        members_by_root.setdefault(int(roots[i]), []).append(i)

    def similarity(member: dict, rep: dict) -> float:
        pair = lookup(np.array([member["doc_index"], rep["doc_index"]]))
        return estimate_jaccard(pair[0], pair[1])

    for _root, member_idx in sorted(members_by_root.items()):
        if len(member_idx) >= 2:
            summary.near_dropped += _settle(
                docs[member_idx].to_dicts(), None, "near", similarity, dropped, clusters, summary
            )


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
    docs: pl.DataFrame,
    dropped: dict,
    clusters: list,
    summary: DedupSummary,
) -> None:
    """Per-partition decision and cluster lineage files (only where they changed), then the
    survivor state the next run treats as incumbents."""
    partition_of = dict(zip(docs["doc_id"].to_list(), docs["partition"].to_list(), strict=True))
    by_partition: dict[str, list[dict]] = {}
    for doc_id, (stage, reason, detail) in sorted(dropped.items()):
        by_partition.setdefault(partition_of[doc_id], []).append(
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
    survivors = docs.filter(~pl.col("doc_id").is_in(list(dropped))).select("doc_id")
    write_table(output_dir(config) / STATE_FILE, survivors.to_arrow())


def _write_if_changed(path: Path, table: pa.Table) -> None:
    """Cluster ids of untouched partitions can still move (a union-find root changed): compare
    with the file on disk and rewrite only when the rows differ."""
    import pyarrow.parquet as pq

    if path.is_file() and pq.read_table(path).equals(table):
        return
    write_table(path, table)
