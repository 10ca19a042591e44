"""`deduped_files`: one shard's files minus the exact and near duplicates `dup_clusters` decided.

Every file gets an `exact_dedup` decision, and every file that survives it a `near_dedup`
decision; a dropped file's detail names the copy that was kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import ParquetBatchWriter, iter_rows
from snowcoder_assets.layout import lineage_part_path, stage_path
from snowcoder_assets.lineage.decisions import StageStats, decision
from snowcoder_assets.lineage.schemas import DECISIONS_SCHEMA
from snowcoder_assets.phase1.dup_clusters import load_partition_decisions
from snowcoder_assets.phase1.filtered_files import filtered_path

STAGE = "deduped_files"
EXACT, NEAR = "exact_dedup", "near_dedup"
DEDUPED_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("partition", pa.string()),
        ("lang", pa.string()),
        ("bytes", pa.int64()),
    ]
)


def deduped_path(data_dir: Path, source: str, shard: str) -> Path:
    return stage_path(data_dir, STAGE, source, shard)


def dedup_outputs(data_dir: Path, source: str, shard: str) -> list[Path]:
    return [
        deduped_path(data_dir, source, shard),
        lineage_part_path(data_dir, "decisions", EXACT, source, shard),
        lineage_part_path(data_dir, "decisions", NEAR, source, shard),
    ]


def run_dedup_apply(
    config: SnowcoderConfig, source: str, shard: str, log: Callable[[str], None]
) -> StageStats:
    """Record exact and near dedup decisions for the partition's files; keep the survivors."""
    data_dir, stats = config.data_dir, StageStats()
    dropped = load_partition_decisions(config, source, shard)  # doc_id -> (stage, reason, detail)
    kept_path, exact_path, near_path = dedup_outputs(data_dir, source, shard)
    with (
        ParquetBatchWriter(kept_path, DEDUPED_SCHEMA) as out,
        ParquetBatchWriter(exact_path, DECISIONS_SCHEMA) as exact_out,
        ParquetBatchWriter(near_path, DECISIONS_SCHEMA) as near_out,
    ):
        for rows in iter_rows(filtered_path(data_dir, source, shard)):
            for row in rows:
                stage, reason, detail = dropped.get(row["doc_id"], (None, None, None))
                exact_kept = stage != EXACT
                exact_out.write(
                    decision(
                        row, EXACT, exact_kept, *((None, None) if exact_kept else (reason, detail))
                    )
                )
                if exact_kept:
                    near_kept = stage != NEAR
                    near_out.write(
                        decision(
                            row, NEAR, near_kept, *((None, None) if near_kept else (reason, detail))
                        )
                    )
                kept = stage is None
                if kept:
                    out.write(row)
                stats.count(row, kept, reason)
    return stats
