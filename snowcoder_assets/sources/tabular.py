"""Sources whose files are dataset rows: `parquet` and `jsonl` (a unit per input file, or per
slice of a file over the shard bounds: a run of row groups, a range of lines).

Rows carry The Stack v1 columns (names configurable). Every row, broken line or unreadable
row group becomes exactly one record, so a bad input is counted, never lost. Files are read in
batches (parquet) or line by line (JSON lines, gzip allowed), never whole (a jsonl slice, at
most `shard_max_bytes`, is read at once). `RowMapper` is the
one row -> record mapping, shared with the `hf_dataset` source.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import math
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from snowcoder_assets.config import HfDatasetSourceConfig, JsonlSourceConfig, ParquetSourceConfig
from snowcoder_assets.sources.base import (
    REASON_CORRUPT_FILE,
    REASON_CORRUPT_ROW,
    REASON_DUPLICATE_PATH,
    REASON_UNREADABLE,
    RawRecord,
    SourceUnit,
    record_from_bytes,
    record_from_text,
)

UNKNOWN_REPO = "unknown"  # repository of rows without one, and of unparseable lines and files
BATCH_ROWS = 1024  # parquet rows decoded at a time: bounds memory whatever the row group size
TabularConfig = ParquetSourceConfig | JsonlSourceConfig | HfDatasetSourceConfig
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
_JSON_TYPES[type(None)] = "null"
_SLICE = re.compile(r"^(?P<key>.+)#(?:rg|bytes)(?P<first>\d+)-(?P<last>\d+)$")
SAMPLE_BYTES = 1 << 20  # a jsonl file's first MiB estimates its rows per byte


class RowMapper:
    """Turns the rows of one unit into records; a repeated (repo, path) gets a `#dup` path."""

    def __init__(
        self, config: TabularConfig, max_bytes: int, fallback: str, unit_key: str = ""
    ) -> None:
        self.config = config
        self.unit_key = unit_key
        self.max_bytes = max_bytes
        self.fallback = fallback
        self._seen: set[str] = set()  # "repo\0path" of every record of the unit so far

    @property
    def columns(self) -> list[str]:
        """The columns a row is read from (everything else need not be loaded)."""
        c = self.config
        names = [c.content_column, c.repo_column, c.path_column, c.lang_column]
        return list(dict.fromkeys([*names, c.stars_column, c.licenses_column]))

    def record(self, row: Mapping[str, Any], index: int) -> RawRecord:
        """The record of row number `index` (0-based) of the unit."""
        record = row_record(row, index, self.config, self.max_bytes, self.fallback, self.unit_key)
        return self.unique(record)

    def unique(self, record: RawRecord) -> RawRecord:
        """The record itself, or a `duplicate_path` record when its (repo, path) was seen."""
        if self._add(record.repo, record.path):
            return record
        k = 1
        while not self._add(record.repo, f"{record.path}#dup{k}"):
            k += 1
        path, reason, detail = f"{record.path}#dup{k}", REASON_DUPLICATE_PATH, record.path
        return replace(record, path=path, text=None, encoding=None, reason=reason, detail=detail)

    def _add(self, repo: str, path: str) -> bool:
        key = f"{repo}\0{path}"
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def row_record(
    row: Mapping[str, Any],
    index: int,
    config: TabularConfig,
    max_bytes: int,
    fallback: str,
    unit_key: str = "",
) -> RawRecord:
    """One dataset row as a record: usable text, or the reason the row cannot be used.

    A row without a path is named after its unit and index (`<unit>#row-<i>`), so path-less
    rows of different units never share a doc_id."""
    repo = _name(row.get(config.repo_column)) or UNKNOWN_REPO
    path = _name(row.get(config.path_column)) or f"{unit_key}#row-{index}"
    content = row.get(config.content_column)
    if isinstance(content, str):
        record = record_from_text(repo, path, content, max_bytes)
    elif isinstance(content, bytes | bytearray | memoryview):
        record = record_from_bytes(repo, path, bytes(content), max_bytes, fallback)
    elif content is None:
        record = RawRecord(repo, path, 0, reason=REASON_CORRUPT_ROW, detail="missing content")
    else:
        detail = f"content is {type(content).__name__}, not text or bytes"
        record = RawRecord(repo, path, 0, reason=REASON_CORRUPT_ROW, detail=detail)
    lang = row.get(config.lang_column)
    record.lang_hint = _utf8(lang) if isinstance(lang, str) and lang else None
    record.stars = _as_int(row.get(config.stars_column))
    record.licenses = _as_licenses(row.get(config.licenses_column))
    return record


class _TabularFiles:
    """Units are the files a path or glob matches, keyed relative to the glob's fixed folder."""

    def __init__(
        self,
        config: TabularConfig,
        max_file_bytes: int,
        fallback: str,
        shard_limits: tuple[int, int] | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self.max_file_bytes = max_file_bytes
        self.fallback = fallback
        self.shard_limits = shard_limits  # (bytes, rows) a unit may hold; None = whole files

    def files(self) -> dict[str, Path]:
        """Unit key -> file; keys stay stable when files are added elsewhere under the glob."""
        pattern = str(self.config.path)
        matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not matches:
            raise FileNotFoundError(f"source {self.name!r}: {pattern} matches no file")
        base = _glob_base(pattern)
        return {Path(os.path.relpath(p, base)).as_posix(): Path(p) for p in matches}

    def units(self) -> Iterator[SourceUnit]:
        """One unit per file, or per slice of a file bigger than the shard limits (parquet: a
        run of row groups; uncompressed jsonl: a byte range cut at line ends). Slices follow
        from the file alone, so the same file gives the same units on every discovery."""
        for key, path in self.files().items():
            st = os.stat(path)
            fingerprint = f"{st.st_size}:{st.st_mtime_ns}"
            for suffix, num_bytes, rows in self.slices(path, st.st_size):
                yield SourceUnit(key + suffix, num_bytes, rows, fingerprint)

    def read(self, unit_keys: Iterable[str]) -> Iterator[RawRecord]:
        files = self.files()
        for unit_key in unit_keys:
            key, part = split_unit_key(unit_key, files)
            if key in files:  # a unit that vanished since listing has nothing left to read
                yield from self.read_file(key, files[key], part)

    def mapper(self, key: str) -> RowMapper:
        return RowMapper(self.config, self.max_file_bytes, self.fallback, key)

    def slices(self, path: Path, size: int) -> list[tuple[str, int, int]]:
        """(unit key suffix, bytes, rows) of the file's units: one unsliced unit by default."""
        return [("", size, 1)]

    def read_file(
        self, key: str, path: Path, part: tuple[int, int] | None = None
    ) -> Iterator[RawRecord]:
        raise NotImplementedError


def split_unit_key(unit_key: str, files: Mapping[str, Path]) -> tuple[str, tuple[int, int] | None]:
    """(file key, (first, last) of the slice) of a unit key; (key, None) for a whole file."""
    match = _SLICE.match(unit_key)
    if unit_key in files or match is None:
        return unit_key, None
    return match["key"], (int(match["first"]), int(match["last"]))


def pack_slices(sizes: list[tuple[int, int]], limits: tuple[int, int]) -> list[tuple[int, int]]:
    """Consecutive runs (first, last) of items (bytes, rows), each run within `limits` unless
    one item alone exceeds them; greedy, so the runs depend on the sizes alone."""
    runs: list[tuple[int, int]] = []
    first, used_bytes, used_rows = 0, 0, 0
    for i, (num_bytes, rows) in enumerate(sizes):
        if i > first and (used_bytes + num_bytes > limits[0] or used_rows + rows > limits[1]):
            runs.append((first, i - 1))
            first, used_bytes, used_rows = i, 0, 0
        used_bytes += num_bytes
        used_rows += rows
    if sizes:
        runs.append((first, len(sizes) - 1))
    return runs


class ParquetSource(_TabularFiles):
    """Parquet files read one row group at a time, in batches, only the needed columns; a file
    over the shard limits becomes one unit per run of row groups (`<file>#rg<first>-<last>`)."""

    def slices(self, path: Path, size: int) -> list[tuple[str, int, int]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            meta = pq.read_metadata(path)
        except (OSError, ValueError, pa.ArrowException):
            return [("", size, 1)]  # read_file records the file as corrupt
        groups = [
            (meta.row_group(g).total_byte_size, meta.row_group(g).num_rows)
            for g in range(meta.num_row_groups)
        ]
        runs = pack_slices(groups, self.shard_limits) if self.shard_limits else []
        if len(runs) <= 1:
            return [("", size, max(meta.num_rows, 1))]
        return [
            (
                f"#rg{a}-{b}",
                sum(g[0] for g in groups[a : b + 1]),
                max(sum(g[1] for g in groups[a : b + 1]), 1),
            )
            for a, b in runs
        ]

    def read_file(
        self, key: str, path: Path, part: tuple[int, int] | None = None
    ) -> Iterator[RawRecord]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        errors = (OSError, ValueError, pa.ArrowException)
        unit = key if part is None else f"{key}#rg{part[0]}-{part[1]}"
        try:
            parquet = pq.ParquetFile(path)
            present = set(parquet.schema_arrow.names)
        except errors as exc:
            detail = f"not a readable parquet file: {str(exc).strip()}"
            yield RawRecord(UNKNOWN_REPO, unit, 0, reason=REASON_CORRUPT_FILE, detail=detail)
            return
        mapper = self.mapper(key)  # row numbers and path-less names stay file-wide
        columns = [c for c in mapper.columns if c in present]
        first, last = part if part is not None else (0, parquet.num_row_groups - 1)
        first_row = sum(parquet.metadata.row_group(g).num_rows for g in range(first))
        with parquet:
            for group in range(first, min(last, parquet.num_row_groups - 1) + 1):
                num_rows = parquet.metadata.row_group(group).num_rows
                index = first_row
                try:
                    for batch in parquet.iter_batches(
                        BATCH_ROWS, row_groups=[group], columns=columns, use_threads=False
                    ):
                        for row in batch.to_pylist():
                            yield mapper.record(row, index)
                            index += 1
                except errors as exc:  # the rest of the group is lost: say so in one record
                    unread = num_rows - (index - first_row)
                    error = str(exc).strip()
                    detail = f"row group {group}: {unread} of {num_rows} rows unread: {error}"
                    path_rg = f"{key}#rg{group}"
                    record = RawRecord(UNKNOWN_REPO, path_rg, 0, reason=REASON_CORRUPT_FILE)
                    record.detail = detail
                    yield mapper.unique(record)
                first_row += num_rows


class JsonlSource(_TabularFiles):
    """JSON-lines files (gzip detected by its magic bytes) read one line at a time.

    A row's index (for rows without a path) is its 0-based line number; a line that is not a
    JSON object is recorded as `<unit>#L<1-based line number>`.
    """

    def slices(self, path: Path, size: int) -> list[tuple[str, int, int]]:
        """Byte ranges cut at line ends, about `shard_max_bytes` each (fewer bytes when the
        first MiB's lines say a range would pass `shard_max_files` rows); gzip is one unit."""
        with open(path, "rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
            if sample[:2] == b"\x1f\x8b" or not self.shard_limits:
                return [("", size, 1)]
            bytes_per_row = len(sample) / max(sample.count(b"\n"), 1)
            step = max(1, min(self.shard_limits[0], int(self.shard_limits[1] * bytes_per_row)))
            if size <= step:
                return [("", size, 1)]
            cuts = [0]
            while cuts[-1] + step < size:
                handle.seek(cuts[-1] + step)
                handle.readline()  # to the end of the line the cut falls in
                if handle.tell() >= size:
                    break
                cuts.append(handle.tell())
        ends = [*cuts[1:], size]
        return [
            (f"#bytes{a}-{b}", b - a, max(1, round((b - a) / bytes_per_row)))
            for a, b in zip(cuts, ends, strict=True)
        ]

    def read_file(
        self, key: str, path: Path, part: tuple[int, int] | None = None
    ) -> Iterator[RawRecord]:
        """A whole file, or the lines of byte range `part` (line numbers count from its
        start, and names of its bad lines carry the range: `<file>#bytes<a>-<b>#L<n>`)."""
        try:
            handle = _open_lines(path) if part is None else _open_range(path, *part)
        except OSError as exc:
            yield RawRecord(UNKNOWN_REPO, key, 0, reason=REASON_UNREADABLE, detail=str(exc))
            return
        if part is not None:
            key = f"{key}#bytes{part[0]}-{part[1]}"
        mapper = self.mapper(key)
        line_no = 0
        try:
            with handle:
                for line_no, line in enumerate(handle, start=1):
                    if line.strip():
                        yield self._line_record(mapper, key, line_no, line)
        except (OSError, EOFError, zlib.error) as exc:  # truncated or damaged gzip stream
            detail = f"after line {line_no}: {type(exc).__name__}: {exc}"
            record = RawRecord(UNKNOWN_REPO, key, 0, reason=REASON_CORRUPT_FILE, detail=detail)
            yield mapper.unique(record)

    def _line_record(self, mapper: RowMapper, key: str, line_no: int, line: bytes) -> RawRecord:
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            return _corrupt_line(mapper, key, line_no, line, f"not UTF-8: {exc}")
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
            return _corrupt_line(mapper, key, line_no, line, f"invalid JSON: {exc}")
        if not isinstance(row, dict):
            kind = _JSON_TYPES.get(type(row), type(row).__name__)
            return _corrupt_line(mapper, key, line_no, line, f"not a JSON object: {kind}")
        return mapper.record(row, line_no - 1)


def _corrupt_line(mapper: RowMapper, key: str, line_no: int, line: bytes, why: str) -> RawRecord:
    record = RawRecord(UNKNOWN_REPO, f"{key}#L{line_no}", len(line), reason=REASON_CORRUPT_ROW)
    record.detail = why
    return mapper.unique(record)


def _open_lines(path: Path) -> IO[bytes]:
    """The file's byte lines, gunzipped when it starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")  # the caller closes it


def _open_range(path: Path, start: int, end: int) -> IO[bytes]:
    """The bytes [start, end) of a file as a stream of lines (the caller closes it)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    return io.BytesIO(data)


def _glob_base(pattern: str) -> str:
    """The folder a glob is anchored at: its leading parts without wildcards."""
    if not glob.has_magic(pattern):
        return os.path.dirname(pattern) or "."
    fixed: list[str] = []
    for part in pattern.split(os.sep):
        if glob.has_magic(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or ("/" if pattern.startswith("/") else ".")


def _name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    return _utf8(str(value)) or None


def _utf8(text: str) -> str:
    """The text with lone surrogates spelled out, so that it can be written as UTF-8."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")


def _as_int(value: Any) -> int | None:
    """Star counts arrive as ints, floats (pandas nulls) or strings; anything else is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _as_licenses(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [_utf8(value)]
    if isinstance(value, list | tuple):
        return [_utf8(item) for item in value if isinstance(item, str)]
    return None
