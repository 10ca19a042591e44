"""Materialize a Dagster selection from the command line, partitions included.

Partitioned assets (one partition per source shard) run one Dagster run per partition, in a
pool of worker processes (all cores); only new or changed shards run unless asked otherwise.
Unpartitioned (global) assets then run in one run. Every run lands in the project instance,
so the UI shows them.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig, project_root
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.raw.partitions import SOURCE_SHARDS
from snowcoder_assets.raw.shards import Shard, discover_all, needs_ingest

Echo = Callable[[str], None]
# Step logs stay in the run's event log (the UI shows them); the terminal shows progress lines.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def ensure_dagster_home() -> Path:
    """Use the project instance (`dagster_home/`) unless DAGSTER_HOME is already set."""
    if not os.environ.get("DAGSTER_HOME"):
        home = project_root() / "dagster_home"
        home.mkdir(exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    return Path(os.environ["DAGSTER_HOME"])


@dataclass(frozen=True)
class Plan:
    partitioned: list[dg.AssetKey]
    unpartitioned: list[dg.AssetKey]


def plan_selection(defs: dg.Definitions, selection: str) -> Plan:
    """Resolve a Dagster selection string into partitioned and global asset keys, in order."""
    graph = defs.resolve_asset_graph()
    try:
        keys = dg.AssetSelection.from_string(selection).resolve(graph)
    except Exception as exc:
        raise ValueError(f"invalid selection {selection!r}: {exc}") from exc
    if not keys:
        raise ValueError(f"selection {selection!r} matches no asset")
    ordered = [k for level in graph.toposorted_asset_keys_by_level for k in level if k in keys]
    partitioned = [k for k in ordered if graph.get(k).partitions_def is not None]
    return Plan(partitioned, [k for k in ordered if k not in partitioned])


def register_shards(config: SnowcoderConfig, instance: dg.DagsterInstance) -> list[Shard]:
    """Discover every source's shards and add new ones as dynamic partitions."""
    shards = discover_all(config)
    known = set(instance.get_dynamic_partitions(SOURCE_SHARDS.name))
    new = [s.partition_key for s in shards if s.partition_key not in known]
    if new:
        instance.add_dynamic_partitions(SOURCE_SHARDS.name, new)
    return shards


def partitions_to_run(
    config: SnowcoderConfig,
    instance: dg.DagsterInstance,
    shards: list[Shard],
    keys: list[dg.AssetKey],
    everything: bool,
) -> list[Shard]:
    """New or changed shards, plus any shard a selected asset has not materialized yet."""
    if everything:
        return shards
    materialized = {k: instance.get_materialized_partitions(k) for k in keys}
    return [
        s
        for s in shards
        if needs_ingest(config, s)
        or any(s.partition_key not in done for done in materialized.values())
    ]


def materialize(
    config: SnowcoderConfig,
    selection: str = "*",
    all_partitions: bool = False,
    workers: int | None = None,
    echo: Echo = print,
) -> bool:
    """Run the selection; returns True when every run succeeded."""
    from snowcoder_assets.definitions import defs

    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    plan = plan_selection(defs, selection)
    ok = True
    if plan.partitioned:
        shards = register_shards(config, instance)
        todo = partitions_to_run(config, instance, shards, plan.partitioned, all_partitions)
        names = ", ".join(k.to_user_string() for k in plan.partitioned)
        echo(
            f"{names}: {len(todo)} of {len(shards)} partitions to run "
            f"({len(shards) - len(todo)} up to date)"
        )
        ok = _run_partitions(config, plan.partitioned, todo, workers, echo)
    if plan.unpartitioned and ok:
        for key in plan.unpartitioned:
            echo(f"{key.to_user_string()}: running")
            error = _run_one(str(config.config_file), [key], None)
            ok = ok and error is None
    refresh_views(config.data_dir)
    return ok


def _run_partitions(
    config: SnowcoderConfig,
    keys: list[dg.AssetKey],
    todo: list[Shard],
    workers: int | None,
    echo: Echo,
) -> bool:
    if not todo:
        return True
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    total_bytes = sum(s.num_bytes for s in todo) or 1
    done_bytes, failures, start = 0, [], time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(_run_one, str(config.config_file), keys, s.partition_key): s for s in todo
        }
        for i, future in enumerate(as_completed(futures), start=1):
            shard = futures[future]
            error = future.result()
            done_bytes += shard.num_bytes
            elapsed = time.perf_counter() - start
            eta = elapsed * (total_bytes - done_bytes) / max(done_bytes, 1)
            status = "ok" if error is None else f"FAILED: {error}"
            echo(
                f"  [{i}/{len(todo)}] {shard.partition_key} ({shard.num_files} files, "
                f"{shard.num_bytes / 1e6:.1f} MB) {status}  elapsed {elapsed:.0f}s eta {eta:.0f}s"
            )
            if error is not None:
                failures.append(shard.partition_key)
    if failures:
        echo(
            f"{len(failures)} partition(s) failed: {', '.join(failures)} "
            "(see the runs in `snowcoder ui`)"
        )
    return not failures


def _run_one(config_path: str, keys: list[dg.AssetKey], partition: str | None) -> str | None:
    """Materialize `keys` (one partition or none) in this process; the error text on failure."""
    from snowcoder_assets.definitions import defs
    from snowcoder_assets.resources import SnowcoderConfigResource

    ensure_dagster_home()
    try:
        result = dg.materialize(
            assets=list(defs.assets or []),
            resources={
                **(defs.resources or {}),
                "snowcoder": SnowcoderConfigResource(config_path=config_path),
            },
            selection=keys,
            partition_key=partition,
            run_config=QUIET_CONSOLE,
            instance=dg.DagsterInstance.get(),
            raise_on_error=False,
        )
    except Exception as exc:  # a definitions or instance problem: report, do not hang the pool
        return f"{type(exc).__name__}: {exc}"
    if result.success:
        return None
    failed = [e for e in result.all_events if e.is_step_failure]
    if failed and failed[0].step_failure_data and failed[0].step_failure_data.error:
        return failed[0].step_failure_data.error.message.strip().splitlines()[-1]
    return "run failed"
