"""The discovery sensor: registers new shards as partitions and reports changed ones.

It requests no run itself: `source_files` materializations mark exactly the new and changed
`raw_files` partitions as updated upstream, and the automation sensor (or `snowcoder
materialize`, or the UI) takes it from there.
"""

import dagster as dg

from snowcoder_assets.orchestration.instance import check_instance
from snowcoder_assets.raw.discovery import discover, source_files_event
from snowcoder_assets.raw.partitions import SOURCE_SHARDS
from snowcoder_assets.resources import SnowcoderConfigResource

DISCOVERY_INTERVAL_S = 60


@dg.sensor(
    minimum_interval_seconds=DISCOVERY_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists the configured sources; new shards become partitions, changed ones are "
    "reported as new `source_files` data versions.",
)
def source_shard_sensor(
    context: dg.SensorEvaluationContext, snowcoder: SnowcoderConfigResource
) -> dg.SensorResult:
    config = snowcoder.load()
    check_instance(context.instance, config)
    found = discover(config, context.instance)
    context.log.info(
        f"{len(found.shards)} shards, {len(found.new_partitions)} new, {len(found.changed)} changed"
    )
    return dg.SensorResult(
        dynamic_partitions_requests=(
            [SOURCE_SHARDS.build_add_request(found.new_partitions)] if found.new_partitions else []
        ),
        asset_events=[source_files_event(s) for s in found.changed],
    )
