"""Submitting runs to the instance the way the UI does, and following them.

`InstanceClient` connects to the code location's gRPC server (`code_server.py`), creates each
run from the remote job and its execution plan as the UI's `launchPipelineExecution` does, and
hands it to the instance's run coordinator, which queues it; the instance's run launcher starts
it. When no daemon is dequeuing this instance (no `dagster dev` running), the client
runs Dagster's queued-run daemon, and only that one, for as long as it is open: the queue's
`max_concurrent_runs` decides how many runs work at once. Sensors and automation stay with
`dagster dev` / `dagster-daemon`. A daemon counts as running when its heartbeat is recent; the
client's own daemon marks its heartbeat stale when it stops, so the next client does not wait
for a daemon that is gone (a killed client's heartbeat ages out within a minute).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import dagster as dg

from snowcoder_assets.orchestration.code_server import LOCATION, CodeServer, LaunchError
from snowcoder_assets.orchestration.instance import QUEUE_DAEMON, queue_daemon_running
from snowcoder_assets.orchestration.orphans import client_tags
from snowcoder_assets.orchestration.plan import RunSpec

REPOSITORY = "__repository__"
ASSET_JOB = "__ASSET_JOB"
PARTITION_TAG = "dagster/partition"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
CLIENT_TAG = "snowcoder/launched_by"
# Step logs stay in the run's event log (the UI shows them, the client echoes the INFO ones);
# the run worker's console, which is this terminal, gets warnings only.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RunEvents:
    """New log lines and failures of one run since the last poll."""

    messages: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_tags(spec: RunSpec, client: str) -> dict[str, str]:
    tags = {CLIENT_TAG: client, **client_tags()}
    if spec.partitions and len(spec.partitions) == 1:
        tags[PARTITION_TAG] = spec.partitions[0]
    elif spec.partitions:
        tags[RANGE_START], tags[RANGE_END] = spec.partitions[0], spec.partitions[-1]
    return tags


class InstanceClient:
    """Open: a code location loaded for the instance (and the queue daemon when needed)."""

    def __init__(
        self, instance: dg.DagsterInstance, server: CodeServer, check_keys: Callable
    ) -> None:
        self.instance, self.server, self._check_keys = instance, server, check_keys
        self._stack = ExitStack()
        self._cursors: dict[str, str | None] = {}

    def __enter__(self) -> InstanceClient:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _open(self) -> None:
        from dagster._core.workspace.context import WorkspaceProcessContext

        for name in ("dagster.code_server", "dagster.daemon", "dagster"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.workspace = self._stack.enter_context(
            WorkspaceProcessContext(self.instance, self.server.target())
        )
        error = self.workspace.create_request_context().get_code_location_error(LOCATION)
        if error is not None:
            raise LaunchError(f"the code location failed to load:\n{error.to_string()}")
        self._dequeuer = None
        self.ensure_dequeuer()

    def ensure_dequeuer(self) -> None:
        """Start Dagster's queued-run daemon here when nothing else dequeues this instance."""
        if self._dequeuer is not None or not _uses_queue(self.instance):
            return
        if queue_daemon_running(self.instance):
            return
        self._dequeuer = self._stack.enter_context(_QueueDaemon(self.workspace, self.instance))

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def submit(self, spec: RunSpec, client: str) -> str:
        """Create the run for the spec's assets and partitions, as the UI's Materialize does
        (`launchPipelineExecution` builds it the same way), and hand it to the instance's run
        coordinator, which queues it for the run launcher."""
        from dagster._core.definitions.selector import JobSubsetSelector
        from dagster._core.utils import make_new_run_id

        context = self.workspace.create_request_context()
        location = context.get_code_location(LOCATION)
        checks = frozenset(self._check_keys(spec.keys))
        job = location.get_job(
            JobSubsetSelector(
                location_name=LOCATION,
                repository_name=REPOSITORY,
                job_name=ASSET_JOB,
                op_selection=None,
                asset_selection=list(spec.keys),
                asset_check_selection=list(checks),
            )
        )
        plan = location.get_execution_plan(
            job, RUN_CONFIG, step_keys_to_execute=None, known_state=None, instance=self.instance
        )
        run = self.instance.create_run(
            job_name=ASSET_JOB,
            run_id=make_new_run_id(),
            run_config=RUN_CONFIG,
            resolved_op_selection=None,
            step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
            op_selection=None,
            status=dg.DagsterRunStatus.NOT_STARTED,
            root_run_id=None,
            parent_run_id=None,
            tags={**job.tags, **run_tags(spec, client)},
            job_snapshot=job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=job.parent_job_snapshot,
            remote_job_origin=job.get_remote_origin(),
            job_code_origin=job.get_python_origin(),
            asset_selection=frozenset(spec.keys),
            asset_check_selection=checks,
            asset_graph=context.asset_graph,
        )
        try:
            self.instance.submit_run(run.run_id, context)
        except Exception as exc:
            raise LaunchError(f"{spec.label()}: the instance refused the run: {exc}") from exc
        return run.run_id

    def events(self, run_id: str) -> RunEvents:
        """User log messages and step failures recorded for the run since the last call."""
        out = RunEvents()
        while True:
            connection = self.instance.event_log_storage.get_records_for_run(
                run_id, cursor=self._cursors.get(run_id), limit=500
            )
            self._cursors[run_id] = connection.cursor
            for record in connection.records:
                _collect(record.event_log_entry, out)
            if not connection.has_more:
                return out

    def cancel(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self.instance.run_coordinator.cancel_run(run_id)


def _collect(entry, out: RunEvents) -> None:
    event = entry.dagster_event
    if event is None:
        if entry.level >= logging.INFO and entry.user_message:
            out.messages.append(entry.user_message)
        return
    if event.event_type == dg.DagsterEventType.STEP_FAILURE:
        error = event.step_failure_data.error if event.step_failure_data else None
        text = error.message.strip() if error else event.message or "step failed"
        out.failures.append(f"{event.step_key}: {text}")
    elif event.event_type == dg.DagsterEventType.RUN_FAILURE and not out.failures:
        out.failures.append(event.message or "run failed")


def _uses_queue(instance: dg.DagsterInstance) -> bool:
    from dagster._core.run_coordinator import QueuedRunCoordinator

    return isinstance(instance.run_coordinator, QueuedRunCoordinator)


class _QueueDaemon:
    """Dagster's own queued-run daemon, alone, on the client's workspace; on exit its heartbeat
    is marked stale (when it is still the latest), so no one waits for it."""

    def __init__(self, workspace, instance: dg.DagsterInstance) -> None:
        self.workspace, self.instance = workspace, instance

    def __enter__(self) -> _QueueDaemon:
        from dagster._daemon.controller import DagsterDaemonController
        from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
            QueuedRunCoordinatorDaemon,
        )

        interval = self.instance.run_coordinator.dequeue_interval_seconds
        self.controller = DagsterDaemonController(
            self.workspace, [QueuedRunCoordinatorDaemon(interval_seconds=interval)]
        ).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        from dagster._daemon.types import DaemonHeartbeat

        self.controller.__exit__(None, None, None)
        uuid = self.controller._daemon_uuid
        beat = self.instance.get_daemon_heartbeats().get(QUEUE_DAEMON)
        if beat is not None and beat.daemon_id == uuid:
            self.instance.add_daemon_heartbeat(DaemonHeartbeat(0.0, QUEUE_DAEMON, uuid, []))
