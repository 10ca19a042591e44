"""Which `phase1_corpus` shards to (re)build, from the instance's record, and building them.

A shard is rebuilt when its `decontaminated_files` partition has a new data version since the
corpus was last materialized (Dagster records the input event pointer on every
materialization), when its files are missing or changed on disk, or, for every shard, when the
corpus's code version changed (`[corpus]` settings or its code).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig, split_partition_key
from snowcoder_assets.io import files_under
from snowcoder_assets.layout import corpus_dir, lineage_table_dir
from snowcoder_assets.orchestration.records import (
    Materialization,
    own_latest,
    updated_since,
)
from snowcoder_assets.phase1.corpus import DECISION_STAGE, build_shard_documents, shard_outputs
from snowcoder_assets.raw.discovery import materialized_config_partitions
from snowcoder_assets.storage import connect_duckdb
from snowcoder_assets.versions import changed_outputs, recorded_outputs

DECONTAMINATED = dg.AssetKey("decontaminated_files")


@dataclass
class CorpusBuild:
    outputs: list[Path]  # every shard's files, rebuilt or kept
    previous: Materialization | None  # the corpus's last materialization
    shards: int
    rebuilt: list[str]
    rebuilt_paths: list[Path]
    documents: int = 0
    files: int = 0
    bytes: int = 0
    files_by_lang: Counter[str] = field(default_factory=Counter)
    bytes_by_lang: Counter[str] = field(default_factory=Counter)


def build_corpus(context: dg.AssetExecutionContext, config: SnowcoderConfig) -> CorpusBuild:
    instance = context.instance
    partitions = materialized_config_partitions(instance, config, DECONTAMINATED)
    previous = own_latest(context)
    todo = shards_to_build(context, config, partitions, previous)
    start = time.perf_counter()
    for i, key in enumerate(todo, start=1):
        build_shard_documents(config, *split_partition_key(key))
        elapsed = time.perf_counter() - start
        context.log.info(
            f"phase1_corpus {key}: documents built ({i}/{len(todo)} shards, elapsed "
            f"{elapsed:.0f}s, eta {elapsed / i * (len(todo) - i):.0f}s)"
        )
    paths = [
        p for key in partitions for p in shard_outputs(config.data_dir, *split_partition_key(key))
    ]
    _remove_other_shards(config, set(paths))
    build = CorpusBuild(
        outputs=paths,
        previous=previous,
        shards=len(partitions),
        rebuilt=todo,
        rebuilt_paths=[shard_outputs(config.data_dir, *split_partition_key(k))[0] for k in todo],
    )
    _add_totals(build, [p for p in paths if p.is_relative_to(corpus_dir(config.data_dir))])
    return build


def shards_to_build(
    context: dg.AssetExecutionContext,
    config: SnowcoderConfig,
    partitions: list[str],
    previous: Materialization | None,
) -> list[str]:
    version = context.assets_def.code_versions_by_key.get(context.asset_key)
    if previous is None or previous.code_version != version:
        return list(partitions)
    pointer = previous.input_event_pointer(DECONTAMINATED)
    changed = updated_since(context.instance, DECONTAMINATED, pointer)
    record = recorded_outputs(previous.metadata) or {}
    on_disk = {_key_of(name) for name in changed_outputs(config.data_dir, record)}
    recorded_keys = {_key_of(name) for name in record}
    return [
        key for key in partitions if key in changed or key in on_disk or key not in recorded_keys
    ]


def _key_of(relative: str) -> str:
    """`<source>/<shard>` of a recorded corpus or decisions file path."""
    parts = Path(relative).parts
    return f"{parts[-2]}/{Path(parts[-1]).stem}"


def _remove_other_shards(config: SnowcoderConfig, keep: set[Path]) -> None:
    """Shard files of this configuration's sources whose partition is no longer materialized
    (e.g. a fresh instance over old data) leave the corpus."""
    names = {s.name for s in config.sources}
    folders = [
        corpus_dir(config.data_dir),
        lineage_table_dir(config.data_dir, "decisions") / DECISION_STAGE,
    ]
    for folder in folders:
        for path in files_under(folder):
            if path.parent.name in names and path.suffix == ".parquet" and path not in keep:
                path.unlink()


def _add_totals(build: CorpusBuild, corpus_files: list[Path]) -> None:
    if not corpus_files:
        return
    with connect_duckdb() as con:
        rows = con.execute(
            "SELECT lang, count(*), sum(num_files), sum(bytes) FROM read_parquet(?) GROUP BY lang",
            [[str(p) for p in corpus_files]],
        ).fetchall()
    for lang, documents, files, num_bytes in rows:
        build.documents += documents
        build.files += int(files or 0)
        build.bytes += int(num_bytes or 0)
        build.files_by_lang[lang] = int(files or 0)
        build.bytes_by_lang[lang] = int(num_bytes or 0)
