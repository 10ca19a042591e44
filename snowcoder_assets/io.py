"""Shared helpers every stage uses: stable ids, content hashes and atomic parquet/JSON writes.

A write goes to a temporary file in the target folder and is renamed into place, so a killed
run never leaves a half-written file and a re-run simply overwrites. On object storage (a
`data_dir` URL, see storage.py) the temporary file is local and is uploaded in one request
once complete: readers see the old object or the new one, never a part.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from snowcoder_assets.storage import DataPath, is_remote, upload

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: mkstemp creates 0600 files, renamed files get the usual mode
FILE_MODE = 0o666 & ~_UMASK
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 1  # same size as the default level 3 on code, ~1.4x faster
ROW_GROUP_BYTES = 64 * 1024 * 1024


BATCH_ROWS = 512
DIGEST_CHUNK = 4 << 20


def digest(*parts: Any) -> str:
    """A short stable hash of JSON-serializable parts (configuration sections, row lists)."""
    payload = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(payload.encode(), digest_size=12).hexdigest()


def file_digest(path: DataPath) -> str:
    """xxh3-128 of a file's bytes (several GB/s): what a data version is made of."""
    import xxhash

    hasher = xxhash.xxh3_128()
    with path.open("rb") as handle:
        while chunk := handle.read(DIGEST_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def files_under(folder: DataPath) -> list[DataPath]:
    """Every visible file below `folder`, in path order (temp and hidden files left out)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def iter_rows(
    path: DataPath, columns: Sequence[str] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows (as dicts) of one parquet file."""
    with open_parquet(path) as parquet:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield batch.to_pylist()


def doc_id_for(source: str, repo: str, path: str) -> str:
    """Stable across runs and machines: a hash of where the file lives, not what it holds."""
    key = f"{source}\0{repo}\0{path}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def content_sha(text: str) -> str:
    """SHA-256 of the UTF-8 text (BOM and source encoding removed)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def open_parquet(path: DataPath) -> pq.ParquetFile:
    """A parquet file by local path, or streamed by ranged reads from object storage."""
    return pq.ParquetFile(path.open("rb") if is_remote(path) else path)


def read_table(path: DataPath, columns: Sequence[str] | None = None) -> pa.Table:
    """One parquet file as a table, from a local path or object storage."""
    if not is_remote(path):
        return pq.read_table(path, columns=columns)
    with path.open("rb") as handle:
        return pq.read_table(handle, columns=columns)


@contextmanager
def atomic_path(target: DataPath) -> Iterator[Path]:
    """Yield a temporary local path; put it in place as `target` only on success (a rename
    beside `target`, or one upload to object storage)."""
    remote = is_remote(target)
    if not remote:
        target.parent.mkdir(parents=True, exist_ok=True)
    scratch = None if remote else target.parent  # a rename needs the same filesystem
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=scratch)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if remote:
            upload(tmp, target)
        else:
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(target: DataPath, payload: Any) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def write_jsonl(target: DataPath, rows: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line, whole or not at all (a reader never sees half a file)."""
    with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_json(path: DataPath) -> Any:
    return json.loads(path.read_text())


def write_table(target: DataPath, table: pa.Table) -> None:
    """Write one whole table atomically."""
    with atomic_path(target) as tmp:
        pq.write_table(
            table, tmp, compression=PARQUET_COMPRESSION, compression_level=PARQUET_COMPRESSION_LEVEL
        )


class ParquetBatchWriter:
    """Streams rows into one parquet file in bounded memory; the file appears atomically on close.

    Rows are buffered column-wise and flushed as a row group once they hold about
    `ROW_GROUP_BYTES` of payload, so a shard of any size never sits in memory whole. Columns
    named in `text_columns` (unique file contents) skip dictionary encoding and statistics,
    which cost time and buy nothing there.
    """

    def __init__(
        self,
        target: DataPath,
        schema: pa.Schema,
        size_field: str | None = None,
        text_columns: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        self.schema = schema
        self.size_field = size_field
        self.rows_written = 0
        self._names = schema.names
        self._columns: dict[str, list[Any]] = {name: [] for name in self._names}
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self._context = atomic_path(target)
        self._tmp = self._context.__enter__()
        plain = [n for n in self._names if n not in text_columns]
        self._writer = pq.ParquetWriter(
            self._tmp,
            schema,
            compression=PARQUET_COMPRESSION,
            compression_level=PARQUET_COMPRESSION_LEVEL,
            use_dictionary=plain,
            write_statistics=plain,
        )

    def write(self, row: dict[str, Any]) -> None:
        for name, column in self._columns.items():
            column.append(row.get(name))
        self._buffered_rows += 1
        self._buffered_bytes += (row.get(self.size_field) or 0) if self.size_field else 64
        if self._buffered_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.write(row)

    def _flush(self) -> None:
        if self._buffered_rows:
            self._writer.write_table(pa.Table.from_pydict(self._columns, schema=self.schema))
            self.rows_written += self._buffered_rows
            self._columns = {name: [] for name in self._names}
            self._buffered_rows, self._buffered_bytes = 0, 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
        self._context.__exit__(None, None, None)

    def abort(self) -> None:
        self._writer.close()
        self._context.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> ParquetBatchWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
