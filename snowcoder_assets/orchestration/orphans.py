"""Runs left behind by a killed `snowcoder materialize`, found and marked failed.

Dagster's run monitoring fails a dead run when the run launcher can check its worker's health
(`K8sRunLauncher` can); the `DefaultRunLauncher` of a local instance cannot, so a run whose
client, code server and worker were killed together stays STARTED (or QUEUED) for good: it
holds a run slot of the queue and its steps' pool slots, and the next `snowcoder materialize`
waits behind it forever. Each client tags its runs with its host, pid and process start time;
the next client marks the unfinished runs of a client that is gone as failed, as run
monitoring does (`report_run_failed`), and frees their pool slots, as the monitoring daemon
does after `free_slots_after_run_end_seconds`. Runs launched any other way are not touched.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg

HOST_TAG, PID_TAG, STARTED_TAG = (
    "snowcoder/client_host",
    "snowcoder/client_pid",
    "snowcoder/client_started",
)
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so a
    recycled pid does not pass for the client; None when no such process runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc here: fall back to whether the pid exists at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def client_tags() -> dict[str, str]:
    """Tags that say which process on which host launched a run."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), STARTED_TAG: _start_time(pid) or ""}


def _client_alive(run: dg.DagsterRun) -> bool:
    pid = int(run.tags[PID_TAG])
    started = _start_time(pid)
    if started is None:
        return False
    return started in ("", run.tags.get(STARTED_TAG, ""))


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the unfinished runs whose launching client on this host is gone; their ids."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: socket.gethostname()})
    )
    orphans = [run for run in runs if PID_TAG in run.tags and not _client_alive(run)]
    for run in orphans:
        instance.report_run_failed(
            run,
            message=f"the snowcoder client that launched this run (pid {run.tags[PID_TAG]}) is "
            "gone (killed); marked failed so the next run can take its slots",
        )
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return [run.run_id for run in orphans]
