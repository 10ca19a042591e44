"""Discovery: list the configured sources, register new shards as partitions, report changes.

The same function serves the discovery sensor, `snowcoder discover`, `snowcoder materialize` and
`snowcoder ui`. It compares each shard's fingerprint with the data version the instance last
recorded for that partition of `source_files` (an external asset: the files as listed, not
read), and reports a `source_files` materialization for every new or changed shard. Dagster then
sees exactly those `raw_files` partitions as out of date: automation and the CLI re-ingest them,
nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.orchestration.records import (
    data_version_tags,
    latest_data_versions,
    materialized_partitions,
    report_runless_materializations,
)
from snowcoder_assets.raw.partitions import SOURCE_FILES, SOURCE_SHARDS
from snowcoder_assets.raw.shards import Shard, discover_all


@dataclass(frozen=True)
class Discovery:
    shards: list[Shard]
    new_partitions: list[str]  # not yet registered in the instance
    changed: list[Shard]  # new, or with another fingerprint than the instance recorded

    @property
    def changed_keys(self) -> set[str]:
        return {s.partition_key for s in self.changed}


def discover(config: SnowcoderConfig, instance: dg.DagsterInstance) -> Discovery:
    """List every source (updating the shard registry) and compare with the instance."""
    shards = discover_all(config)
    known = set(instance.get_dynamic_partitions(SOURCE_SHARDS.name))
    recorded = latest_data_versions(instance, SOURCE_FILES)
    return Discovery(
        shards=shards,
        new_partitions=[s.partition_key for s in shards if s.partition_key not in known],
        changed=[s for s in shards if recorded.get(s.partition_key) != s.fingerprint],
    )


def source_files_event(shard: Shard) -> dg.AssetMaterialization:
    """`source_files[<shard>]` as listed now; its data version is the shard's fingerprint."""
    return dg.AssetMaterialization(
        asset_key=SOURCE_FILES,
        partition=shard.partition_key,
        tags=data_version_tags(shard.fingerprint),
        metadata={
            "num_files": shard.num_files,
            "num_bytes": shard.num_bytes,
            "num_units": len(shard.unit_keys),
            "first_units": list(shard.unit_keys[:10]),
        },
    )


def register(instance: dg.DagsterInstance, found: Discovery) -> None:
    """Add the new partitions and report the changed shards, in bulk: a first listing of The
    Stack is ~12k shards, and one event at a time is ~30 ms each on Postgres."""
    if found.new_partitions:
        instance.add_dynamic_partitions(SOURCE_SHARDS.name, found.new_partitions)
    report_runless_materializations(instance, [source_files_event(s) for s in found.changed])


def config_partitions(instance: dg.DagsterInstance, config: SnowcoderConfig) -> list[str]:
    """Registered partitions of the configuration's sources, in registration order."""
    names = {s.name for s in config.sources}
    keys = instance.get_dynamic_partitions(SOURCE_SHARDS.name)
    return [k for k in keys if k.partition("/")[0] in names]


def materialized_config_partitions(
    instance: dg.DagsterInstance, config: SnowcoderConfig, key: str | dg.AssetKey
) -> list[str]:
    """The configuration's partitions that the instance has a materialization of `key` for."""
    return materialized_partitions(instance, key, config_partitions(instance, config))


def discover_and_register(config: SnowcoderConfig, instance: dg.DagsterInstance) -> Discovery:
    found = discover(config, instance)
    register(instance, found)
    return found
