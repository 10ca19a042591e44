"""One instance per data_dir; an unchanged re-run launches nothing; a wiped or edited output
file is noticed and rebuilt rather than trusted."""

from __future__ import annotations

import pytest

from snowcoder_assets.config import load_config
from snowcoder_assets.layout import corpus_shard_path, instance_dir, stage_path
from snowcoder_assets.orchestration.instance import InstanceMismatch, open_instance
from snowcoder_assets.orchestration.materialize import materialize
from tests.corpora import local_dir_source, write_config
from tests.orchestration.conftest import PHASE1_SELECTION, add_repo, write_small_config


def _other_config(tmp_path):
    add_repo(tmp_path / "other_code", "solo", ["heapq"])
    return load_config(
        write_config(
            tmp_path / "other.toml",
            tmp_path / "other",
            local_dir_source("other", tmp_path / "other_code"),
        )
    )


def test_two_configurations_keep_their_own_partitions_and_runs(tmp_path, small_corpus):
    first = load_config(write_small_config(tmp_path))
    second = _other_config(tmp_path)
    ran_first = materialize(first, "raw_files", echo=lambda _: None)
    ran_second = materialize(second, "raw_files", echo=lambda _: None)
    assert ran_first.ok and ran_second.ok
    a, b = open_instance(first), open_instance(second)
    assert a.root_directory == str(instance_dir(first.data_dir).resolve())
    assert b.root_directory == str(instance_dir(second.data_dir).resolve())
    assert a.get_dynamic_partitions("source_shards") == [
        "small/00000",
        "small/00001",
        "small/00002",
    ]
    assert b.get_dynamic_partitions("source_shards") == ["other/00000"]
    assert {r.run_id for r in a.get_runs()} == set(ran_first.runs)
    assert {r.run_id for r in b.get_runs()} == set(ran_second.runs)


def test_a_shared_dagster_home_refuses_a_second_data_dir(tmp_path, small_corpus, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "shared_home"))
    open_instance(load_config(write_small_config(tmp_path)))
    with pytest.raises(InstanceMismatch, match="records the runs of data_dir"):
        open_instance(_other_config(tmp_path))


def test_unchanged_rerun_launches_nothing_and_wiped_files_are_rebuilt(tmp_path, small_corpus):
    config = load_config(write_small_config(tmp_path))
    assert materialize(config, PHASE1_SELECTION, echo=lambda _: None).ok
    lines: list[str] = []
    again = materialize(config, PHASE1_SELECTION, echo=lines.append)
    assert again.ok and again.runs == [] and "up to date: nothing to run" in lines

    filtered = stage_path(config.data_dir, "filtered_files", "small", "00001")
    filtered.unlink()  # wiped
    shard = corpus_shard_path(config.data_dir, "small", "00000")
    original = shard.read_bytes()
    shard.write_bytes(original[:-10])  # edited
    lines.clear()
    healed = materialize(config, PHASE1_SELECTION, echo=lines.append)
    plan = next(line for line in lines if line.startswith("plan:"))
    assert healed.ok, lines
    assert "filtered_files (1 changed on disk)" in plan and "phase1_corpus (1 changed" in plan
    assert filtered.is_file() and shard.read_bytes() == original
    assert materialize(config, PHASE1_SELECTION, echo=lambda _: None).runs == []
