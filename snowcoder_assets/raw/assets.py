"""Group `raw`: `source_files` (the sources as listed by discovery) and `raw_files` (as read)."""

import dagster as dg

from snowcoder_assets.io import open_parquet
from snowcoder_assets.layout import raw_shard_path
from snowcoder_assets.metadata import preview_markdown
from snowcoder_assets.orchestration.automation import CPU_EAGER
from snowcoder_assets.orchestration.pools import SHARD_POD
from snowcoder_assets.raw import checks
from snowcoder_assets.raw.ingest import ingest_outputs, ingest_shard
from snowcoder_assets.raw.partitions import SOURCE_FILES, SOURCE_SHARDS
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.results import PartitionResult, materialize_partitions

source_files = dg.AssetSpec(
    SOURCE_FILES,
    partitions_def=SOURCE_SHARDS,
    group_name="raw",
    kinds={"python"},
    description=(
        "The files of each source shard as listed (names, sizes, modification times; nothing "
        "read). Reported by discovery, not materialized: each partition's data version is the "
        "shard's fingerprint, so a new or changed shard makes exactly its `raw_files` stale."
    ),
)


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    op_tags=SHARD_POD,
    group_name="raw",
    deps=[SOURCE_FILES],
    kinds={"python", "parquet"},
    automation_condition=CPU_EAGER,
    check_specs=[
        dg.AssetCheckSpec(checks.EVERY_FILE_DECIDED, asset="raw_files", blocking=True),
        dg.AssetCheckSpec(checks.UNIQUE_DOC_ID, asset="raw_files", blocking=True),
    ],
)
def raw_files(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Every file of one source shard (`<source>/<shard>`): usable text files with their content,
    and a `files` + `decisions` lineage row for every file read, usable or not."""
    config = snowcoder.load()

    def ingest(source: str, shard: str) -> PartitionResult:
        stats = ingest_shard(config, source, shard, log=context.log.info)
        path = raw_shard_path(config.data_dir, source, shard)
        return PartitionResult(
            stats=stats,
            outputs=ingest_outputs(config.data_dir, source, shard),
            checks=[
                checks.check_every_file_decided(config.data_dir, source, shard),
                checks.check_unique_doc_ids(config.data_dir, source, shard),
            ],
            metadata={
                "num_bytes_read": stats.bytes_read,
                "seconds": round(stats.seconds, 2),
                "preview": preview_markdown(_preview(path), ["repo", "path", "lang", "bytes"]),
            },
        )

    return materialize_partitions(context, config, ingest)


def _preview(path) -> list[dict]:
    parquet = open_parquet(path)
    if parquet.metadata.num_rows == 0:
        return []
    batch = next(parquet.iter_batches(batch_size=5, columns=["repo", "path", "lang", "bytes"]))
    return batch.to_pylist()


# Source settings that only say which units exist (discovery's business, reflected in each
# shard's fingerprint): changing them adds or retires shards, it does not re-read the others.
LISTING_KEYS = {"name", "path", "stdlib", "site_packages", "exclude"}


def code_versions(config) -> dict[str, str]:
    """The code version of `raw_files`: its reading code and the settings that change how a
    file is read (not which files exist, nor how they are packed into shards)."""
    from snowcoder_assets.versions import code_version

    reading = [s.model_dump(mode="json", exclude=LISTING_KEYS) for s in config.sources]
    ingest_settings = config.ingest.model_dump(
        mode="json", exclude={"shard_max_bytes", "shard_max_files"}
    )
    modules = ["snowcoder_assets.raw.ingest", "snowcoder_assets.languages"] + [
        f"snowcoder_assets.sources.{m}" for m in ("base", "folders", "git", "hf_dataset", "tabular")
    ]
    return {"raw_files": code_version(modules, ingest_settings, reading)}
