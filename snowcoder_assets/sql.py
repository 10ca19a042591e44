"""Load the project's SQL statements from `sql/` by name.

Values go in as DuckDB parameters. The only text substituted into a statement is a literal
that DuckDB cannot take as a parameter (a parquet glob inside a view definition); it is
quoted here, in one place, never formatted by callers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from snowcoder_assets.config import project_root


def sql_dir() -> Path:
    return project_root() / "sql"


@cache
def _read(name: str) -> str:
    path = sql_dir() / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL statement named {name!r} in {sql_dir()}")
    return path.read_text()


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_sql(name: str, **literals: str) -> str:
    """The statement `sql/<name>.sql`, with `{key}` placeholders replaced by given SQL text."""
    text = _read(name)
    for key, value in literals.items():
        text = text.replace("{" + key + "}", value)
    return text
