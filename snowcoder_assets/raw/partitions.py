"""The dynamic partitions every per-file stage shares, one per source shard (`<source>/<shard>`),
and the external asset `source_files` whose data version per partition is the shard's
fingerprint (reported by discovery)."""

import dagster as dg

SOURCE_SHARDS = dg.DynamicPartitionsDefinition(name="source_shards")
SOURCE_FILES = dg.AssetKey("source_files")
