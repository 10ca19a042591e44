"""Ingest one source shard: read every file, decide usable or not, write raw rows and lineage.

Three parquet files per shard, written in bounded memory and renamed into place: the usable
files with their text (`raw_files`), one `files` row for every file read, and one `decisions`
row (stage `ingest`) for each. A killed ingestion leaves no file behind, so the shard is simply
ingested again; the materialization in the Dagster instance records that it finished.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import ParquetBatchWriter, content_sha, doc_id_for
from snowcoder_assets.languages import language_of, normalize_language
from snowcoder_assets.layout import lineage_part_path, raw_shard_path
from snowcoder_assets.lineage.decisions import StageStats
from snowcoder_assets.lineage.schemas import DECISIONS_SCHEMA, FILES_SCHEMA, IDENTITY_FIELDS
from snowcoder_assets.raw.shards import Shard, load_shard
from snowcoder_assets.sources import RawRecord, build_source
from snowcoder_assets.sources.base import (
    REASON_DUPLICATE_PATH,
    REASON_LANGUAGE_EXCLUDED,
    REASON_UNKNOWN_LANGUAGE,
    printable_name,
)

STAGE = "ingest"
PROGRESS_EVERY_S = 10.0

RAW_SCHEMA = pa.schema(
    [
        *IDENTITY_FIELDS,
        ("content", pa.large_string()),
        ("content_sha", pa.string()),
        ("encoding", pa.string()),
    ]
)


@dataclass
class IngestStats(StageStats):
    """The stage counts plus what ingestion alone knows: bytes read, time taken."""

    bytes_read: int = 0
    seconds: float = 0.0


def ingest_outputs(data_dir: Path, source: str, shard: str) -> list[Path]:
    """The three files one shard's ingestion writes."""
    return [
        raw_shard_path(data_dir, source, shard),
        lineage_part_path(data_dir, "files", STAGE, source, shard),
        lineage_part_path(data_dir, "decisions", STAGE, source, shard),
    ]


def language_gate(config: SnowcoderConfig) -> Callable[[str | None], str | None]:
    """Drop reason for a language, or None when it is wanted (include list empty = all)."""
    include = frozenset(config.ingest.languages)

    def reason(lang: str | None) -> str | None:
        if lang is None:
            return REASON_UNKNOWN_LANGUAGE
        if include and lang not in include:
            return REASON_LANGUAGE_EXCLUDED
        return None

    return reason


def ingest_shard(
    config: SnowcoderConfig,
    source_name: str,
    shard_name: str,
    log: Callable[[str], None] = lambda _: None,
) -> IngestStats:
    """Ingest the registered shard `<source_name>/<shard_name>` and write its outputs."""
    shard = load_shard(config, source_name, shard_name)
    source = build_source(config, source_name)
    gate = language_gate(config)
    if hasattr(source, "language_gate"):
        source.language_gate = lambda path: gate(language_of(path))  # skip reading early
    data_dir = config.data_dir
    stats, start, last_log = IngestStats(), time.perf_counter(), time.perf_counter()
    seen: Counter[str] = Counter()
    with (
        ParquetBatchWriter(
            raw_shard_path(data_dir, source_name, shard_name), RAW_SCHEMA, "bytes", ("content",)
        ) as raw_out,
        ParquetBatchWriter(
            lineage_part_path(data_dir, "files", STAGE, source_name, shard_name), FILES_SCHEMA
        ) as files_out,
        ParquetBatchWriter(
            lineage_part_path(data_dir, "decisions", STAGE, source_name, shard_name),
            DECISIONS_SCHEMA,
        ) as decisions_out,
    ):
        for record in source.read(shard.unit_keys):
            row = _row(record, shard, gate, seen)  # each writer takes the columns it has
            files_out.write(row)
            decisions_out.write(row)
            if row["kept"]:
                raw_out.write(row)
            _count(stats, row)
            if time.perf_counter() - last_log > PROGRESS_EVERY_S:
                last_log = time.perf_counter()
                log(f"{shard.partition_key}: {stats.files_in}/{shard.num_files} files read")
    stats.seconds = time.perf_counter() - start
    return stats


def _row(
    record: RawRecord,
    shard: Shard,
    gate: Callable[[str | None], str | None],
    seen: Counter[str],
) -> dict[str, Any]:
    lang = language_of(record.path) or normalize_language(record.lang_hint)
    reason, detail = record.reason, record.detail
    if reason is None:
        reason = gate(lang)
    repo, path = printable_name(record.repo), printable_name(record.path)
    doc_id = doc_id_for(shard.source, repo, path)
    seen[doc_id] += 1
    if seen[doc_id] > 1:  # a dataset listing one (repo, path) twice: keep ids unique
        path = f"{path}#dup{seen[doc_id] - 1}"
        doc_id = doc_id_for(shard.source, repo, path)
        reason, detail = REASON_DUPLICATE_PATH, printable_name(record.path)
    kept = reason is None
    text = record.text if kept else None
    return {
        "doc_id": doc_id,
        "source": shard.source,
        "partition": shard.partition_key,
        "repo": repo,
        "path": path,
        "lang": lang,
        "content": text,
        "bytes": record.num_bytes,
        "content_sha": content_sha(text) if text is not None else None,
        "encoding": record.encoding if kept else None,
        "stars": record.stars,
        "licenses": record.licenses,
        "kept": kept,
        "reason": reason,
        "detail": detail,
        "stage": STAGE,
    }


def _count(stats: IngestStats, row: dict[str, Any]) -> None:
    stats.bytes_read += row["bytes"] or 0
    stats.count(row, row["kept"], row["reason"])
