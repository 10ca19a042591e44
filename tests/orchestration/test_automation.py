"""Declarative automation, evaluated by Dagster's own evaluator against the instance: a new
repository asks for exactly its shard's partitions (and the global stages that read it), a
changed threshold for `filtered_files` onward and never `file_signals`."""

from __future__ import annotations

import dagster as dg

from snowcoder_assets.config import load_config
from snowcoder_assets.definitions import build_defs
from snowcoder_assets.orchestration.instance import open_instance
from snowcoder_assets.orchestration.materialize import materialize
from snowcoder_assets.raw.discovery import discover_and_register
from tests.orchestration.conftest import PHASE1_SELECTION, add_repo, write_small_config

PHASE1 = dg.AssetSelection.groups("raw", "phase1")
PARTITIONED = ["raw_files", "file_signals", "filtered_files", "deduped_files",
               "decontaminated_files"]  # fmt: skip


def _requested(result) -> dict[str, set]:
    out = {}
    for item in result.results:
        parts = result.get_requested_partitions(item.key)
        if parts:
            out[item.key.to_user_string()] = set(parts)
    return out


def _tick(defs, instance, cursor):
    return dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=PHASE1, cursor=cursor
    )


def _follow(config, defs, instance, cursor) -> tuple[dict[str, set], object]:
    """Tick, materialize exactly what the tick asked for, and again until it asks nothing:
    what a running automation sensor does. Returns every request and the last cursor."""
    seen: dict[str, set] = {}
    for _ in range(8):
        tick = _tick(defs, instance, cursor)
        cursor, asked = tick.cursor, _requested(tick)
        if not asked:
            return seen, cursor
        for key, parts in asked.items():
            seen.setdefault(key, set()).update(parts)
        selection = " or ".join(f"key:{k}" for k in asked)
        assert materialize(config, selection, echo=lambda _: None).ok
    raise AssertionError(f"automation kept asking: {seen}")


def test_new_repository_then_threshold_change(tmp_path, small_corpus):
    config = load_config(write_small_config(tmp_path))
    assert materialize(config, PHASE1_SELECTION, echo=lambda _: None).ok
    instance, defs = open_instance(config), build_defs(config)
    tick = _tick(defs, instance, None)
    assert _requested(tick) == {}  # built and unchanged: nothing to do

    add_repo(small_corpus, "delta", ["heapq"])
    (new,) = discover_and_register(config, instance).new_partitions
    first = _requested(_tick(defs, instance, tick.cursor))
    assert first == {"raw_files": {new}, "file_signals": {new}, "filtered_files": {new}}
    requested, cursor = _follow(config, defs, instance, tick.cursor)
    assert requested == {  # the new shard's partitions, and the global stages that read it once
        **{name: {new} for name in PARTITIONED},
        "dup_clusters": {None},
        "phase1_corpus": {None},
    }

    changed = load_config(write_small_config(tmp_path, extra="[filters]\nmax_line_length = 300\n"))
    requested, _ = _follow(changed, build_defs(changed), instance, cursor)
    everything = set(instance.get_dynamic_partitions("source_shards"))
    onward = {"filtered_files", "dup_clusters", "deduped_files", "decontaminated_files",
              "phase1_corpus"}  # fmt: skip
    assert requested["filtered_files"] == everything  # the new code version: every partition
    assert set(requested) <= onward  # never raw_files or file_signals; downstream as it updates
