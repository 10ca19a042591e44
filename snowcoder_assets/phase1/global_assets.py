"""Phase-1 global assets (group `phase1`): the dedup clustering and the repository documents.

Both read every partition but work only where something changed, and both take what changed
from the Dagster instance: `dup_clusters` compares each partition's decisions with the data
version the instance holds for `dedup_decisions[<partition>]`; `phase1_corpus` rebuilds the
shards whose `decontaminated_files` were materialized with a new data version since its own
last materialization (the input event pointer Dagster recorded on it).
"""

import dagster as dg

from snowcoder_assets.config import split_partition_key
from snowcoder_assets.io import digest
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.metadata import counts_table, language_table
from snowcoder_assets.orchestration.automation import CPU_EAGER
from snowcoder_assets.orchestration.pools import GLOBAL_POD, GLOBAL_WRITERS
from snowcoder_assets.orchestration.records import data_version_tags, latest_data_versions
from snowcoder_assets.phase1 import checks
from snowcoder_assets.phase1.assets import DEDUP_DECISIONS
from snowcoder_assets.raw.discovery import materialized_config_partitions
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.results import files_result
from snowcoder_assets.versions import outputs_metadata, outputs_record


@dg.asset(
    group_name="phase1",
    deps=["filtered_files"],
    kinds={"polars"},
    pool=GLOBAL_WRITERS,
    op_tags=GLOBAL_POD,
    automation_condition=CPU_EAGER,
)
def dup_clusters(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Exact groups (normalized content hash) and MinHash LSH clusters over every partition's
    stored keys; one survivor per group by a fixed rule, incumbents first. Reports
    `dedup_decisions` for the partitions whose decisions changed."""
    from snowcoder_assets.phase1.dup_clusters import decisions_path, output_dir, run_dup_clusters

    config, instance = snowcoder.load(), context.instance
    partitions = materialized_config_partitions(instance, config, "filtered_files")
    recorded = latest_data_versions(instance, DEDUP_DECISIONS)
    summary = run_dup_clusters(config, partitions, recorded, context.log.info)
    changed = [p for p in partitions if summary.digests[p] != recorded.get(p)]
    for key in changed:
        path = decisions_path(config, *split_partition_key(key))
        context.log_event(
            dg.AssetMaterialization(
                DEDUP_DECISIONS,
                partition=key,
                tags=data_version_tags(summary.digests[key]),
                metadata=outputs_metadata(outputs_record(config.data_dir, [path])),
            )
        )
    refresh_views(config.data_dir)
    sizes = {str(k): v for k, v in sorted(summary.cluster_sizes.items())}
    return dg.MaterializeResult(
        data_version=dg.DataVersion(digest(sorted(summary.digests.items()))),
        metadata={
            "num_rows": summary.docs,
            "num_partitions": len(partitions),
            "exact_duplicates_dropped": summary.exact_dropped,
            "near_duplicates_dropped": summary.near_dropped,
            "cluster_size_histogram": counts_table(sizes, "cluster_size", "clusters"),
            "partitions_changed": len(changed),
            "first_partitions_changed": changed[:20],
            "minhash": str(config.dedup.minhash),
            "path": dg.MetadataValue.path(str(output_dir(config))),
        },
    )


@dg.asset(
    group_name="phase1",
    deps=["decontaminated_files"],
    kinds={"parquet"},
    pool=GLOBAL_WRITERS,
    op_tags=GLOBAL_POD,
    automation_condition=CPU_EAGER,
    check_specs=[
        dg.AssetCheckSpec(name, asset="phase1_corpus", blocking=True)
        for name in checks.CORPUS_CHECKS
    ],
)
def phase1_corpus(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """One document per (repository, language): files in a seeded random order, each behind a
    `<|file_sep|>path` line; long repositories split. Built per source shard, and only for the
    shards whose files changed. The phase-1 training corpus."""
    from snowcoder_assets.layout import corpus_dir
    from snowcoder_assets.phase1.corpus_build import build_corpus

    config = snowcoder.load()
    build = build_corpus(context, config)
    refresh_views(config.data_dir)
    metadata = {
        "num_rows": build.documents,
        "num_files": build.files,
        "num_bytes": build.bytes,
        "shards_rebuilt": len(build.rebuilt),
        "shards_kept": build.shards - len(build.rebuilt),
        "by_language": language_table(build.files_by_lang, build.bytes_by_lang),
        "bytes_by_language_chart": checks.bytes_chart(build.bytes_by_lang),
        "funnel": checks.funnel_table(config),
        "path": dg.MetadataValue.path(str(corpus_dir(config.data_dir))),
    }
    check_results = checks.corpus_checks(config, build.rebuilt_paths)
    return files_result(config, build.outputs, metadata, build.previous, check_results)


def code_versions(config) -> dict[str, str]:
    from snowcoder_assets.versions import code_version

    def room(*names: str) -> list[str]:
        return [f"snowcoder_assets.phase1.{n}" for n in names]

    source_order = [s.name for s in config.sources]  # "earliest source" breaks ties
    return {
        "dup_clusters": code_version(room("dup_clusters", "minhash"), config.dedup, source_order),
        "phase1_corpus": code_version(room("corpus", "corpus_build"), config.corpus),
    }
