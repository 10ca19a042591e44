"""Phase-1 assets (group `phase1`): signals, filter, dedup, decontamination, documents."""

import dagster as dg

from snowcoder_assets.config import split_partition_key
from snowcoder_assets.freshness import mark_global_done
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.metadata import counts_table, language_table
from snowcoder_assets.phase1 import checks
from snowcoder_assets.phase1.per_file import (
    StageStats,
    run_decontaminate,
    run_dedup_apply,
    run_file_signals,
    run_filter,
)
from snowcoder_assets.raw.partitions import SOURCE_SHARDS
from snowcoder_assets.resources import SnowcoderConfigResource


def _stage_metadata(stats: StageStats) -> dict:
    return {
        "num_rows": stats.kept,
        "num_files_in": stats.files_in,
        "num_bytes": stats.bytes_kept,
        "by_language": language_table(stats.kept_by_lang, stats.bytes_by_lang),
        "dropped_by_reason": counts_table(stats.dropped, "reason", "files"),
    }


def _run_partition(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource, run, check
) -> dg.MaterializeResult:
    config = snowcoder.load()
    source, shard = split_partition_key(context.partition_key)
    stats = run(config, source, shard, context.log.info)
    refresh_views(config.data_dir)
    return dg.MaterializeResult(
        metadata=_stage_metadata(stats), check_results=[check(config, source, shard)]
    )


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    group_name="phase1",
    deps=["raw_files"],
    kinds={"parquet"},
    check_specs=[dg.AssetCheckSpec(checks.EVERY_INPUT_DECIDED, asset="file_signals")],
)
def file_signals(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Per-file quality signals (line lengths, alphanumeric fraction, markers of generated or
    encoded data, ...) and MinHash band keys, computed once; thresholds apply downstream."""
    return _run_partition(context, snowcoder, run_file_signals, checks.signals_cover_raw)


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    group_name="phase1",
    deps=["file_signals"],
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(checks.EVERY_INPUT_DECIDED, asset="filtered_files", blocking=True)
    ],
)
def filtered_files(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Files that pass the StarCoder-style thresholds of `[filters]` (per language); every drop
    has its reason in `decisions`. Changing a threshold re-runs only this step."""
    return _run_partition(context, snowcoder, run_filter, checks.filter_decided_all)


@dg.asset(group_name="phase1", deps=["filtered_files"], kinds={"polars"})
def dup_clusters(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Exact groups (normalized content hash) and MinHash LSH clusters over every partition's
    stored keys; one survivor per group by a fixed rule, incumbents first."""
    from snowcoder_assets.phase1.dedup import run_dup_clusters

    config = snowcoder.load()
    summary = run_dup_clusters(config, context.log.info)
    refresh_views(config.data_dir)
    sizes = {str(k): v for k, v in sorted(summary.cluster_sizes.items())}
    mark_global_done(config, "dup_clusters")
    return dg.MaterializeResult(
        metadata={
            "num_rows": summary.docs,
            "exact_duplicates_dropped": summary.exact_dropped,
            "near_duplicates_dropped": summary.near_dropped,
            "cluster_size_histogram": counts_table(sizes, "cluster_size", "clusters"),
            "partitions_changed": len(summary.partitions_changed),
            "minhash": str(config.dedup.minhash),
        }
    )


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    group_name="phase1",
    deps=["filtered_files", "dup_clusters"],
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(checks.EVERY_INPUT_DECIDED, asset="deduped_files", blocking=True)
    ],
)
def deduped_files(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """The partition's files minus exact and near duplicates (decisions from `dup_clusters`)."""
    return _run_partition(context, snowcoder, run_dedup_apply, checks.dedup_decided_all)


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    group_name="phase1",
    deps=["deduped_files"],
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(checks.EVERY_INPUT_DECIDED, asset="decontaminated_files", blocking=True)
    ],
)
def decontaminated_files(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Deduplicated files that share no benchmark problem (HumanEval and configured jsonl
    benchmarks: 10-gram overlap or docstring/solution substring); evidence in `contamination`."""
    return _run_partition(context, snowcoder, run_decontaminate, checks.decont_decided_all)


@dg.asset(
    group_name="phase1",
    deps=["decontaminated_files"],
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="phase1_corpus", blocking=True)
        for name in checks.CORPUS_CHECKS
    ],
)
def phase1_corpus(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """One document per (repository, language): files in a seeded random order, each behind a
    `<|file_sep|>path` line; long repositories split. The phase-1 training corpus."""
    from snowcoder_assets.phase1.corpus import build_phase1_corpus, corpus_dir
    from snowcoder_assets.phase1.per_file import DECONT_STAGE, finished_partitions

    config = snowcoder.load()
    partitions = finished_partitions(config, DECONT_STAGE)
    summary = build_phase1_corpus(config, partitions, context.log.info)
    refresh_views(config.data_dir)
    results = checks.corpus_checks(config)
    if all(r.passed for r in results):  # a failed check leaves the stage stale for the next run
        mark_global_done(config, "phase1_corpus")
    return dg.MaterializeResult(
        metadata={
            "num_rows": summary.documents,
            "num_files": summary.files,
            "num_bytes": summary.bytes,
            "by_language": language_table(summary.files_by_lang, summary.bytes_by_lang),
            "bytes_by_language_chart": checks.bytes_chart(summary.bytes_by_lang),
            "funnel": checks.funnel_table(config),
            "path": dg.MetadataValue.path(str(corpus_dir(config))),
        },
        check_results=results,
    )
