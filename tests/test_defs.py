"""The graph contract: asset keys, groups, partitions, checks; and `dg check defs` works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from snowcoder_assets.definitions import defs

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_defs_contract():
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    assert {k: a.group_name for k, a in assets.items()} == {"raw_files": "raw"}
    assert assets["raw_files"].partitions_def.name == "source_shards"
    checks = {c.name for c in graph.asset_check_keys}
    assert checks == {"every_file_decided", "unique_doc_id"}
    assert [s.name for s in defs.sensors] == ["source_shard_sensor"]


def test_dg_check_defs_passes(dagster_home):
    dg_cli = Path(sys.executable).with_name("dg")
    result = subprocess.run(
        [str(dg_cli), "check", "defs"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
