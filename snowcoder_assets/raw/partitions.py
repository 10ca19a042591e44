"""The dynamic partitions every per-file stage shares: one per source shard, `<source>/<shard>`."""

import dagster as dg

SOURCE_SHARDS = dg.DynamicPartitionsDefinition(name="source_shards")
