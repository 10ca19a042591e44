"""Discovers new and changed source shards and asks for exactly those partitions to run."""

import dagster as dg

from snowcoder_assets.raw.partitions import SOURCE_SHARDS
from snowcoder_assets.raw.shards import discover_all, needs_ingest
from snowcoder_assets.resources import SnowcoderConfigResource


@dg.sensor(
    asset_selection=["raw_files"],
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def source_shard_sensor(
    context: dg.SensorEvaluationContext, snowcoder: SnowcoderConfigResource
) -> dg.SensorResult:
    """Registers new shards as partitions; the run key carries the fingerprint, so an unchanged
    shard is never requested twice and a changed one is requested again."""
    config = snowcoder.load()
    shards = discover_all(config)
    known = set(context.instance.get_dynamic_partitions(SOURCE_SHARDS.name))
    new_keys = [s.partition_key for s in shards if s.partition_key not in known]
    requests = [
        dg.RunRequest(partition_key=s.partition_key, run_key=f"{s.partition_key}@{s.fingerprint}")
        for s in shards
        if needs_ingest(config, s)
    ]
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[SOURCE_SHARDS.build_add_request(new_keys)] if new_keys else [],
    )
