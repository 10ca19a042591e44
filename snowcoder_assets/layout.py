"""Where each artifact lives under `data_dir`, in one place so stages never guess paths."""

from __future__ import annotations

from pathlib import Path

LINEAGE_DIR = "lineage"
LINEAGE_DB = "lineage.duckdb"


def raw_shard_path(data_dir: Path, source: str, shard: str) -> Path:
    return data_dir / "raw_files" / source / f"{shard}.parquet"


def shard_registry_path(data_dir: Path, source: str) -> Path:
    return data_dir / "shards" / f"{source}.parquet"


def lineage_table_dir(data_dir: Path, table: str) -> Path:
    return data_dir / LINEAGE_DIR / table


def lineage_part_path(data_dir: Path, table: str, stage: str, source: str, shard: str) -> Path:
    """One parquet file per (table, stage, partition): re-running a partition replaces it."""
    return lineage_table_dir(data_dir, table) / stage / source / f"{shard}.parquet"


def lineage_db_path(data_dir: Path) -> Path:
    return data_dir / LINEAGE_DB
