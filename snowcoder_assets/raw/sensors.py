"""The discovery sensor: registers new shards as partitions and reports changed ones.

It requests no run itself: `source_files` materializations mark exactly the new and changed
`raw_files` partitions as updated upstream, and the automation sensor (or `snowcoder
materialize`, or the UI) takes it from there.

It writes its partitions and events itself (`register`) rather than returning them in the
`SensorResult`: the sensor daemon stores returned asset events one by one (three connections
and five statements each on Postgres), 370 s for a first tick over 10,000 shards, far past the
tick's 60 s budget; `register` stores them in batches of one INSERT each.
"""

import dagster as dg

from snowcoder_assets.orchestration.instance import check_instance
from snowcoder_assets.raw.discovery import discover, register
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
    register(context.instance, found)
    return dg.SensorResult(skip_reason=None if found.changed else "no new or changed shard")
