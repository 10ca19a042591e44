"""The graph contract: asset keys, groups, partitions, checks; and `dg check defs` works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from snowcoder_assets.definitions import defs

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_defs_contract():
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    assert {k: a.group_name for k, a in assets.items()} == {
        "source_files": "raw",
        "raw_files": "raw",
        "file_signals": "phase1",
        "filtered_files": "phase1",
        "dup_clusters": "phase1",
        "dedup_decisions": "phase1",
        "deduped_files": "phase1",
        "decontaminated_files": "phase1",
        "phase1_corpus": "phase1",
        "tokenizer": "tokens",
        "annotator_training_set": "phase2",
        "quality_annotator": "phase2",
        "quality_scores": "phase2",
        "topk_corpus": "phase2",
        "synthetic_seeds": "phase3",
        "synthetic_generator": "phase3",
        "synthetic_corpus": "phase3",
        "packed_shards": "tokens",
        "phase_manifest": "tokens",
        "checkpoints": "training",
        "evaluation": "evaluation",
        "hub_phase1_dataset": "hub",
        "hub_phase2_dataset": "hub",
        "hub_phase3_dataset": "hub",
        "hub_model": "hub",
    }
    partitioned = {k for k, a in assets.items() if a.partitions_def is not None}
    assert partitioned == {
        "source_files",
        "raw_files",
        "file_signals",
        "filtered_files",
        "dedup_decisions",
        "deduped_files",
        "decontaminated_files",
        "quality_scores",
    }
    assert all(assets[k].partitions_def.name == "source_shards" for k in partitioned)
    assert {k for k, a in assets.items() if a.is_external} == {"source_files", "dedup_decisions"}
    deps = {k: sorted(p.to_user_string() for p in a.parent_keys) for k, a in assets.items()}
    assert deps["raw_files"] == ["source_files"]
    assert deps["dedup_decisions"] == ["dup_clusters"]
    assert deps["deduped_files"] == ["dedup_decisions", "dup_clusters", "filtered_files"]
    assert deps["phase1_corpus"] == ["decontaminated_files"]
    assert deps["tokenizer"] == ["phase1_corpus"]
    assert deps["quality_scores"] == ["decontaminated_files", "quality_annotator", "tokenizer"]
    assert deps["topk_corpus"] == ["quality_scores"]
    assert deps["synthetic_seeds"] == ["tokenizer", "topk_corpus"]
    assert deps["synthetic_corpus"] == [
        "decontaminated_files", "synthetic_generator", "synthetic_seeds"
    ]  # fmt: skip
    assert deps["packed_shards"] == [
        "phase1_corpus", "synthetic_corpus", "tokenizer", "topk_corpus"
    ]  # fmt: skip
    assert deps["checkpoints"] == ["phase_manifest"]
    assert deps["evaluation"] == ["checkpoints"]
    assert deps["hub_model"] == ["checkpoints", "evaluation"]
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("raw_files", "every_file_decided") in checks
    assert {name for key, name in checks if key == "phase1_corpus"} == {
        "every_file_has_status",
        "unique_doc_id",
        "no_exact_duplicates",
        "no_benchmark_ngrams",
    }
    assert {name for key, name in checks if key == "evaluation"} == {
        "every_task_executed",
        "harness_self_test",
    }
    assert sorted(s.name for s in defs.sensors) == ["snowcoder_automation", "source_shard_sensor"]
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in defs.sensors)


def test_every_materializable_asset_has_a_code_version_automation_and_pool_policy():
    graph = defs.resolve_asset_graph()
    nodes = {k.to_user_string(): graph.get(k) for k in graph.get_all_asset_keys()}
    runnable = {k: n for k, n in nodes.items() if n.is_materializable}
    assert all(n.code_version for n in runnable.values())
    manual = {k for k, n in runnable.items() if n.automation_condition is None}
    assert manual == {
        "hub_phase1_dataset", "hub_phase2_dataset", "hub_phase3_dataset", "hub_model"
    }  # fmt: skip
    on_missing = {
        k for k, n in runnable.items() if n.automation_condition and "on_missing" in
        str(n.automation_condition.get_label() or "")
    }  # fmt: skip
    assert on_missing == {
        "tokenizer", "quality_annotator", "quality_scores", "checkpoints",
        "synthetic_generator", "synthetic_corpus", "evaluation",
    }  # fmt: skip
    pools = {k: defs.get_assets_def(k).op.pool for k in runnable}
    assert {k for k, p in pools.items() if p == "gpu"} == {
        "quality_annotator", "quality_scores", "checkpoints", "synthetic_generator",
        "synthetic_corpus", "evaluation",
    }  # fmt: skip
    assert pools["dup_clusters"] == pools["phase1_corpus"] == "global_writers"
    assert pools["raw_files"] is None  # per-partition stages run side by side


def test_code_versions_follow_the_configuration_section_an_asset_reads(tmp_path):
    from snowcoder_assets.config import load_config
    from snowcoder_assets.definitions import code_versions
    from tests.corpora import local_dir_source, write_config

    (tmp_path / "code").mkdir()
    base = write_config(
        tmp_path / "a.toml", tmp_path / "d", local_dir_source("s", tmp_path / "code")
    )
    changed = tmp_path / "b.toml"
    changed.write_text(base.read_text() + "[filters]\nmax_line_length = 500\n")
    before, after = code_versions(load_config(base)), code_versions(load_config(changed))
    # synthetic_corpus applies the same thresholds to the synthetic files
    assert {k for k in before if before[k] != after[k]} == {"filtered_files", "synthetic_corpus"}


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
