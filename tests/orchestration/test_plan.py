"""The plan on a fresh instance: everything missing, grouped into few runs that respect the
graph; and the batching of partitions into contiguous ranges."""

from __future__ import annotations

from snowcoder_assets.config import load_config
from snowcoder_assets.definitions import build_defs
from snowcoder_assets.orchestration.instance import open_instance
from snowcoder_assets.orchestration.plan import _ancestors, _batches, make_plan
from snowcoder_assets.raw.discovery import config_partitions, discover_and_register
from tests.orchestration.conftest import write_small_config


def test_batches_are_contiguous_bounded_and_fill_the_run_slots():
    order = [f"s/{i}" for i in range(10)]
    assert _batches(order, order, per_run=8, max_runs=2) == [tuple(order[:5]), tuple(order[5:])]
    assert _batches(order, order, per_run=3, max_runs=1) == [
        tuple(order[0:3]), tuple(order[3:6]), tuple(order[6:9]), tuple(order[9:])
    ]  # fmt: skip
    assert _batches(["s/1", "s/2", "s/7"], order, per_run=8, max_runs=1) == [
        ("s/1", "s/2"), ("s/7",)
    ]  # fmt: skip


def test_a_fresh_plan_runs_the_whole_graph_in_few_runs_in_graph_order(tmp_path, small_corpus):
    config = load_config(write_small_config(tmp_path))
    instance = open_instance(config)
    discover_and_register(config, instance)
    defs = build_defs(config)
    graph = defs.resolve_asset_graph()
    everything = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    plan = make_plan(
        defs, instance, everything, config_partitions(instance, config), config.data_dir, 2
    )
    assert {w.reason for w in plan.work} == {"missing"} and not plan.blocked
    runs = [([k.to_user_string() for k in r.keys], r.partitions, r.after) for r in plan.runs]
    per_file = ["raw_files", "file_signals", "filtered_files"]
    assert runs[:2] == [
        (per_file, ["small/00000", "small/00001"], set()),
        (per_file, ["small/00002"], set()),
    ]
    assert runs[2] == (["dup_clusters"], None, {0, 1})
    assert [r[0] for r in runs[3:5]] == [["deduped_files", "decontaminated_files"]] * 2
    last = runs[-1][0]  # the rest in one run, scoring (a pool of one) over every partition
    assert last[0] == "phase1_corpus" and "quality_scores" in last and last[-1] == "hub_model"
    assert plan.runs[-1].partitions == ["small/00000", "small/00001", "small/00002"]
    assert len(plan.runs) == 6
    for i, run in enumerate(plan.runs):  # every parent's run (same partitions) comes first
        for key in run.keys:
            for parent in graph.get(key).parent_keys:
                for j, other in enumerate(plan.runs):
                    overlap = (
                        not run.partitions
                        or not other.partitions
                        or (set(run.partitions) & set(other.partitions))
                    )
                    if j != i and parent in other.keys and overlap:
                        assert j in _ancestors(plan.runs, i), (key, parent, i, j)
