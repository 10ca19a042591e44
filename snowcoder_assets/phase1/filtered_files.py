"""`filtered_files`: the configured thresholds applied to one shard's stored signals.

Cheap by design: it reads `file_signals` and never recomputes a signal, so changing a threshold
re-runs only this stage onward. Every file gets a `filter` decision with the failed threshold's
name as its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import ParquetBatchWriter, iter_rows
from snowcoder_assets.layout import lineage_part_path, stage_path
from snowcoder_assets.lineage.decisions import StageStats, decision
from snowcoder_assets.lineage.schemas import DECISIONS_SCHEMA, IDENTITY_FIELDS
from snowcoder_assets.phase1.file_signals import signals_path

STAGE = "filtered_files"
DECISION_STAGE = "filter"
FILTERED_SCHEMA = pa.schema([*IDENTITY_FIELDS, ("exact_hash", pa.string())])


def filtered_path(data_dir: Path, source: str, shard: str) -> Path:
    return stage_path(data_dir, STAGE, source, shard)


def filter_outputs(data_dir: Path, source: str, shard: str) -> list[Path]:
    return [
        filtered_path(data_dir, source, shard),
        lineage_part_path(data_dir, "decisions", DECISION_STAGE, source, shard),
    ]


def run_filter(
    config: SnowcoderConfig, source: str, shard: str, log: Callable[[str], None]
) -> StageStats:
    """Apply the configured thresholds to stored signals: cheap, never recomputes signals."""
    from snowcoder_assets.phase1.filters import decide

    data_dir, stats = config.data_dir, StageStats()
    policies: dict[str | None, Any] = {}
    kept_path, decisions_path = filter_outputs(data_dir, source, shard)
    with (
        ParquetBatchWriter(kept_path, FILTERED_SCHEMA) as out,
        ParquetBatchWriter(decisions_path, DECISIONS_SCHEMA) as decisions,
    ):
        for rows in iter_rows(signals_path(data_dir, source, shard)):
            for row in rows:
                lang = row["lang"]
                if lang not in policies:
                    policies[lang] = config.filters.for_language(lang)
                kept, reason, detail = decide(row, lang, policies[lang])
                decisions.write(decision(row, DECISION_STAGE, kept, reason, detail))
                if kept:
                    out.write(row)
                stats.count(row, kept, reason)
    return stats
