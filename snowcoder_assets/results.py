"""How every asset builds its MaterializeResult: data version, recorded outputs, metadata.

`materialize_files` serves global assets: the files written are recorded (digests of unchanged
files reused from the previous materialization) and make the data version.

`materialize_partitions` runs a per-partition stage over the partitions of one Dagster run (one,
or a batch of them).
A run launched for a partition range (`BackfillPolicy.multi_run`, or the CLI's batches) calls
the stage once per partition key, in order. Each partition's written files are recorded in its
own materialization metadata (`versions.OUTPUTS_KEY`), so the instance knows per partition what
exists on disk. The data version covers the batch: Dagster copies one version to every partition
of a ranged run (dagster-io/dagster#34013), so a single-partition run gets that partition's
exact version and a batch gets one for all its partitions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig, split_partition_key
from snowcoder_assets.lineage.decisions import StageStats
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.metadata import counts_table, language_table
from snowcoder_assets.orchestration.records import Materialization, own_latest
from snowcoder_assets.versions import (
    data_version,
    outputs_metadata,
    outputs_record,
    recorded_outputs,
)


@dataclass
class PartitionResult:
    """What a stage did for one partition: its counts, the files it wrote, its check results."""

    stats: StageStats
    outputs: list[Path]
    checks: list[dg.AssetCheckResult] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)


StageFn = Callable[[str, str], PartitionResult]


def stage_metadata(stats: StageStats) -> dict:
    return {
        "num_rows": stats.kept,
        "num_files_in": stats.files_in,
        "num_bytes": stats.bytes_kept,
        "by_language": language_table(stats.kept_by_lang, stats.bytes_by_lang),
        "dropped_by_reason": counts_table(stats.dropped, "reason", "files"),
    }


def materialize_partitions(
    context: dg.AssetExecutionContext, config: SnowcoderConfig, stage: StageFn
) -> dg.MaterializeResult:
    """Run `stage(source, shard)` for every partition of the run; one MaterializeResult."""
    keys = list(context.partition_keys)
    total, records, checks = StageStats(), [], []
    start = time.perf_counter()
    for i, key in enumerate(keys, start=1):
        source, shard = split_partition_key(key)
        result = stage(source, shard)
        record = outputs_record(config.data_dir, result.outputs)
        records.append(record)
        context.add_asset_metadata(
            {**outputs_metadata(record), "num_rows": result.stats.kept, **result.metadata},
            partition_key=key,
        )
        total.add(result.stats)
        checks.append(result.checks)
        elapsed = time.perf_counter() - start
        context.log.info(
            f"{context.asset_key.to_user_string()} {key}: {result.stats.kept} of "
            f"{result.stats.files_in} files kept ({i}/{len(keys)} partitions, "
            f"elapsed {elapsed:.0f}s, eta {elapsed / i * (len(keys) - i):.0f}s)"
        )
    refresh_views(config.data_dir)
    return dg.MaterializeResult(
        metadata={**stage_metadata(total), "num_partitions": len(keys)},
        data_version=data_version(records),
        check_results=merge_checks(checks),
    )


def materialize_files(
    context: dg.AssetExecutionContext,
    config: SnowcoderConfig,
    outputs: Sequence[Path],
    metadata: dict,
    check_results: Sequence[dg.AssetCheckResult] = (),
) -> dg.MaterializeResult:
    """A global asset's result: its files recorded, their digests as its data version."""
    return files_result(config, outputs, metadata, own_latest(context), check_results)


def files_result(
    config: SnowcoderConfig,
    outputs: Sequence[Path],
    metadata: dict,
    previous: Materialization | None,
    check_results: Sequence[dg.AssetCheckResult] = (),
) -> dg.MaterializeResult:
    """The same, given the asset's previous materialization (whose recorded digests are reused
    for files that kept their size and mtime)."""
    record = outputs_record(
        config.data_dir, outputs, recorded_outputs(previous.metadata) if previous else None
    )
    return dg.MaterializeResult(
        metadata={**metadata, **outputs_metadata(record)},
        data_version=data_version([record]),
        check_results=list(check_results),
    )


def merge_checks(per_partition: Sequence[Sequence[dg.AssetCheckResult]]) -> list:
    """One result per check for the whole run: passed when every partition passed; counts
    summed, the first offending ids of each partition kept (at most 10)."""
    merged: dict[str, dg.AssetCheckResult] = {}
    for results in per_partition:
        for result in results:
            name = result.check_name
            if name not in merged:
                merged[name] = result
                continue
            merged[name] = _combine(merged[name], result)
    return list(merged.values())


def _combine(a: dg.AssetCheckResult, b: dg.AssetCheckResult) -> dg.AssetCheckResult:
    metadata: dict = {}
    for key in {**a.metadata, **b.metadata}:
        x, y = _raw(a.metadata.get(key)), _raw(b.metadata.get(key))
        if isinstance(x, int | float) and isinstance(y, int | float):
            metadata[key] = x + y
        elif isinstance(x, list) or isinstance(y, list):
            metadata[key] = [*(x or []), *(y or [])][:10]
        else:
            metadata[key] = x if x is not None else y
    return dg.AssetCheckResult(
        check_name=a.check_name,
        asset_key=a.asset_key,
        passed=a.passed and b.passed,
        metadata=metadata,
    )


def _raw(value: object) -> object:
    """The plain value inside a metadata value (json values keep theirs in `data`)."""
    if hasattr(value, "data"):
        return value.data
    return getattr(value, "value", value)
