"""Runs of a killed client are marked failed by the next one; others are left alone."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
from dagster._core.test_utils import create_run_for_test, instance_for_test

from snowcoder_assets.orchestration.orphans import (
    PID_TAG,
    STARTED_TAG,
    client_tags,
    fail_orphaned_runs,
)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_unfinished_runs_of_a_gone_client_are_failed():
    with instance_for_test() as instance:
        mine = client_tags()
        gone = {**mine, PID_TAG: str(_dead_pid())}
        recycled = {**mine, STARTED_TAG: "1"}  # this pid, but another process's start time

        def run(tags: dict, status: dg.DagsterRunStatus) -> str:
            return create_run_for_test(instance, job_name="j", tags=tags, status=status).run_id

        orphan = run(gone, dg.DagsterRunStatus.STARTED)
        starting_orphan = run(gone, dg.DagsterRunStatus.STARTING)
        reused_pid = run(recycled, dg.DagsterRunStatus.STARTED)
        finished = run(gone, dg.DagsterRunStatus.SUCCESS)
        alive = run(mine, dg.DagsterRunStatus.STARTED)
        from_the_ui = run({}, dg.DagsterRunStatus.STARTED)

        failed = fail_orphaned_runs(instance)

        assert sorted(failed) == sorted([orphan, starting_orphan, reused_pid])
        status = {r.run_id: r.status for r in instance.get_runs()}
        assert {status[i] for i in failed} == {dg.DagsterRunStatus.FAILURE}
        assert status[finished] == dg.DagsterRunStatus.SUCCESS
        assert status[alive] == status[from_the_ui] == dg.DagsterRunStatus.STARTED
        assert fail_orphaned_runs(instance) == []
