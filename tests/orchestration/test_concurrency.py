"""A UI backfill and CLI runs of the same selection at the same time end with the same bytes as
one CLI run: global writers share a pool of one, every file is written atomically, and the
stages are deterministic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from snowcoder_assets.config import load_config
from snowcoder_assets.definitions import build_defs
from snowcoder_assets.orchestration.instance import open_instance
from snowcoder_assets.orchestration.materialize import materialize, resolve_selection
from snowcoder_assets.raw.discovery import discover_and_register
from tests.orchestration.conftest import PHASE1_SELECTION, write_small_config
from tests.orchestration.daemon import (
    launch_backfill,
    running_daemon,
    wait_for_backfill,
    write_instance_settings,
)

SKIP = ("dagster_home", "lineage.duckdb")  # the instance itself; views with absolute paths


def _files(data_dir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(data_dir).as_posix(): p.read_bytes()
        for p in sorted(data_dir.rglob("*"))
        if p.is_file() and p.relative_to(data_dir).parts[0] not in SKIP and ".tmp" not in p.name
    }


def _cli(config: Path) -> subprocess.Popen:
    script = Path(sys.executable).with_name("snowcoder")
    return subprocess.Popen(
        [str(script), "--config", str(config), "materialize", "--select", PHASE1_SELECTION],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
    )  # fmt: skip


@pytest.mark.slow
def test_overlapping_materializations_end_with_the_bytes_of_one(tmp_path, small_corpus):
    single = load_config(write_small_config(tmp_path, "single"))
    assert materialize(single, PHASE1_SELECTION, echo=lambda _: None).ok

    path = write_small_config(tmp_path, "shared")
    shared = load_config(path)
    home = shared.data_dir / "dagster_home"
    write_instance_settings(home, automation=False)  # only the launches below act
    instance = open_instance(shared)
    discover_and_register(shared, instance)  # as `snowcoder ui` does before the UI opens
    keys = sorted(resolve_selection(build_defs(shared), PHASE1_SELECTION))
    with running_daemon(home, path, tmp_path / "daemon.log"):
        backfill = launch_backfill(instance, keys)
        clis = [_cli(path), _cli(path)]
        outputs = [cli.communicate(timeout=600)[0] for cli in clis]
        assert all(cli.returncode == 0 for cli in clis), outputs
        assert wait_for_backfill(instance, backfill, timeout=600) == "COMPLETED_SUCCESS"
    assert _files(shared.data_dir) == _files(single.data_dir)
