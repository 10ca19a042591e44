"""`snowcoder materialize` / `demo`: bring a selection up to date through the Dagster instance.

Discovery registers new shards; then, wave by wave, a plan of what is missing or out of date
(`plan.py`) is submitted as runs to the instance (`launch.py`), each run as soon as the runs
it depends on have succeeded, and followed: progress lines (runs and partitions done, elapsed,
ETA), the runs' own log lines, and a failing run's id and step error. Nothing is run by this
process itself: the instance's run coordinator queues, its launcher starts, its executor runs.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.orchestration.code_server import CodeServer, early_code_server
from snowcoder_assets.orchestration.instance import open_instance, use_instance
from snowcoder_assets.orchestration.launch import InstanceClient
from snowcoder_assets.orchestration.orphans import fail_orphaned_runs
from snowcoder_assets.orchestration.plan import Plan, RunSpec, make_plan
from snowcoder_assets.raw.discovery import config_partitions, discover_and_register

Echo = Callable[[str], None]
POLL_S = 0.2
MAX_WAVES = 20


@dataclass
class Outcome:
    ok: bool = True
    runs: list[str] = field(default_factory=list)  # run ids launched, in order
    waves: int = 0
    seconds: float = 0.0


def resolve_selection(defs: dg.Definitions, selection: str) -> set[dg.AssetKey]:
    """The materializable assets a Dagster selection string names; a clear error otherwise."""
    graph = defs.resolve_asset_graph()
    try:
        keys = dg.AssetSelection.from_string(selection).resolve(graph)
    except Exception as exc:
        raise ValueError(f"invalid selection {selection!r}: {exc}") from exc
    keys = {k for k in keys if graph.get(k).is_materializable}
    if not keys:
        raise ValueError(f"selection {selection!r} matches no asset that runs can materialize")
    return keys


def materialize(
    config: SnowcoderConfig,
    selection: str = "*",
    force: bool = False,
    echo: Echo = print,
    server: CodeServer | None = None,
) -> Outcome:
    """Run what the selection needs until nothing is missing or out of date."""
    from snowcoder_assets.definitions import build_defs

    start, outcome = time.perf_counter(), Outcome()
    try:
        server = server or early_code_server(config)
        defs = build_defs(config)
        keys = resolve_selection(defs, selection)
        instance = open_instance(config)  # creates the instance's storage on first use
        server = server or CodeServer(use_instance(config))
        _materialize(config, instance, server, defs, keys, force, echo, outcome)
    finally:
        if server is not None:
            server.stop()
    refresh_views(config.data_dir)
    outcome.seconds = time.perf_counter() - start
    return outcome


def _materialize(config, instance, server, defs, keys, force, echo, outcome) -> None:
    for run_id in fail_orphaned_runs(instance):
        echo(f"run {run_id[:8]} marked failed: the client that launched it was killed")
    found = discover_and_register(config, instance)
    echo(
        f"discovery: {len(found.shards)} shards, {len(found.new_partitions)} new, "
        f"{len(found.changed)} new or changed since last reported"
    )
    seen: set[tuple] = set()
    with _LazyClient(instance, server, defs) as client:
        while outcome.waves < MAX_WAVES:
            plan = make_plan(
                defs, instance, keys, config_partitions(instance, config), config.data_dir,
                max_runs=_run_slots(instance), force=force and outcome.waves == 0,
            )  # fmt: skip
            _print_plan(plan, echo)
            if not plan.runs:
                break
            asked = {(w.key, w.partition, w.reason.split(":")[0]) for w in plan.work}
            if asked & seen:  # the same work for the same reason again: no progress
                key, partition, reason = sorted(asked & seen, key=str)[0]
                echo(f"stopping: {key.to_user_string()}[{partition}] is still {reason}")
                outcome.ok = False
                break
            seen |= asked
            outcome.waves += 1
            if not _execute(client.open(), plan.runs, echo, outcome):
                outcome.ok = False
                break


class _LazyClient:
    """The instance client opens (code server, queue daemon) only when there is a run to do."""

    def __init__(self, instance: dg.DagsterInstance, server, defs: dg.Definitions) -> None:
        self.instance, self.server, self.defs, self.client = instance, server, defs, None

    def open(self) -> InstanceClient:
        if self.client is None:
            graph = self.defs.resolve_asset_graph()

            def check_keys(keys):
                return [c for c in graph.asset_check_keys if c.asset_key in set(keys)]

            self.client = InstanceClient(self.instance, self.server, check_keys).__enter__()
        return self.client

    def __enter__(self) -> _LazyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.__exit__(*exc)


def _run_slots(instance: dg.DagsterInstance) -> int:
    queue = instance.get_concurrency_config().run_queue_config
    limit = queue.max_concurrent_runs if queue else None
    return limit if limit and limit > 0 else (os.cpu_count() or 1)


def _print_plan(plan: Plan, echo: Echo) -> None:
    for line in plan.blocked[:10]:
        echo(f"  blocked: {line}")
    if not plan.work:
        echo("up to date: nothing to run")
        return
    parts = []
    for asset, reasons in plan.summary().items():
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        parts.append(f"{asset} ({why})")
    echo(f"plan: {len(plan.work)} asset partitions in {len(plan.runs)} runs: " + "; ".join(parts))


def _execute(client: InstanceClient, runs: list[RunSpec], echo: Echo, outcome: Outcome) -> bool:
    """Submit each run once its predecessors succeeded; follow all; False on a failure."""
    tag = uuid.uuid4().hex[:12]
    pending, active, done, failed = set(range(len(runs))), {}, set(), []
    total, finished_weight, start = sum(r.size for r in runs), 0, time.perf_counter()
    try:
        while pending or active:
            for i in sorted(pending):
                if not failed and runs[i].after <= done:
                    active[i] = client.submit(runs[i], tag)
                    outcome.runs.append(active[i])
                    pending.discard(i)
                    echo(f"  run {active[i][:8]} queued: {runs[i].label()}")
            if failed and not active:
                break
            time.sleep(POLL_S)
            client.ensure_dequeuer()  # a daemon that was thought alive may have gone
            for i, run_id in list(active.items()):
                run = client.instance.get_run_by_id(run_id)  # before the events: none missed
                events = client.events(run_id)
                for message in events.messages:
                    echo(f"    {message}")
                if run is None or not run.is_finished:
                    continue
                del active[i]
                if run.status == dg.DagsterRunStatus.SUCCESS:
                    done.add(i)
                    finished_weight += runs[i].size
                    elapsed = time.perf_counter() - start
                    eta = elapsed * (total - finished_weight) / max(finished_weight, 1)
                    echo(
                        f"  run {run_id[:8]} ok ({len(done)}/{len(runs)} runs, "
                        f"{finished_weight}/{total} asset partitions, "
                        f"elapsed {elapsed:.0f}s, eta {eta:.0f}s)"
                    )
                else:
                    failed.append(i)
                    reasons = events.failures or [run.status.value]
                    echo(f"  run {run_id} {run.status.value}: {runs[i].label()}")
                    for reason in reasons:
                        echo(f"    error: {reason}")
    except KeyboardInterrupt:
        client.cancel(list(active.values()))
        raise
    if failed:
        skipped = len(pending)
        echo(
            f"stopping: {len(failed)} run(s) failed"
            + (f", {skipped} dependent run(s) not started" if skipped else "")
            + " (see the runs in `snowcoder ui`)"
        )
    return not failed
