"""The per-partition phase-1 stages: signals, filter, dedup decisions applied, decontamination.

Each reads its upstream partition in batches, writes its own parquet and `decisions` rows
atomically, and finishes with a completion marker whose input digest says what it consumed
(see `snowcoder_assets/stages.py`): the runner skips partitions whose digest is unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import ParquetBatchWriter
from snowcoder_assets.layout import lineage_part_path, raw_shard_path, shard_registry_path
from snowcoder_assets.lineage.schemas import (
    CONTAMINATION_SCHEMA,
    DECISIONS_SCHEMA,
    IDENTITY_COLUMNS,
    IDENTITY_FIELDS,
)
from snowcoder_assets.raw.shards import RAW_STAGE, load_assignments
from snowcoder_assets.stages import digest, output_digest, read_marker, write_marker

SIGNALS_STAGE = "file_signals"
FILTER_STAGE = "filtered_files"
DEDUP_STAGE = "deduped_files"
DECONT_STAGE = "decontaminated_files"
SIGNALS_VERSION = 1  # bump when compute_signals changes meaning, so stored signals recompute
BATCH_ROWS = 512

Log = Callable[[str], None]


@dataclass
class StageStats:
    """Counts every stage reports: files in, kept, dropped by reason, bytes kept per language."""

    files_in: int = 0
    kept: int = 0
    bytes_kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    kept_by_lang: Counter[str] = field(default_factory=Counter)
    bytes_by_lang: Counter[str] = field(default_factory=Counter)

    def count(self, row: dict[str, Any], kept: bool, reason: str | None) -> None:
        self.files_in += 1
        if kept:
            self.kept += 1
            self.bytes_kept += row["bytes"] or 0
            self.kept_by_lang[row["lang"]] += 1
            self.bytes_by_lang[row["lang"]] += row["bytes"] or 0
        else:
            self.dropped[reason or "unknown"] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_in": self.files_in,
            "kept": self.kept,
            "bytes_kept": self.bytes_kept,
            "dropped": dict(self.dropped),
            "kept_by_lang": dict(self.kept_by_lang),
            "bytes_by_lang": dict(self.bytes_by_lang),
        }


def stage_path(data_dir: Path, stage: str, source: str, shard: str, suffix: str = "") -> Path:
    return data_dir / stage / source / f"{shard}{suffix}.parquet"


def iter_rows(path: Path, columns: list[str] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows (as dicts) of one partition's parquet file."""
    parquet = pq.ParquetFile(path)
    with parquet:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield batch.to_pylist()


def decision(
    row: dict[str, Any], stage: str, kept: bool, reason: str | None, detail: str | None
) -> dict[str, Any]:
    return {
        "doc_id": row["doc_id"],
        "stage": stage,
        "kept": kept,
        "reason": reason,
        "detail": detail,
        "partition": row["partition"],
    }


# -- file_signals ---------------------------------------------------------------------------


def signals_schema() -> pa.Schema:
    from snowcoder_assets.phase1.signals import SIGNALS_SCHEMA

    return pa.schema([*IDENTITY_FIELDS, *SIGNALS_SCHEMA])


MINHASH_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("bands", pa.list_(pa.uint64())),
        ("signature", pa.list_(pa.uint32())),
    ]
)


def signals_input_digest(config: SnowcoderConfig, source: str, shard: str) -> str:
    upstream = output_digest(config.data_dir, RAW_STAGE, source, shard)
    # The clustering threshold does not change signatures: leave it out of what they depend on.
    minhash = config.dedup.minhash.model_dump(exclude={"threshold"})
    return digest(SIGNALS_STAGE, SIGNALS_VERSION, minhash, upstream)


