"""Scheduling 10k+ shards on a Postgres instance: discovery tick, automation, planning.

A simulated source of `--shards` tiny shards (one parquet file, one row per row group,
`shard_max_files = 1`) on a throw-away local PostgreSQL (`make postgres`) as the instance's
storage. Timed, one after another, as the daemon and the CLI do them:
- `discovery_tick`: the discovery sensor's evaluation (list the source, diff against the
  instance) and applying its result (register the partitions, record each shard's
  `source_files` event);
- `automation_tick`: one evaluation of every asset's automation condition over all partitions
  (`dg.evaluate_automation_conditions`, the automation sensor's code path);
- `plan_backfill`: `snowcoder materialize`'s plan of `*phase1_corpus` over every partition,
  batched into runs (`[orchestration] partitions_per_run`), without launching them;
- `ui_backfill_launch` and `backfill_daemon_plan`: the same selection as the UI's
  "Materialize all" backfill (the GraphQL mutation), then one iteration of Dagster's backfill
  daemon over it: the seconds until it submits its first run (its planning), and the seconds
  per run it then submits (the roots' batches, `BackfillPolicy.multi_run`); the backfill is
  canceled after the first chunk of 25 submissions.

Usage: python bench/scale.py [--shards 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import local_postgres, postgres_instance_settings  # noqa: E402


def emit(**fields) -> None:
    machine = f"{platform.machine()} {os.cpu_count()} cores"
    print(json.dumps({"bench": "scale", "date": date.today().isoformat(), "machine": machine,
                      **fields}), flush=True)  # fmt: skip


def write_source(folder: Path, shards: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"content": f"def f{i}():\n    return {i}\n", "max_stars_repo_name": f"org/r{i}",
         "max_stars_repo_path": f"m{i}.py"}
        for i in range(shards)
    ]  # fmt: skip
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "tiny.parquet", row_group_size=1)
    config = folder.parent / "snowcoder.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{(folder.parent / "data").as_posix()}"\n'
        "[ingest]\nshard_max_files = 1\n"
        f'[[sources]]\nname = "tiny"\nkind = "parquet"\npath = "{folder.as_posix()}/*.parquet"\n'
    )
    return config


def timed(name: str, fn, extra):
    start = time.perf_counter()
    result = fn()
    emit(step=name, seconds=round(time.perf_counter() - start, 2), **extra(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, local_postgres() as url:
        root = Path(tmp)
        config_path = write_source(root / "source", args.shards)
        home = root / "home"
        home.mkdir()
        template = ROOT / "dagster_home" / "dagster.yaml"
        (home / "dagster.yaml").write_text(postgres_instance_settings(template, url))
        os.environ["DAGSTER_HOME"] = str(home)
        os.environ["SNOWCODER_CONFIG"] = str(config_path)
        run(config_path)


def run(config_path: Path) -> None:
    import dagster as dg

    from snowcoder_assets.config import load_config
    from snowcoder_assets.definitions import build_defs
    from snowcoder_assets.orchestration.instance import open_instance
    from snowcoder_assets.orchestration.materialize import resolve_selection
    from snowcoder_assets.orchestration.plan import make_plan
    from snowcoder_assets.orchestration.records import latest_data_versions
    from snowcoder_assets.raw.discovery import config_partitions
    from snowcoder_assets.raw.partitions import SOURCE_FILES, SOURCE_SHARDS
    from snowcoder_assets.raw.sensors import source_shard_sensor
    from snowcoder_assets.resources import SnowcoderConfigResource

    config = load_config(config_path)
    defs = build_defs(config)
    with open_instance(config) as instance:
        resources = {"snowcoder": SnowcoderConfigResource(config_path=str(config_path))}

        def discovery_tick():
            context = dg.build_sensor_context(instance=instance, resources=resources)
            source_shard_sensor(context)  # registers partitions and events itself
            return instance

        timed("discovery_tick", discovery_tick, extra=lambda i: {
            "new_partitions": len(i.get_dynamic_partitions(SOURCE_SHARDS.name)),
            "source_files_events": len(latest_data_versions(i, SOURCE_FILES))})  # fmt: skip
        partitions = config_partitions(instance, config)

        def automation_tick():
            return dg.evaluate_automation_conditions(defs=defs, instance=instance)

        def plan_backfill():
            selection = resolve_selection(defs, "*phase1_corpus")
            max_runs = os.cpu_count() or 1
            return make_plan(defs, instance, selection, partitions, config.data_dir, max_runs)

        timed("automation_tick", automation_tick, extra=lambda r: {
            "requested": r.total_requested, "partitions": len(partitions)})  # fmt: skip
        timed("plan_backfill", plan_backfill, extra=lambda p: {
            "runs": len(p.runs), "per_run": config.orchestration.partitions_per_run})  # fmt: skip
        daemon_backfill(instance, defs)


def daemon_backfill(instance, defs) -> None:
    """Dagster's own backfill path over every partition: launched as the UI does, then one
    backfill daemon iteration (its planning and first submissions), timed apart."""
    import logging

    import dagster as dg
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._daemon.backfill import execute_backfill_iteration

    from snowcoder_assets.orchestration.materialize import resolve_selection
    from tests.orchestration.daemon import code_location_target, launch_backfill

    keys = sorted(resolve_selection(defs, "*phase1_corpus"), key=str)
    backfill_id = timed("ui_backfill_launch", lambda: launch_backfill(instance, keys),
                        extra=lambda _: {"assets": len(keys)})  # fmt: skip
    with WorkspaceProcessContext(instance, code_location_target()) as workspace:
        logger = logging.getLogger("bench.scale.backfill")
        started = time.time()
        stopper = threading.Thread(target=_cancel_after_first_chunk, args=(instance, backfill_id))
        stopper.start()
        errors = [e for e in execute_backfill_iteration(workspace, logger) if e is not None]
        stopper.join()
        assert not errors, errors[0].to_string()
        records = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        created = sorted(r.create_timestamp.timestamp() for r in records)
        per_run = (created[-1] - created[0]) / max(len(created) - 1, 1)
        emit(step="backfill_daemon_plan", seconds=round(created[0] - started, 2),
             runs_submitted=len(created), seconds_per_submitted_run=round(per_run, 3))  # fmt: skip


def _cancel_after_first_chunk(instance, backfill_id: str, chunk: int = 25) -> None:
    """Stop the iteration after its first chunk of submissions (it checks the backfill's status
    between chunks): what is timed is the planning, not the submission of every run."""
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus

    while instance.get_runs_count(dg.RunsFilter(tags={"dagster/backfill": backfill_id})) < chunk:
        time.sleep(0.2)
    backfill = instance.get_backfill(backfill_id)
    instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELING))


if __name__ == "__main__":
    main()
