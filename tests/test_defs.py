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
    assert {k: a.group_name for k, a in assets.items()} == {
        "raw_files": "raw",
        "file_signals": "phase1",
        "filtered_files": "phase1",
        "dup_clusters": "phase1",
        "deduped_files": "phase1",
        "decontaminated_files": "phase1",
        "phase1_corpus": "phase1",
        "tokenizer": "tokens",
        "annotator_training_set": "phase2",
        "quality_annotator": "phase2",
        "quality_scores": "phase2",
        "topk_corpus": "phase2",
        "packed_shards": "tokens",
        "phase_manifest": "tokens",
        "checkpoints": "training",
        "hub_phase1_dataset": "hub",
        "hub_phase2_dataset": "hub",
        "hub_model": "hub",
    }
    partitioned = {k for k, a in assets.items() if a.partitions_def is not None}
    assert partitioned == {
        "raw_files",
        "file_signals",
        "filtered_files",
        "deduped_files",
        "decontaminated_files",
    }
    assert all(assets[k].partitions_def.name == "source_shards" for k in partitioned)
    deps = {k: sorted(p.to_user_string() for p in a.parent_keys) for k, a in assets.items()}
    assert deps["deduped_files"] == ["dup_clusters", "filtered_files"]
    assert deps["phase1_corpus"] == ["decontaminated_files"]
    assert deps["tokenizer"] == ["phase1_corpus"]
    assert deps["quality_scores"] == ["decontaminated_files", "quality_annotator", "tokenizer"]
    assert deps["topk_corpus"] == ["quality_scores"]
    assert deps["packed_shards"] == ["phase1_corpus", "tokenizer", "topk_corpus"]
    assert deps["checkpoints"] == ["phase_manifest"]
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("raw_files", "every_file_decided") in checks
    assert {name for key, name in checks if key == "phase1_corpus"} == {
        "every_file_has_status",
        "unique_doc_id",
        "no_exact_duplicates",
        "no_benchmark_ngrams",
    }
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
