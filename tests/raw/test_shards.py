"""Shard registry: bounded shards of whole repositories, stable when new repositories arrive."""

from __future__ import annotations

from pathlib import Path

from snowcoder_assets.config import load_config
from snowcoder_assets.raw.shards import discover_shards, needs_ingest
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


def test_needs_ingest_until_done_marker_matches(tmp_path: Path):
    from snowcoder_assets.raw.ingest import ingest_shard

    _repo(tmp_path / "code", "a", 1)
    config = _config(tmp_path)
    (shard,) = discover_shards(config, "src")
    assert needs_ingest(config, shard)
    ingest_shard(config, "src", shard.shard)
    assert not needs_ingest(config, shard)


def test_vanished_repository_retires_its_shard_as_empty(tmp_path: Path):
    from snowcoder_assets.raw.ingest import ingest_shard

    code = tmp_path / "code"
    _repo(code, "a", 3)
    _repo(code, "b", 3)
    config = _config(tmp_path)
    for shard in discover_shards(config, "src"):
        ingest_shard(config, "src", shard.shard)
    import shutil

    shutil.rmtree(code / "b")
    shards = {s.shard: s for s in discover_shards(config, "src")}
    assert shards["00001"].unit_keys == () and needs_ingest(config, shards["00001"])
    assert not needs_ingest(config, shards["00000"])
    assert ingest_shard(config, "src", "00001").files == 0
    again = {s.shard: s for s in discover_shards(config, "src")}  # stays retired, stays done
    assert again["00001"].unit_keys == () and not needs_ingest(config, again["00001"])
    _repo(code, "c", 1)
    assert [s.unit_keys for s in discover_shards(config, "src")][-1] == ("c",)
