"""Phase-1 per-partition assets (group `phase1`): signals, filter, dedup, decontamination."""

import dagster as dg

from snowcoder_assets.orchestration.automation import CPU_EAGER, order_only
from snowcoder_assets.orchestration.pools import SHARD_POD
from snowcoder_assets.phase1 import checks
from snowcoder_assets.phase1.decontaminated_files import decont_outputs, run_decontaminate
from snowcoder_assets.phase1.deduped_files import dedup_outputs, run_dedup_apply
from snowcoder_assets.phase1.file_signals import minhash_path, run_file_signals, signals_path
from snowcoder_assets.phase1.filtered_files import filter_outputs, run_filter
from snowcoder_assets.raw.partitions import SOURCE_SHARDS
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.results import PartitionResult, materialize_partitions

DEDUP_DECISIONS = dg.AssetKey("dedup_decisions")


def _per_partition(context, snowcoder, run, outputs, check) -> dg.MaterializeResult:
    config = snowcoder.load()

    def stage(source: str, shard: str) -> PartitionResult:
        stats = run(config, source, shard, context.log.info)
        return PartitionResult(
            stats, outputs(config.data_dir, source, shard), [check(config, source, shard)]
        )

    return materialize_partitions(context, config, stage)


def _signals_outputs(data_dir, source, shard):
    return [signals_path(data_dir, source, shard), minhash_path(data_dir, source, shard)]


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    op_tags=SHARD_POD,
    group_name="phase1",
    deps=["raw_files"],
    kinds={"parquet"},
    automation_condition=CPU_EAGER,
    check_specs=[dg.AssetCheckSpec(checks.EVERY_INPUT_DECIDED, asset="file_signals")],
)
def file_signals(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Per-file quality signals (line lengths, alphanumeric fraction, markers of generated or
    encoded data, ...) and MinHash band keys, computed once; thresholds apply downstream."""
    return _per_partition(
        context, snowcoder, run_file_signals, _signals_outputs, checks.signals_cover_raw
    )


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    op_tags=SHARD_POD,
    group_name="phase1",
    deps=["file_signals"],
    kinds={"parquet"},
    automation_condition=CPU_EAGER,
    check_specs=[
        dg.AssetCheckSpec(checks.EVERY_INPUT_DECIDED, asset="filtered_files", blocking=True)
    ],
)
def filtered_files(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Files that pass the StarCoder-style thresholds of `[filters]` (per language); every drop
    has its reason in `decisions`. Changing a threshold re-runs only this step onward."""
    return _per_partition(context, snowcoder, run_filter, filter_outputs, checks.filter_decided_all)


dedup_decisions = dg.AssetSpec(
    DEDUP_DECISIONS,
    partitions_def=SOURCE_SHARDS,
    group_name="phase1",
    deps=["dup_clusters"],
    kinds={"parquet"},
    description=(
        "Each partition's exact and near dedup decisions, as `dup_clusters` decided them. "
        "Reported by `dup_clusters` (not materialized on its own) with the decisions' digest as "
        "the data version, and only for partitions whose decisions changed: one global "
        "clustering run cannot give each partition its own data version (dagster#34013)."
    ),
)


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    op_tags=SHARD_POD,
    group_name="phase1",
    deps=["filtered_files", "dup_clusters", DEDUP_DECISIONS],
    kinds={"parquet"},
    # `dup_clusters` orders it; what a partition consumes of it is its `dedup_decisions`.
    **order_only("dup_clusters"),
    check_specs=[
        dg.AssetCheckSpec(checks.EVERY_INPUT_DECIDED, asset="deduped_files", blocking=True)
    ],
)
def deduped_files(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """The partition's files minus exact and near duplicates (its `dedup_decisions`)."""
    return _per_partition(
        context, snowcoder, run_dedup_apply, dedup_outputs, checks.dedup_decided_all
    )


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    op_tags=SHARD_POD,
    group_name="phase1",
    deps=["deduped_files"],
    kinds={"parquet"},
    automation_condition=CPU_EAGER,
    check_specs=[
        dg.AssetCheckSpec(checks.EVERY_INPUT_DECIDED, asset="decontaminated_files", blocking=True)
    ],
)
def decontaminated_files(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Deduplicated files that share no benchmark problem (HumanEval and configured jsonl
    benchmarks: 10-gram overlap or docstring/solution substring); evidence in `contamination`."""
    return _per_partition(
        context, snowcoder, run_decontaminate, decont_outputs, checks.decont_decided_all
    )


def code_versions(config) -> dict[str, str]:
    """Each per-partition stage's code and the configuration section it reads."""
    from snowcoder_assets.phase1.decontaminated_files import benchmark_files_digest
    from snowcoder_assets.versions import code_version

    def room(*names: str) -> list[str]:
        return [f"snowcoder_assets.phase1.{n}" for n in names]

    # The clustering threshold does not change signatures: leave it out of what they depend on.
    minhash_settings = config.dedup.minhash.model_dump(mode="json", exclude={"threshold"})
    return {
        "file_signals": code_version(room("file_signals", "signals", "minhash"), minhash_settings),
        "filtered_files": code_version(room("filtered_files", "filters"), config.filters),
        "deduped_files": code_version(room("deduped_files")),
        "decontaminated_files": code_version(
            room("decontaminated_files", "decontaminate"),
            config.decontamination,
            benchmark_files_digest(config),
        ),
    }
