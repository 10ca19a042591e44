"""The UI's "Materialize all" on a fresh instance: partitions already registered (as `snowcoder
ui` does), nothing typed, the daemon running: every asset materializes, the hub assets write
their dry runs, and the outputs are the bytes `snowcoder materialize` writes."""

from __future__ import annotations

import dagster as dg
import pytest

from snowcoder_assets.config import load_config
from snowcoder_assets.definitions import build_defs
from snowcoder_assets.layout import hub_dry_run_dir
from snowcoder_assets.orchestration.instance import open_instance
from snowcoder_assets.orchestration.materialize import materialize
from snowcoder_assets.raw.discovery import config_partitions, discover_and_register
from tests.orchestration.conftest import write_small_config
from tests.orchestration.daemon import (
    launch_backfill,
    running_daemon,
    wait_for_backfill,
    write_instance_settings,
)
from tests.orchestration.test_concurrency import _files
from tests.phase2.test_pipeline import PHASE2_SETTINGS

# Written with timings or wall-clock facts (seconds, tokens/s) inside: the same run twice
# differs there, whatever launched it.
TIMED = ("annotator.json", "metrics.jsonl", "trainer_state.json", "trainer_state.pt", "README.md")
TIMED_TABLES = ("lineage/evaluation/",)  # each sample's execution seconds


@pytest.mark.slow
def test_materialize_all_from_the_ui_builds_the_graph_like_the_cli(tmp_path, small_corpus):
    cli = load_config(write_small_config(tmp_path, "cli", PHASE2_SETTINGS))
    assert materialize(cli, "*", echo=lambda _: None).ok

    path = write_small_config(tmp_path, "ui", PHASE2_SETTINGS)
    config = load_config(path)
    home = config.data_dir / "dagster_home"
    write_instance_settings(home, automation=True)  # as shipped: automation on
    instance = open_instance(config)
    discover_and_register(config, instance)
    graph = build_defs(config).resolve_asset_graph()
    everything = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    with running_daemon(home, path, tmp_path / "daemon.log"):
        backfill = launch_backfill(instance, everything)
        assert wait_for_backfill(instance, backfill, timeout=1200) == "COMPLETED_SUCCESS"

    partitions = set(config_partitions(instance, config))
    for key in everything:
        if graph.get(key).is_partitioned:
            assert instance.get_materialized_partitions(key) == partitions, key
        else:
            assert instance.get_latest_materialization_event(key) is not None, key
    for artifact in ("phase1", "phase2", "model"):
        assert (hub_dry_run_dir(config.data_dir, artifact) / "README.md").is_file()
    note = instance.get_latest_materialization_event(dg.AssetKey("hub_model"))
    assert "dry run" in note.asset_materialization.metadata["note"].value
    ui, ran = _files(config.data_dir), _files(cli.data_dir)
    assert ui.keys() == ran.keys()
    here, there = str(config.data_dir).encode(), str(cli.data_dir).encode()  # absolute paths
    differ = sorted(k for k in ui if ui[k].replace(here, there) != ran[k])
    assert [k for k in differ if not k.endswith(TIMED) and not k.startswith(TIMED_TABLES)] == []
    assert "evaluation/results.json" in ui  # the verdicts, without timings: equal
