"""`raw_files`: every file of one source shard, with its text when usable (group `raw`)."""

import dagster as dg

from snowcoder_assets.config import split_partition_key
from snowcoder_assets.layout import lineage_db_path, raw_shard_path
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.metadata import counts_table, language_table, preview_markdown
from snowcoder_assets.raw.checks import (
    EVERY_FILE_DECIDED,
    UNIQUE_DOC_ID,
    check_every_file_decided,
    check_unique_doc_ids,
)
from snowcoder_assets.raw.ingest import ingest_shard
from snowcoder_assets.raw.partitions import SOURCE_SHARDS
from snowcoder_assets.resources import SnowcoderConfigResource


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    group_name="raw",
    kinds={"python", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(EVERY_FILE_DECIDED, asset="raw_files", blocking=True),
        dg.AssetCheckSpec(UNIQUE_DOC_ID, asset="raw_files", blocking=True),
    ],
)
def raw_files(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Every file of one source shard (`<source>/<shard>`): usable text files with their content,
    and a `files` + `decisions` lineage row for every file read, usable or not."""
    config = snowcoder.load()
    source, shard = split_partition_key(context.partition_key)
    stats = ingest_shard(config, source, shard, log=context.log.info)
    refresh_views(config.data_dir)
    path = raw_shard_path(config.data_dir, source, shard)
    return dg.MaterializeResult(
        metadata={
            "num_rows": stats.kept,
            "num_files_read": stats.files,
            "num_bytes": stats.bytes_kept,
            "num_bytes_read": stats.bytes_read,
            "seconds": stats.seconds,
            "by_language": language_table(stats.kept_by_lang, stats.bytes_by_lang),
            "dropped_by_reason": counts_table(stats.dropped, "reason", "files"),
            "preview": preview_markdown(_preview(path), ["repo", "path", "lang", "bytes"]),
            "path": dg.MetadataValue.path(str(path)),
            "lineage_db": dg.MetadataValue.path(str(lineage_db_path(config.data_dir))),
        },
        check_results=[
            check_every_file_decided(config.data_dir, source, shard),
            check_unique_doc_ids(config.data_dir, source, shard),
        ],
    )


def _preview(path) -> list[dict]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows == 0:
        return []
    batch = next(parquet.iter_batches(batch_size=5, columns=["repo", "path", "lang", "bytes"]))
    return batch.to_pylist()
