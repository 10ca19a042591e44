"""Shard registry: bounded shards of whole repositories, stable when new repositories arrive."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from snowcoder_assets.config import load_config
from snowcoder_assets.raw.discovery import discover, discover_and_register
from snowcoder_assets.raw.shards import discover_shards
from tests.corpora import local_dir_source, write_config


def _repo(root: Path, name: str, files: int, size: int = 100) -> None:
    (root / name).mkdir(parents=True)
    for i in range(files):
        (root / name / f"f{i}.py").write_text("x" * size)


def _config(tmp_path: Path, ingest: str = "shard_max_bytes = 1000\nshard_max_files = 5"):
    return load_config(
        write_config(
            tmp_path / "c.toml",
            tmp_path / "data",
            local_dir_source("src", tmp_path / "code"),
            ingest,
        )
    )


def test_shards_pack_whole_repositories_within_bounds(tmp_path: Path):
    code = tmp_path / "code"
    _repo(code, "a", 2)
    _repo(code, "b", 2)
    _repo(code, "c", 2)
    _repo(code, "huge", 9)  # larger than a shard on its own: kept whole, in a shard of its own
    shards = discover_shards(_config(tmp_path), "src")
    assert [s.unit_keys for s in shards] == [("a", "b"), ("c",), ("huge",)]
    assert [s.partition_key for s in shards] == ["src/00000", "src/00001", "src/00002"]
    assert all(s.num_files <= 5 for s in shards if len(s.unit_keys) > 1)


def test_new_repository_gets_a_new_shard_and_old_shards_keep_their_fingerprints(tmp_path: Path):
    code = tmp_path / "code"
    _repo(code, "b", 2)
    _repo(code, "d", 2)
    config = _config(tmp_path)
    before = {s.shard: s for s in discover_shards(config, "src")}
    _repo(code, "a", 1)  # sorts first, but must not reshuffle existing shards
    after = {s.shard: s for s in discover_shards(config, "src")}
    assert set(after) == set(before) | {"00001"}
    assert after["00000"] == before["00000"]
    assert after["00001"].unit_keys == ("a",)


def test_changed_repository_changes_only_its_shard(tmp_path: Path):
    code = tmp_path / "code"
    _repo(code, "a", 3)
    _repo(code, "b", 3)
    config = _config(tmp_path)
    before = {s.shard: s.fingerprint for s in discover_shards(config, "src")}
    (code / "b" / "f0.py").write_text("changed")
    after = {s.shard: s.fingerprint for s in discover_shards(config, "src")}
    assert after["00000"] == before["00000"]
    assert after["00001"] != before["00001"]


def test_discovery_reports_new_and_changed_shards_to_the_instance_once(tmp_path: Path):
    code = tmp_path / "code"
    _repo(code, "a", 3)
    _repo(code, "b", 3)
    config = _config(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    found = discover_and_register(config, instance)
    assert found.new_partitions == ["src/00000", "src/00001"]
    assert found.changed_keys == {"src/00000", "src/00001"}
    assert instance.get_dynamic_partitions("source_shards") == ["src/00000", "src/00001"]
    again = discover(config, instance)  # the instance now holds both fingerprints
    assert again.new_partitions == [] and again.changed == []
    (code / "b" / "f0.py").write_text("changed")
    assert discover(config, instance).changed_keys == {"src/00001"}


def test_vanished_repository_retires_its_shard_as_empty(tmp_path: Path):
    from snowcoder_assets.raw.ingest import ingest_shard

    code = tmp_path / "code"
    _repo(code, "a", 3)
    _repo(code, "b", 3)
    config = _config(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    discover_and_register(config, instance)
    import shutil

    shutil.rmtree(code / "b")
    found = discover_and_register(config, instance)
    shards = {s.shard: s for s in found.shards}
    assert shards["00001"].unit_keys == () and found.changed_keys == {"src/00001"}
    assert ingest_shard(config, "src", "00001").files_in == 0
    again = discover(config, instance)  # stays retired, and nothing to report again
    assert {s.shard: s for s in again.shards}["00001"].unit_keys == () and again.changed == []
    _repo(code, "c", 1)
    assert [s.unit_keys for s in discover_shards(config, "src")][-1] == ("c",)
