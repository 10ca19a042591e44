"""The lineage store: parquet tables written by stages, and a DuckDB file holding only views.

`lineage.duckdb` is rebuilt from scratch by every run into a temporary file and renamed into
place, so parallel runs never contend for a DuckDB writer lock, a user's open session keeps
working, and a moved `data_dir` heals on the next run (views use absolute paths).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from snowcoder_assets.io import write_table
from snowcoder_assets.layout import lineage_db_path, lineage_table_dir
from snowcoder_assets.lineage.schemas import STAGE_ORDER, TABLES
from snowcoder_assets.sql import load_sql, quote_literal
from snowcoder_assets.storage import connect_duckdb, data_path, is_remote, url_of

EMPTY_FILE = "_empty.parquet"
VIEW_ORDER = ("stages", *TABLES, "file_status")


def ensure_tables(data_dir: Path) -> None:
    """Give every table its zero-row schema file, so its view resolves before any data."""
    for table, schema in TABLES.items():
        empty = lineage_table_dir(data_dir, table) / EMPTY_FILE
        if not empty.is_file():
            write_table(empty, pa.Table.from_pylist([], schema=schema))


def refresh_views(data_dir: Path) -> Path:
    """Rebuild `<data_dir>/lineage.duckdb` with the views of every lineage table."""
    data_dir = data_dir if is_remote(data_dir) else data_dir.resolve()
    ensure_tables(data_dir)
    target = lineage_db_path(data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".lineage.", suffix=".duckdb", dir=target.parent)
    os.close(fd)
    os.unlink(tmp_name)  # DuckDB wants to create the file itself
    try:
        with connect_duckdb(tmp_name) as con:
            for view in VIEW_ORDER:
                con.execute(_view_sql(data_dir, view))
        os.replace(tmp_name, target)
    finally:
        for leftover in (tmp_name, tmp_name + ".wal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return target


def _view_sql(data_dir: Path, view: str) -> str:
    if view == "stages":
        rows = ", ".join(f"({quote_literal(s)}, {i})" for i, s in enumerate(STAGE_ORDER))
        return load_sql("create_view_stages", stage_rows=rows)
    if view == "file_status":
        return load_sql("create_view_file_status")
    glob = url_of(lineage_table_dir(data_dir, view) / "**" / "*.parquet")
    return load_sql(f"create_view_{view}", table_glob=quote_literal(glob))


def query(data_dir: Path, name: str, **params: Any) -> list[dict[str, Any]]:
    """Run `sql/<name>.sql` against the lineage views; rows as dicts."""
    db = lineage_db_path(data_dir)
    if not db.is_file():
        refresh_views(data_dir)
    with connect_duckdb(db, read_only=True) as con:
        cursor = con.execute(load_sql(name), params or None)
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


class LineageStore(dg.ConfigurableResource):
    """The lineage store of one `data_dir`, as a Dagster resource."""

    data_dir: str

    def refresh_views(self) -> Path:
        return refresh_views(data_path(self.data_dir))

    def query(self, name: str, **params: Any) -> list[dict[str, Any]]:
        return query(data_path(self.data_dir), name, **params)