def run_file_signals(config: SnowcoderConfig, source: str, shard: str, log: Log) -> StageStats:
    """Quality signals and MinHash band keys of every usable file of the partition."""
    from snowcoder_assets.phase1.minhash import band_hashes, signatures
    from snowcoder_assets.phase1.signals import compute_signals

    data_dir, minhash = config.data_dir, config.dedup.minhash
    stats = StageStats()
    raw = raw_shard_path(data_dir, source, shard)
    with (
        ParquetBatchWriter(
            stage_path(data_dir, SIGNALS_STAGE, source, shard), signals_schema()
        ) as out,
        ParquetBatchWriter(
            stage_path(data_dir, SIGNALS_STAGE, source, shard, ".minhash"), MINHASH_SCHEMA
        ) as sig_out,
    ):
        for rows in iter_rows(raw, [*IDENTITY_COLUMNS, "content"]):
            texts = [row.pop("content") for row in rows]
            sigs = signatures(texts, minhash)
            bands = band_hashes(sigs, minhash)
            for row, text, sig, band in zip(rows, texts, sigs, bands, strict=True):
                out.write({**row, **compute_signals(text, row["lang"], row["path"])})
                sig_out.write(
                    {
                        "doc_id": row["doc_id"],
                        "bands": band.tolist(),
                        "signature": sig.astype("uint32").tolist(),
                    }
                )
                stats.count(row, True, None)
    write_marker(
        data_dir,
        SIGNALS_STAGE,
        source,
        shard,
        signals_input_digest(config, source, shard),
        **stats.as_dict(),
    )
    return stats


# -- filtered_files -------------------------------------------------------------------------

FILTERED_SCHEMA = pa.schema([*IDENTITY_FIELDS, ("exact_hash", pa.string())])


def filter_input_digest(config: SnowcoderConfig, source: str, shard: str) -> str:
    upstream = output_digest(config.data_dir, SIGNALS_STAGE, source, shard)
    return digest(FILTER_STAGE, config.filters.model_dump(mode="json"), upstream)


def run_filter(config: SnowcoderConfig, source: str, shard: str, log: Log) -> StageStats:
    """Apply the configured thresholds to stored signals: cheap, never recomputes signals."""
    from snowcoder_assets.phase1.filters import decide

    data_dir, stats = config.data_dir, StageStats()
    policies: dict[str | None, Any] = {}
    with (
        ParquetBatchWriter(
            stage_path(data_dir, FILTER_STAGE, source, shard), FILTERED_SCHEMA
        ) as out,
        ParquetBatchWriter(
            lineage_part_path(data_dir, "decisions", "filter", source, shard), DECISIONS_SCHEMA
        ) as decisions,
    ):
        for rows in iter_rows(stage_path(data_dir, SIGNALS_STAGE, source, shard)):
            for row in rows:
                lang = row["lang"]
                if lang not in policies:
                    policies[lang] = config.filters.for_language(lang)
                kept, reason, detail = decide(row, lang, policies[lang])
                decisions.write(decision(row, "filter", kept, reason, detail))
                if kept:
                    out.write(row)
                stats.count(row, kept, reason)
    write_marker(
        data_dir,
        FILTER_STAGE,
        source,
        shard,
        filter_input_digest(config, source, shard),
        **stats.as_dict(),
    )
    return stats


# -- deduped_files (applies the global clustering's decisions) ------------------------------

DEDUPED_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("partition", pa.string()),
        ("lang", pa.string()),
        ("bytes", pa.int64()),
    ]
)


def dedup_input_digest(config: SnowcoderConfig, source: str, shard: str) -> str:
    from snowcoder_assets.phase1.dedup import partition_decisions_digest

    upstream = output_digest(config.data_dir, FILTER_STAGE, source, shard)
    return digest(DEDUP_STAGE, upstream, partition_decisions_digest(config, source, shard))


