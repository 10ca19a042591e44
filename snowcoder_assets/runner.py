"""Materialize a Dagster selection from the command line, partitions included.

The selection runs in waves, in dependency order: a wave of per-partition assets (one partition
per source shard) runs one Dagster run per partition in a pool of worker processes (all cores),
only for partitions whose inputs changed; a global wave (dedup clustering, the corpus) runs once.
Every run lands in the project instance, so the UI shows them.
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
from snowcoder_assets.stages import is_current

Echo = Callable[[str], None]
# Hub assets need run config (the repository id): `snowcoder publish` or the UI launches them.
PUBLISH_GROUPS = frozenset({"hub"})
# Step logs stay in the run's event log (the UI shows them); the terminal shows progress lines.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def ensure_dagster_home() -> Path:
    """Use the project instance (`dagster_home/`) unless DAGSTER_HOME is already set."""
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(project_root() / "dagster_home")
    home = Path(os.environ["DAGSTER_HOME"]).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)  # Dagster refuses a DAGSTER_HOME that is missing
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass(frozen=True)
class Wave:
    """Consecutive selected assets that run together: per partition, or once (global)."""

    partitioned: bool
    keys: list[dg.AssetKey]


def plan_selection(defs: dg.Definitions, selection: str) -> list[Wave]:
    """Resolve a Dagster selection into waves in dependency order."""
    graph = defs.resolve_asset_graph()
    try:
        keys = dg.AssetSelection.from_string(selection).resolve(graph)
    except Exception as exc:
        raise ValueError(f"invalid selection {selection!r}: {exc}") from exc
    keys = {k for k in keys if graph.get(k).group_name not in PUBLISH_GROUPS}
    if not keys:
        raise ValueError(
            f"selection {selection!r} matches no asset (publishing to the Hub is "
            "`snowcoder publish`, which takes the repository id)"
        )
    waves: list[Wave] = []
    for level in graph.toposorted_asset_keys_by_level:
        for key in sorted(k for k in level if k in keys):
            partitioned = graph.get(key).partitions_def is not None
            if waves and waves[-1].partitioned == partitioned:
                waves[-1].keys.append(key)
            else:
                waves.append(Wave(partitioned, [key]))
    return waves


def register_shards(config: SnowcoderConfig, instance: dg.DagsterInstance) -> list[Shard]:
    """Discover every source's shards and add new ones as dynamic partitions."""
    shards = discover_all(config)
    known = set(instance.get_dynamic_partitions(SOURCE_SHARDS.name))
    new = [s.partition_key for s in shards if s.partition_key not in known]
    if new:
        instance.add_dynamic_partitions(SOURCE_SHARDS.name, new)
    return shards


def _stage_is_current() -> dict[str, Callable[[SnowcoderConfig, Shard], bool]]:
    """Per partitioned asset: does its completion marker match what it would consume now?"""
    from snowcoder_assets.phase1 import per_file as p1

    def stage(name: str, input_digest: Callable[[SnowcoderConfig, str, str], str]):
        return lambda c, s: is_current(
            c.data_dir, name, s.source, s.shard, input_digest(c, s.source, s.shard)
        )

    return {
        "raw_files": lambda c, s: not needs_ingest(c, s),
        p1.SIGNALS_STAGE: stage(p1.SIGNALS_STAGE, p1.signals_input_digest),
        p1.FILTER_STAGE: stage(p1.FILTER_STAGE, p1.filter_input_digest),
        p1.DEDUP_STAGE: stage(p1.DEDUP_STAGE, p1.dedup_input_digest),
        p1.DECONT_STAGE: stage(p1.DECONT_STAGE, p1.decont_input_digest),
    }


def partitions_to_run(
    config: SnowcoderConfig,
    instance: dg.DagsterInstance,
    shards: list[Shard],
    keys: list[dg.AssetKey],
    everything: bool,
) -> dict[Shard, list[dg.AssetKey]]:
    """For each shard with work, the wave's assets to run: from the first stale one (inputs
    changed since its completion marker, or never materialized in this instance) to the end."""
    if everything:
        return {s: list(keys) for s in shards}
    current = _stage_is_current()
    materialized = {k: instance.get_materialized_partitions(k) for k in keys}
    todo: dict[Shard, list[dg.AssetKey]] = {}
    for shard in shards:
        for i, key in enumerate(keys):
            check = current.get(key.to_user_string())
            fresh = check is not None and check(config, shard)
            if not fresh or shard.partition_key not in materialized[key]:
                todo[shard] = keys[i:]
                break
    return todo


def global_keys_to_run(
    config: SnowcoderConfig, instance: dg.DagsterInstance, keys: list[dg.AssetKey]
) -> list[dg.AssetKey]:
    """The wave's global assets from the first one whose inputs changed (or that this instance
    never materialized) to the end; [] when all are up to date."""
    from snowcoder_assets.freshness import global_stage_is_current

    for i, key in enumerate(keys):
        fresh = global_stage_is_current(config, key.to_user_string())
        if not fresh or instance.get_latest_materialization_event(key) is None:
            return keys[i:]
    return []


def materialize(
    config: SnowcoderConfig,
    selection: str = "*",
    all_partitions: bool = False,
    workers: int | None = None,
    echo: Echo = print,
) -> bool:
    """Run the selection wave by wave; returns True when every run succeeded."""
    from snowcoder_assets.definitions import defs

    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    waves = plan_selection(defs, selection)
    shards = register_shards(config, instance) if any(w.partitioned for w in waves) else []
    ok = True
    for wave in waves:
        names = ", ".join(k.to_user_string() for k in wave.keys)
        if wave.partitioned:
            todo = partitions_to_run(config, instance, shards, wave.keys, all_partitions)
            echo(
                f"{names}: {len(todo)} of {len(shards)} partitions to run "
                f"({len(shards) - len(todo)} up to date)"
            )
            ok = _run_partitions(config, todo, workers, echo)
        else:
            keys = wave.keys if all_partitions else global_keys_to_run(config, instance, wave.keys)
            if not keys:
                echo(f"{names}: up to date")
                continue
            start = time.perf_counter()
            error = _run_one(str(config.config_file), keys, None)
            status = "ok" if error is None else f"FAILED: {error}"
            ran = ", ".join(k.to_user_string() for k in keys)
            echo(f"{ran}: {status} in {time.perf_counter() - start:.1f}s")
            ok = error is None
        if not ok:
            echo("stopping: later stages would read incomplete inputs")
            break
    refresh_views(config.data_dir)
    return ok


def _run_partitions(
    config: SnowcoderConfig,
    todo: dict[Shard, list[dg.AssetKey]],
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
            pool.submit(_run_one, str(config.config_file), keys, s.partition_key): s
            for s, keys in todo.items()
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
    return "run failed (a blocking asset check failed, or a step was skipped)"
