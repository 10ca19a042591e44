"""raw_files through the Dagster instance on hostile corpora: nothing lost, incremental, and the
discovery sensor reports exactly the new and changed shards."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from snowcoder_assets.config import load_config
from snowcoder_assets.layout import lineage_db_path, raw_shard_path
from snowcoder_assets.orchestration.instance import open_instance
from snowcoder_assets.orchestration.materialize import materialize
from snowcoder_assets.orchestration.records import latest_data_versions
from snowcoder_assets.raw.partitions import SOURCE_FILES
from snowcoder_assets.raw.sensors import source_shard_sensor
from snowcoder_assets.raw.shards import discover_all
from snowcoder_assets.resources import SnowcoderConfigResource
from tests.corpora import count_entries

RAW = dg.AssetKey("raw_files")


def _status(data_dir: Path) -> dict[str, tuple[bool, str | None]]:
    with duckdb.connect(str(lineage_db_path(data_dir)), read_only=True) as con:
        rows = con.execute("SELECT repo, path, kept, reason FROM file_status").fetchall()
    return {f"{repo}/{path}": (kept, reason) for repo, path, kept, reason in rows}


def _materialized_partitions(instance: dg.DagsterInstance) -> list[str]:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=RAW), limit=1000)
    return sorted(r.partition_key for r in records.records)


def _quiet(config, selection: str = "raw_files"):
    outcome = materialize(config, selection, echo=lambda _: None)
    assert outcome.ok
    return outcome


def test_raw_files_records_every_file_on_disk_with_its_reason(hostile_config):
    config_path, folder = hostile_config
    config = load_config(config_path)
    lines: list[str] = []
    assert materialize(config, "raw_files", echo=lines.append).ok, lines
    status = _status(config.data_dir)
    assert len(status) == count_entries(folder)
    from tests.corpora import HOSTILE_EXPECTED

    assert {k: v[1] for k, v in status.items()} == HOSTILE_EXPECTED
    assert all(kept == (reason is None) for kept, reason in status.values())
    raw = pq.read_table(raw_shard_path(config.data_dir, "hostile", "00000")).to_pylist()
    by_path = {f"{r['repo']}/{r['path']}": r for r in raw}
    assert by_path["good/latin1.py"]["content"] == "# café crème\nx = 1\n"
    assert by_path["good/latin1.py"]["encoding"] == "cp1252"
    assert by_path["good/utf16.py"]["content"] == "print('utf16')\n"
    assert "secret" not in " ".join(r["content"] for r in raw).lower()


def test_lineage_db_opens_from_another_directory(hostile_config, tmp_path, monkeypatch):
    config = load_config(hostile_config[0])
    _quiet(config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with duckdb.connect(str(lineage_db_path(config.data_dir)), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM file_status").fetchone()[0] > 0
        tables = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert {
        "files",
        "decisions",
        "file_status",
        "dup_clusters",
        "contamination",
        "quality",
        "synthetic",
    } <= tables


def test_new_repository_processes_only_its_new_shard(hostile_config):
    config_path, folder = hostile_config
    config = load_config(config_path)
    _quiet(config)
    instance = open_instance(config)
    first = _materialized_partitions(instance)
    old_shard = raw_shard_path(config.data_dir, "hostile", "00000")
    old_mtime = old_shard.stat().st_mtime_ns

    (folder / "newrepo").mkdir()
    (folder / "newrepo" / "new.py").write_text("NEW = 1\n")
    lines: list[str] = []
    outcome = materialize(config, "raw_files", echo=lines.append)
    assert outcome.ok and len(outcome.runs) == 1, lines
    assert any(
        line.startswith("plan: 1 asset partitions in 1 runs: raw_files (1 missing)")
        for line in lines
    ), lines
    assert _materialized_partitions(instance) == sorted([*first, "hostile/00001"])
    assert old_shard.stat().st_mtime_ns == old_mtime
    assert _status(config.data_dir)["newrepo/new.py"] == (True, None)
    assert len(_status(config.data_dir)) == count_entries(folder)


def test_changed_repository_is_ingested_again_and_nothing_else_runs(hostile_config):
    config_path, folder = hostile_config
    config = load_config(config_path)
    _quiet(config)
    (folder / "good" / "main.py").unlink()
    lines: list[str] = []
    assert materialize(config, "raw_files", echo=lines.append).ok
    assert any("raw_files (1 new upstream data)" in line for line in lines), lines
    assert "good/main.py" not in _status(config.data_dir)
    assert _quiet(config).runs == []  # unchanged now: no run at all


def test_sensor_registers_new_shards_and_reports_new_and_changed_ones_once(hostile_config):
    config_path, folder = hostile_config
    config = load_config(config_path)
    instance = open_instance(config)
    resources = {"snowcoder": SnowcoderConfigResource(config_path=str(config_path))}

    def evaluate() -> tuple[dg.SensorResult, list[str]]:
        """One tick; the partitions of the `source_files` events it recorded."""
        before = _source_files_events(instance)
        context = dg.build_sensor_context(instance=instance, resources=resources)
        result = source_shard_sensor(context)
        return result, sorted(_source_files_events(instance)[len(before) :])

    result, reported = evaluate()
    assert result.run_requests == []  # automation (or the CLI, or the UI) runs raw_files
    assert instance.get_dynamic_partitions("source_shards") == ["hostile/00000"]
    assert reported == ["hostile/00000"]
    assert evaluate()[1] == []
    (folder / "another").mkdir()
    (folder / "another" / "x.go").write_text("package x\n")
    (folder / "good" / "main.py").write_text("def main():\n    return 43\n")
    assert evaluate()[1] == ["hostile/00000", "hostile/00001"]
    assert instance.get_dynamic_partitions("source_shards") == ["hostile/00000", "hostile/00001"]
    versions = latest_data_versions(instance, SOURCE_FILES)
    assert versions == {s.partition_key: s.fingerprint for s in discover_all(config)}


def _source_files_events(instance: dg.DagsterInstance) -> list[str]:
    """Partitions of every recorded `source_files` materialization, oldest first."""
    records = instance.fetch_materializations(SOURCE_FILES, limit=10_000, ascending=True)
    return [r.partition_key for r in records.records]


def test_killed_ingest_leaves_no_partial_files_and_reruns(
    hostile_config, monkeypatch: pytest.MonkeyPatch
):
    from snowcoder_assets.raw import ingest as ingest_module
    from snowcoder_assets.raw.shards import discover_shards

    config = load_config(hostile_config[0])
    (shard,) = discover_shards(config, "hostile")
    calls = {"n": 0}
    real_row = ingest_module._row

    def dying_row(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # the process is killed mid-shard
        return real_row(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_row", dying_row)
    with pytest.raises(KeyboardInterrupt):
        ingest_module.ingest_shard(config, "hostile", shard.shard)
    leftovers = [p for p in config.data_dir.rglob("*") if p.is_file()]
    assert all(p.suffix != ".tmp" for p in leftovers), leftovers
    assert not raw_shard_path(config.data_dir, "hostile", shard.shard).exists()
    monkeypatch.setattr(ingest_module, "_row", real_row)
    stats = ingest_module.ingest_shard(config, "hostile", shard.shard)
    assert stats.files_in == count_entries(hostile_config[1])


def test_moved_data_dir_heals_on_next_run(hostile_config, tmp_path):
    from snowcoder_assets.lineage.store import refresh_views

    config = load_config(hostile_config[0])
    _quiet(config)
    moved = tmp_path / "moved"
    shutil.move(config.data_dir, moved)
    refresh_views(moved)
    with duckdb.connect(str(moved / "lineage.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM files").fetchone()[0] == count_entries(
            hostile_config[1]
        )
    assert os.path.isdir(moved / "lineage")
