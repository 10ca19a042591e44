"""A real `dagster-daemon run` for a test's instance (what `dagster dev` runs beside the UI),
and the GraphQL launch the UI's "Materialize all" sends: an asset backfill of all partitions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.execution.backfill import BulkActionStatus

from snowcoder_assets.orchestration.instance import QUEUE_DAEMON, template_path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""


def write_instance_settings(home: Path, automation: bool) -> None:
    """The project's instance template, with automation on or off for this test."""
    settings = yaml.safe_load(template_path().read_text())
    settings["auto_materialize"] = {"enabled": automation}
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))


@contextlib.contextmanager
def running_daemon(home: Path, config: Path, log: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the project's code location, stopped with its whole group."""
    daemon = Path(sys.executable).with_name("dagster-daemon")
    env = {**os.environ, "DAGSTER_HOME": str(home), "SNOWCODER_CONFIG": str(config)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(daemon), "run", "-m", "snowcoder_assets.definitions"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for_heartbeat(home, process, log)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for_heartbeat(home: Path, process: subprocess.Popen, log: Path) -> None:
    instance = dg.DagsterInstance.from_config(str(home))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        beat = instance.get_daemon_heartbeats().get(QUEUE_DAEMON)
        if beat is not None and time.time() - beat.timestamp < 60:
            return
        time.sleep(1)
    raise AssertionError(
        "the daemon sent no heartbeat:\n" + log.read_text(errors="replace")[-3000:]
    )


def code_location_target():
    """The project's code location, loaded in this process as the webserver loads it."""
    from dagster._core.workspace.load_target import ModuleTarget

    return ModuleTarget(
        module_name="snowcoder_assets.definitions", attribute=None,
        working_directory=str(PROJECT_ROOT), location_name="snowcoder_assets.definitions",
    )  # fmt: skip


def launch_backfill(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> str:
    """What the asset graph's "Materialize all" sends: every selected asset, all partitions."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster_graphql.schema import create_schema

    params = {"assetSelection": [{"path": k.path} for k in keys], "allPartitions": True}
    with WorkspaceProcessContext(instance, code_location_target()) as workspace:
        result = asyncio.run(
            create_schema().execute_async(
                LAUNCH_BACKFILL,
                context_value=workspace.create_request_context(),
                variable_values={"params": params},
            )
        )
    assert not result.errors, result.errors
    answer = result.data["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


def wait_for_backfill(instance: dg.DagsterInstance, backfill_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backfill = instance.get_backfill(backfill_id)
        if backfill.status != BulkActionStatus.REQUESTED:
            return backfill.status.value
        time.sleep(2)
    raise AssertionError(f"backfill {backfill_id} still running after {timeout:.0f}s")
