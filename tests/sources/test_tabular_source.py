"""ParquetSource and JsonlSource: one record per row, line or broken part, never a silent loss."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snowcoder_assets.config import JsonlSourceConfig, ParquetSourceConfig
from snowcoder_assets.sources.base import (
    REASON_BINARY,
    REASON_CORRUPT_FILE,
    REASON_CORRUPT_ROW,
    REASON_DUPLICATE_PATH,
    REASON_TOO_LARGE,
    REASON_UNDECODABLE,
    RawRecord,
)
from snowcoder_assets.sources.tabular import JsonlSource, ParquetSource

MAX_BYTES = 100


def stack_row(i: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "hexsha": f"{i:040x}",
        "content": f"x = {i}\n",
        "max_stars_repo_name": "octo/repo",
        "max_stars_repo_path": f"src/f{i}.py",
        "lang": "Python",
        "max_stars_count": 7,
        "max_stars_repo_licenses": ["MIT", "Apache-2.0"],
    }
    return {**row, **overrides}


def write_parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int = 1024) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def write_jsonl(path: Path, lines: list[str | bytes], gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def parquet(pattern: Path | str, **columns: str) -> ParquetSource:
    config = ParquetSourceConfig(name="pq", kind="parquet", path=str(pattern), **columns)
    return ParquetSource(config, MAX_BYTES, "cp1252")


def jsonl(pattern: Path | str) -> JsonlSource:
    config = JsonlSourceConfig(name="js", kind="jsonl", path=str(pattern))
    return JsonlSource(config, MAX_BYTES, "cp1252")


def read_all(src: ParquetSource | JsonlSource) -> list[RawRecord]:
    return list(src.read([u.key for u in src.units()]))


def test_parquet_source_reads_stack_v1_columns(tmp_path: Path) -> None:
    write_parquet(tmp_path / "a.parquet", [stack_row(0), stack_row(1, max_stars_count=None)])
    first, second = read_all(parquet(tmp_path / "a.parquet"))
    assert (first.repo, first.path, first.text, first.reason) == (
        "octo/repo",
        "src/f0.py",
        "x = 0\n",
        None,
    )
    assert (first.lang_hint, first.stars, first.licenses) == ("Python", 7, ["MIT", "Apache-2.0"])
    assert (first.num_bytes, first.encoding) == (6, "utf-8")
    assert second.stars is None


def test_parquet_source_custom_column_names(tmp_path: Path) -> None:
    rows = [
        {
            "code": "fn main() {}\n",
            "repository": "r",
            "file": "m.rs",
            "stars": "12",
            "license": "MIT",
            "language": "Rust",
        }
    ]
    write_parquet(tmp_path / "c.parquet", rows)
    src = parquet(
        tmp_path / "c.parquet",
        content_column="code",
        repo_column="repository",
        path_column="file",
        stars_column="stars",
        licenses_column="license",
        lang_column="language",
    )
    [record] = read_all(src)
    assert (record.repo, record.path, record.text) == ("r", "m.rs", "fn main() {}\n")
    assert (record.stars, record.licenses, record.lang_hint) == (12, ["MIT"], "Rust")


def test_parquet_source_glob_gives_one_unit_per_file(tmp_path: Path) -> None:
    write_parquet(tmp_path / "data" / "train" / "a.parquet", [stack_row(0)])
    write_parquet(tmp_path / "data" / "test" / "b.parquet", [stack_row(1), stack_row(2)])
    src = parquet(tmp_path / "data" / "**" / "*.parquet")
    units = list(src.units())
    assert [(u.key, u.num_files) for u in units] == [("test/b.parquet", 2), ("train/a.parquet", 1)]
    assert [r.path for r in src.read(["train/a.parquet"])] == ["src/f0.py"]
    assert len(read_all(src)) == 3


def test_parquet_source_fingerprint_changes_when_file_changes(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "a.parquet", [stack_row(0)])
    before = next(parquet(path).units()).fingerprint
    write_parquet(path, [stack_row(0), stack_row(1)])
    os.utime(path, ns=(1, 1))
    assert next(parquet(path).units()).fingerprint != before


def test_parquet_source_rows_without_content_repo_or_path(tmp_path: Path) -> None:
    rows = [
        stack_row(0, content=None),
        stack_row(1, max_stars_repo_name=None, max_stars_repo_path=None),
        stack_row(2, content="#" * (MAX_BYTES + 1)),
        stack_row(3, content="a\0b"),
    ]
    records = read_all(parquet(write_parquet(tmp_path / "n.parquet", rows)))
    assert [(r.repo, r.path, r.reason, r.detail) for r in records] == [
        ("octo/repo", "src/f0.py", REASON_CORRUPT_ROW, "missing content"),
        ("unknown", "n.parquet#row-1", None, None),
        ("octo/repo", "src/f2.py", REASON_TOO_LARGE, f"> {MAX_BYTES} bytes"),
        ("octo/repo", "src/f3.py", REASON_BINARY, None),
    ]


def test_parquet_source_content_of_other_type_is_corrupt_row(tmp_path: Path) -> None:
    rows = [{"content": 42, "max_stars_repo_name": "r", "max_stars_repo_path": "a.py"}]
    [record] = read_all(parquet(write_parquet(tmp_path / "i.parquet", rows)))
    assert (record.reason, record.detail) == (
        REASON_CORRUPT_ROW,
        "content is int, not text or bytes",
    )


def test_parquet_source_binary_content_is_decoded(tmp_path: Path) -> None:
    rows = [stack_row(0, content=b"caf\xe9 = 1\n"), stack_row(1, content=b"\x00\x01")]
    text, binary = read_all(parquet(write_parquet(tmp_path / "b.parquet", rows)))
    assert (text.text, text.encoding) == ("café = 1\n", "cp1252")
    assert (binary.reason, binary.text) == (REASON_BINARY, None)


def test_parquet_source_garbage_file_is_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet at all" * 10)
    [record] = read_all(parquet(tmp_path / "bad.parquet"))
    assert (record.repo, record.path, record.reason) == (
        "unknown",
        "bad.parquet",
        REASON_CORRUPT_FILE,
    )
    assert record.detail and record.detail.startswith("not a readable parquet file")


def test_parquet_source_corrupt_row_group_is_one_record(tmp_path: Path) -> None:
    rows = [stack_row(i) for i in range(6)]
    path = tmp_path / "rg.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2, compression="none")
    column = pq.read_metadata(path).row_group(1).column(1)  # content
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + column.total_compressed_size] = b"\xff" * column.total_compressed_size
    path.write_bytes(bytes(data))
    records = read_all(parquet(path))
    assert [r.path for r in records] == [
        "src/f0.py",
        "src/f1.py",
        "rg.parquet#rg1",
        "src/f4.py",
        "src/f5.py",
    ]
    assert records[2].reason == REASON_CORRUPT_FILE
    assert records[2].detail and records[2].detail.startswith("row group 1: 2 of 2 rows unread")


def test_parquet_source_row_index_spans_row_groups(tmp_path: Path) -> None:
    rows = [stack_row(i, max_stars_repo_path=None) for i in range(5)]
    records = read_all(parquet(write_parquet(tmp_path / "g.parquet", rows, row_group_size=2)))
    assert [r.path for r in records] == [f"g.parquet#row-{i}" for i in range(5)]


def test_parquet_source_duplicate_repo_path(tmp_path: Path) -> None:
    rows = [stack_row(0), stack_row(1, max_stars_repo_path="src/f0.py"), stack_row(0)]
    records = read_all(parquet(write_parquet(tmp_path / "d.parquet", rows)))
    assert [(r.path, r.reason, r.detail) for r in records] == [
        ("src/f0.py", None, None),
        ("src/f0.py#dup1", REASON_DUPLICATE_PATH, "src/f0.py"),
        ("src/f0.py#dup2", REASON_DUPLICATE_PATH, "src/f0.py"),
    ]
    assert records[1].text is None


def test_jsonl_source_broken_and_non_object_lines(tmp_path: Path) -> None:
    lines: list[str | bytes] = [
        json.dumps(stack_row(0)),
        "",
        "{not json",
        "[1, 2]",
        b'{"content": "\xff"}',
        json.dumps({"content": "y = 1\n"}),
    ]
    records = read_all(jsonl(write_jsonl(tmp_path / "a.jsonl", lines)))
    assert [(r.repo, r.path, r.reason) for r in records] == [
        ("octo/repo", "src/f0.py", None),
        ("unknown", "a.jsonl#L3", REASON_CORRUPT_ROW),
        ("unknown", "a.jsonl#L4", REASON_CORRUPT_ROW),
        ("unknown", "a.jsonl#L5", REASON_CORRUPT_ROW),
        ("unknown", "a.jsonl#row-5", None),
    ]
    assert records[1].detail and records[1].detail.startswith("invalid JSON")
    assert records[2].detail == "not a JSON object: array"
    assert records[3].detail and records[3].detail.startswith("not UTF-8")


def test_jsonl_source_reads_gzip(tmp_path: Path) -> None:
    rows = [json.dumps(stack_row(i, max_stars_count="3")) for i in range(3)]
    path = write_jsonl(tmp_path / "part.jsonl.gz", list(rows), gz=True)
    records = read_all(jsonl(path))
    assert [(r.path, r.text, r.stars) for r in records] == [
        (f"src/f{i}.py", f"x = {i}\n", 3) for i in range(3)
    ]


def test_jsonl_source_truncated_gzip_is_corrupt_file(tmp_path: Path) -> None:
    rows = [json.dumps(stack_row(i, content="z" * 50)) for i in range(200)]
    path = write_jsonl(tmp_path / "cut.jsonl.gz", list(rows), gz=True)
    path.write_bytes(path.read_bytes()[:-40])
    records = read_all(jsonl(path))
    assert records[-1].reason == REASON_CORRUPT_FILE
    assert (records[-1].repo, records[-1].path) == ("unknown", "cut.jsonl.gz")
    assert all(r.reason is None for r in records[:-1])


def test_jsonl_source_licenses_as_single_string(tmp_path: Path) -> None:
    row = stack_row(0, max_stars_repo_licenses="BSD-3-Clause", max_stars_count=2.0)
    [record] = read_all(jsonl(write_jsonl(tmp_path / "l.jsonl", [json.dumps(row)])))
    assert (record.licenses, record.stars) == (["BSD-3-Clause"], 2)


def test_jsonl_source_lone_surrogate_is_undecodable(tmp_path: Path) -> None:
    line = (
        '{"content": "a\\ud800b", "max_stars_repo_name": "r", "max_stars_repo_path": "p\\udc80.py"}'
    )
    [record] = read_all(jsonl(write_jsonl(tmp_path / "s.jsonl", [line])))
    assert (record.reason, record.text) == (REASON_UNDECODABLE, None)
    assert record.path == "p\\xed\\xb2\\x80.py"
    record.path.encode("utf-8")


def test_tabular_source_glob_without_match_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="matches no file"):
        list(jsonl(tmp_path / "*.jsonl").units())
