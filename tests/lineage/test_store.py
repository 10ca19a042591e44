"""The lineage store: views resolve before any data, and `file_status` picks the first drop."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from snowcoder_assets.io import write_table
from snowcoder_assets.layout import lineage_part_path
from snowcoder_assets.lineage.schemas import DECISIONS_SCHEMA, FILES_SCHEMA, TABLES
from snowcoder_assets.lineage.store import refresh_views


def test_views_exist_with_their_columns_before_any_data(tmp_path: Path):
    db = refresh_views(tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        for table, schema in TABLES.items():
            cursor = con.execute(f"SELECT * FROM {table}")
            assert [c[0] for c in cursor.description] == schema.names
            assert cursor.fetchall() == []
        status_columns = [c[0] for c in con.execute("SELECT * FROM file_status").description]
    assert {"doc_id", "repo", "path", "lang", "kept", "stage", "reason"} <= set(status_columns)


def _write(tmp_path: Path, table: str, stage: str, rows: list[dict], schema: pa.Schema) -> None:
    write_table(
        lineage_part_path(tmp_path, table, stage, "s", "00000"),
        pa.Table.from_pylist(rows, schema=schema),
    )


def test_file_status_reports_first_drop_else_last_keep(tmp_path: Path):
    files = [
        {
            "doc_id": d,
            "source": "s",
            "partition": "s/00000",
            "repo": "r",
            "path": f"{d}.py",
            "lang": "python",
            "bytes": 1,
            "content_sha": None,
        }
        for d in ("a", "b", "c")
    ]
    _write(tmp_path, "files", "ingest", files, FILES_SCHEMA)

    def decision(doc: str, stage: str, kept: bool, reason: str | None = None) -> dict:
        return {
            "doc_id": doc,
            "stage": stage,
            "kept": kept,
            "reason": reason,
            "detail": None,
            "partition": "s/00000",
        }

    _write(
        tmp_path,
        "decisions",
        "ingest",
        [decision("a", "ingest", True), decision("b", "ingest", True)],
        DECISIONS_SCHEMA,
    )
    _write(
        tmp_path,
        "decisions",
        "filter",
        [decision("a", "filter", True), decision("b", "filter", False, "max_line_length")],
        DECISIONS_SCHEMA,
    )
    _write(
        tmp_path,
        "decisions",
        "near_dedup",
        [decision("b", "near_dedup", False, "near_duplicate")],
        DECISIONS_SCHEMA,
    )
    with duckdb.connect(str(refresh_views(tmp_path)), read_only=True) as con:
        rows = con.execute(
            "SELECT doc_id, kept, stage, reason FROM file_status ORDER BY doc_id"
        ).fetchall()
    assert rows == [
        ("a", True, "filter", None),
        ("b", False, "filter", "max_line_length"),
        ("c", None, None, "undecided"),
    ]