def run_dedup_apply(config: SnowcoderConfig, source: str, shard: str, log: Log) -> StageStats:
    """Record exact and near dedup decisions for the partition's files; keep the survivors."""
    from snowcoder_assets.phase1.dedup import load_partition_decisions

    data_dir, stats = config.data_dir, StageStats()
    dropped = load_partition_decisions(config, source, shard)  # doc_id -> (stage, reason, detail)
    with (
        ParquetBatchWriter(stage_path(data_dir, DEDUP_STAGE, source, shard), DEDUPED_SCHEMA) as out,
        ParquetBatchWriter(
            lineage_part_path(data_dir, "decisions", "exact_dedup", source, shard), DECISIONS_SCHEMA
        ) as exact_out,
        ParquetBatchWriter(
            lineage_part_path(data_dir, "decisions", "near_dedup", source, shard), DECISIONS_SCHEMA
        ) as near_out,
    ):
        for rows in iter_rows(stage_path(data_dir, FILTER_STAGE, source, shard)):
            for row in rows:
                stage, reason, detail = dropped.get(row["doc_id"], (None, None, None))
                exact_kept = stage != "exact_dedup"
                exact_out.write(
                    decision(
                        row,
                        "exact_dedup",
                        exact_kept,
                        None if exact_kept else reason,
                        detail if not exact_kept else None,
                    )
                )
                if exact_kept:
                    near_kept = stage != "near_dedup"
                    near_out.write(
                        decision(
                            row,
                            "near_dedup",
                            near_kept,
                            None if near_kept else reason,
                            None if near_kept else detail,
                        )
                    )
                kept = stage is None
                if kept:
                    out.write(row)
                stats.count(row, kept, reason)
    write_marker(
        data_dir,
        DEDUP_STAGE,
        source,
        shard,
        dedup_input_digest(config, source, shard),
        **stats.as_dict(),
    )
    return stats


# -- decontaminated_files -------------------------------------------------------------------

DECONTAMINATED_SCHEMA = pa.schema([*IDENTITY_FIELDS, ("content", pa.large_string())])


@cache
def _benchmark_index(config_json: str) -> Any:
    from snowcoder_assets.phase1.decontaminate import BenchmarkIndex, DecontaminationConfig

    return BenchmarkIndex.build(DecontaminationConfig.model_validate_json(config_json))


def benchmark_index(config: SnowcoderConfig) -> Any:
    return _benchmark_index(config.decontamination.model_dump_json())


def decont_input_digest(config: SnowcoderConfig, source: str, shard: str) -> str:
    upstream = output_digest(config.data_dir, DEDUP_STAGE, source, shard)
    return digest(DECONT_STAGE, benchmark_index(config).fingerprint(), upstream)


def run_decontaminate(config: SnowcoderConfig, source: str, shard: str, log: Log) -> StageStats:
    """Drop files that overlap benchmark problems; record the evidence in `contamination`."""
    data_dir, stats, index = config.data_dir, StageStats(), benchmark_index(config)
    survivors = {
        r["doc_id"]
        for rows in iter_rows(stage_path(data_dir, DEDUP_STAGE, source, shard), ["doc_id"])
        for r in rows
    }
    with (
        ParquetBatchWriter(
            stage_path(data_dir, DECONT_STAGE, source, shard),
            DECONTAMINATED_SCHEMA,
            "bytes",
            ("content",),
        ) as out,
        ParquetBatchWriter(
            lineage_part_path(data_dir, "decisions", "decontaminate", source, shard),
            DECISIONS_SCHEMA,
        ) as decisions,
        ParquetBatchWriter(
            lineage_part_path(data_dir, "contamination", "decontaminate", source, shard),
            CONTAMINATION_SCHEMA,
        ) as evidence,
    ):
        for rows in iter_rows(
            raw_shard_path(data_dir, source, shard), [*IDENTITY_COLUMNS, "content"]
        ):
            for row in rows:
                if row["doc_id"] not in survivors:
                    continue
                matches = index.find(row["content"])
                for match in matches:
                    evidence.write(
                        {
                            "doc_id": row["doc_id"],
                            "benchmark": match.benchmark,
                            "task_id": match.task_id,
                            "evidence": match.evidence,
                        }
                    )
                kept = not matches
                reason = None if kept else matches[0].reason
                detail = None if kept else f"{matches[0].benchmark} {matches[0].task_id}"
                decisions.write(decision(row, "decontaminate", kept, reason, detail))
                if kept:
                    out.write(row)
                stats.count(row, kept, reason)
    write_marker(
        data_dir,
        DECONT_STAGE,
        source,
        shard,
        decont_input_digest(config, source, shard),
        **stats.as_dict(),
    )
    return stats


def finished_partitions(config: SnowcoderConfig, stage: str) -> list[tuple[str, str]]:
    """(source, shard) of every registered shard of a configured source that `stage` finished."""
    out = []
    for source in config.sources:
        registry = load_assignments(shard_registry_path(config.data_dir, source.name))
        out += [
            (source.name, shard)
            for shard in sorted(set(registry.values()))
            if read_marker(config.data_dir, stage, source.name, shard) is not None
        ]
    return out
