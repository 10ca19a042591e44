"""Submitting runs to the instance the way the UI does, and following them.

`InstanceClient` loads the code location (a gRPC code server, as `dagster dev` runs it) and
sends the UI's own GraphQL mutation, `launchPipelineExecution`, in-process: the run is created
and handed to the instance's run coordinator, which queues it; the instance's run launcher
starts it. When no daemon is dequeuing this instance (no `dagster dev` running), the client
runs Dagster's queued-run daemon, and only that one, for as long as it is open: the queue's
`max_concurrent_runs` decides how many runs work at once. Sensors and automation stay with
`dagster dev` / `dagster-daemon`. A daemon counts as running when its heartbeat is recent; the
client's own daemon marks its heartbeat stale when it stops, so the next client does not wait
for a daemon that is gone (a killed client's heartbeat ages out within a minute).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from snowcoder_assets.config import project_root
from snowcoder_assets.orchestration.instance import QUEUE_DAEMON, queue_daemon_running
from snowcoder_assets.orchestration.plan import RunSpec

LOCATION = "snowcoder_assets.definitions"  # what `dagster dev -m <module>` names it
REPOSITORY = "__repository__"
ASSET_JOB = "__ASSET_JOB"
PARTITION_TAG = "dagster/partition"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
CLIENT_TAG = "snowcoder/launched_by"
# Step logs stay in the run's event log (the UI shows them, the client echoes the INFO ones);
# the run worker's console, which is this terminal, gets warnings only.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConflict { message }
    ... on PipelineNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PipelineConfigValidationInvalid { errors { message } }
  }
}
"""


class LaunchError(RuntimeError):
    """The instance refused a run (the message is Dagster's)."""


@dataclass
class RunEvents:
    """New log lines and failures of one run since the last poll."""

    messages: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_tags(spec: RunSpec, client: str) -> dict[str, str]:
    tags = {CLIENT_TAG: client}
    if spec.partitions and len(spec.partitions) == 1:
        tags[PARTITION_TAG] = spec.partitions[0]
    elif spec.partitions:
        tags[RANGE_START], tags[RANGE_END] = spec.partitions[0], spec.partitions[-1]
    return tags


class InstanceClient:
    """Open: a code location loaded for the instance (and the queue daemon when needed)."""

    def __init__(self, instance: dg.DagsterInstance, check_keys: Callable) -> None:
        self.instance, self._check_keys = instance, check_keys
        self.log_path = Path(instance.root_directory or ".") / "logs" / "snowcoder-code-server.log"
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
        from dagster._core.workspace.load_target import ModuleTarget

        for name in ("dagster.code_server", "dagster.daemon", "dagster"):
            logging.getLogger(name).setLevel(logging.WARNING)
        target = ModuleTarget(
            module_name=LOCATION,
            attribute=None,
            working_directory=str(project_root()),
            location_name=LOCATION,
        )
        with _output_to(self.log_path):  # the code server and the runs it starts write there
            self.workspace = self._stack.enter_context(
                WorkspaceProcessContext(self.instance, target, code_server_log_level="WARNING")
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
        """Create the run through GraphQL (as the UI's Materialize does) and queue it."""
        from dagster_graphql.schema import create_schema

        context = self.workspace.create_request_context()
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "pipelineName": ASSET_JOB,
                "assetSelection": [{"path": k.path} for k in spec.keys],
                "assetCheckSelection": [
                    {"assetKey": {"path": c.asset_key.path}, "name": c.name}
                    for c in self._check_keys(spec.keys)
                ],
            },
            "executionMetadata": {
                "tags": [{"key": k, "value": v} for k, v in run_tags(spec, client).items()]
            },
            "runConfigData": RUN_CONFIG,
        }
        result = asyncio.run(
            _schema(create_schema).execute_async(
                LAUNCH, context_value=context, variable_values={"params": params}
            )
        )
        if result.errors:
            raise LaunchError(str(result.errors[0]))
        answer = result.data["launchPipelineExecution"]
        if answer["__typename"] != "LaunchRunSuccess":
            detail = answer.get("message") or answer.get("errors") or answer["__typename"]
            raise LaunchError(f"{spec.label()}: {detail}")
        return answer["run"]["runId"]

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


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Processes started inside inherit stdout/stderr pointing at `path`, not the terminal:
    what runs print lands in this log and in Dagster's compute logs (the UI shows both)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


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


_SCHEMA = None


def _schema(create_schema):
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = create_schema()
    return _SCHEMA


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
