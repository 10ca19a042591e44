"""Invariants of `raw_files`, read back from what the partition wrote."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from snowcoder_assets.layout import lineage_part_path
from snowcoder_assets.storage import connect_duckdb

EVERY_FILE_DECIDED = "every_file_decided"
UNIQUE_DOC_ID = "unique_doc_id"
STAGE = "ingest"


def _parts(data_dir: Path, source: str, shard: str) -> tuple[str, str]:
    files = lineage_part_path(data_dir, "files", STAGE, source, shard)
    decisions = lineage_part_path(data_dir, "decisions", STAGE, source, shard)
    return str(files), str(decisions)


def check_every_file_decided(data_dir: Path, source: str, shard: str) -> dg.AssetCheckResult:
    """Every file the shard read has exactly one ingest decision, and no decision is orphaned."""
    files, decisions = _parts(data_dir, source, shard)
    with connect_duckdb() as con:
        undecided = con.execute(
            "SELECT f.doc_id FROM read_parquet(?) f ANTI JOIN read_parquet(?) d USING (doc_id)",
            [files, decisions],
        ).fetchall()
        orphaned = con.execute(
            "SELECT d.doc_id FROM read_parquet(?) d ANTI JOIN read_parquet(?) f USING (doc_id)",
            [decisions, files],
        ).fetchall()
    bad = [r[0] for r in undecided + orphaned]
    return dg.AssetCheckResult(
        check_name=EVERY_FILE_DECIDED,
        asset_key="raw_files",
        passed=not bad,
        metadata={
            "num_undecided": len(undecided),
            "num_orphaned": len(orphaned),
            "first_doc_ids": bad[:10],
        },
    )


def check_unique_doc_ids(data_dir: Path, source: str, shard: str) -> dg.AssetCheckResult:
    """No doc_id appears twice among the shard's files."""
    files, _ = _parts(data_dir, source, shard)
    with connect_duckdb() as con:
        dupes = con.execute(
            "SELECT doc_id FROM read_parquet(?) GROUP BY doc_id HAVING count(*) > 1", [files]
        ).fetchall()
    return dg.AssetCheckResult(
        check_name=UNIQUE_DOC_ID,
        asset_key="raw_files",
        passed=not dupes,
        metadata={"num_duplicates": len(dupes), "first_doc_ids": [r[0] for r in dupes[:10]]},
    )
