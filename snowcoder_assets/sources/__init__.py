"""Readers of raw code: one class per source kind, all yielding `RawRecord`s per unit."""

from __future__ import annotations

from snowcoder_assets.config import (
    GitSourceConfig,
    HfDatasetSourceConfig,
    JsonlSourceConfig,
    LocalDirSourceConfig,
    ParquetSourceConfig,
    PythonInstallSourceConfig,
    SnowcoderConfig,
)
from snowcoder_assets.sources.base import RawRecord, Source, SourceUnit


def build_source(config: SnowcoderConfig, name: str) -> Source:
    """The reader for the configured source `name` (each reader imported only when used)."""
    source = config.source(name)
    limit, fallback = config.ingest.max_file_bytes, config.ingest.fallback_encoding
    shard_limits = (config.ingest.shard_max_bytes, config.ingest.shard_max_files)
    match source:
        case LocalDirSourceConfig():
            from snowcoder_assets.sources.folders import LocalDirSource

            return LocalDirSource(source, limit, fallback)
        case PythonInstallSourceConfig():
            from snowcoder_assets.sources.folders import PythonInstallSource

            return PythonInstallSource(source, limit, fallback)
        case GitSourceConfig():
            from snowcoder_assets.sources.git import GitSource

            return GitSource(source, limit, fallback)
        case ParquetSourceConfig():
            from snowcoder_assets.sources.tabular import ParquetSource

            return ParquetSource(source, limit, fallback, shard_limits)
        case JsonlSourceConfig():
            from snowcoder_assets.sources.tabular import JsonlSource

            return JsonlSource(source, limit, fallback, shard_limits)
        case HfDatasetSourceConfig():
            from snowcoder_assets.sources.hf_dataset import HfDatasetSource

            return HfDatasetSource(source, limit, fallback)
    raise TypeError(f"unsupported source kind: {source!r}")


__all__ = ["RawRecord", "Source", "SourceUnit", "build_source"]
