"""Large tabular inputs become several shards: parquet by row groups, jsonl by line ranges;
the same file always gives the same shards, and a new file never renumbers old ones."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from snowcoder_assets.config import load_config
from snowcoder_assets.raw.ingest import ingest_shard
from snowcoder_assets.raw.shards import discover_shards
from snowcoder_assets.sources import build_source
from snowcoder_assets.sources.tabular import pack_slices
from tests.corpora import write_config


def rows(start: int, count: int) -> list[dict]:
    return [
        {
            "content": f"def f{i}():\n    return {i}\n",
            "max_stars_repo_name": f"octo/r{i % 7}",
            "max_stars_repo_path": f"src/f{i}.py",
            "lang": "Python",
        }
        for i in range(start, start + count)
    ]


def write_parquet(path: Path, table_rows: list[dict], row_group_size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(table_rows), path, row_group_size=row_group_size)


def config_for(tmp_path: Path, kind: str, pattern: str, max_files: int = 100):
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = f'[[sources]]\nname = "t"\nkind = "{kind}"\npath = "{pattern}"\n'
    ingest = f"shard_max_bytes = 1_000_000\nshard_max_files = {max_files}"
    return load_config(write_config(tmp_path / "c.toml", tmp_path / "data", source, ingest))


def read_paths(config, shards) -> list[str]:
    source = build_source(config, "t")
    return [r.path for s in shards for r in source.read(s.unit_keys)]


def test_pack_slices_is_greedy_and_keeps_oversized_items_alone():
    assert pack_slices([(10, 1)] * 5, (25, 100)) == [(0, 1), (2, 3), (4, 4)]
    assert pack_slices([(10, 60), (10, 60), (100, 1)], (50, 100)) == [(0, 0), (1, 1), (2, 2)]
    assert pack_slices([], (1, 1)) == []


def test_a_parquet_file_of_three_row_groups_becomes_three_shards(tmp_path: Path):
    write_parquet(tmp_path / "in" / "a.parquet", rows(0, 300), row_group_size=100)
    config = config_for(tmp_path, "parquet", (tmp_path / "in" / "*.parquet").as_posix())
    shards = discover_shards(config, "t")
    assert [s.unit_keys for s in shards] == [
        ("a.parquet#rg0-0",),
        ("a.parquet#rg1-1",),
        ("a.parquet#rg2-2",),
    ]
    assert [s.num_files for s in shards] == [100, 100, 100]
    assert read_paths(config, shards) == [f"src/f{i}.py" for i in range(300)]  # all, in order
    again = discover_shards(config, "t")
    assert again == shards  # re-discovery: the same shards, fingerprints included

    write_parquet(tmp_path / "in" / "b.parquet", rows(300, 150), row_group_size=100)
    grown = discover_shards(config, "t")
    assert grown[:3] == shards
    assert [s.unit_keys for s in grown[3:]] == [("b.parquet#rg0-0",), ("b.parquet#rg1-1",)]
    assert [s.shard for s in grown] == [f"{i:05d}" for i in range(5)]


def test_a_small_parquet_file_stays_one_unit_named_as_before(tmp_path: Path):
    write_parquet(tmp_path / "in" / "a.parquet", rows(0, 300), row_group_size=100)
    config = config_for(tmp_path, "parquet", (tmp_path / "in" / "*.parquet").as_posix(), 1000)
    assert [s.unit_keys for s in discover_shards(config, "t")] == [("a.parquet",)]


def test_sliced_shards_ingest_like_the_whole_file(tmp_path: Path):
    write_parquet(tmp_path / "in" / "a.parquet", rows(0, 300), row_group_size=100)
    pattern = (tmp_path / "in" / "*.parquet").as_posix()
    sliced = config_for(tmp_path / "s", "parquet", pattern)
    whole = config_for(tmp_path / "w", "parquet", pattern, 1000)
    ids = {}
    for name, config in (("sliced", sliced), ("whole", whole)):
        found = []
        for shard in discover_shards(config, "t"):
            ingest_shard(config, "t", shard.shard, lambda _: None)
            raw = config.data_dir / "raw_files" / "t" / f"{shard.shard}.parquet"
            found += pq.read_table(raw, columns=["doc_id"])["doc_id"].to_pylist()
        ids[name] = sorted(found)
    assert len(ids["sliced"]) == 300 and ids["sliced"] == ids["whole"]


def test_a_jsonl_file_is_cut_at_line_ends_into_byte_ranges(tmp_path: Path):
    path = tmp_path / "in" / "a.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(0, 250)))
    config = config_for(tmp_path, "jsonl", path.as_posix())
    shards = discover_shards(config, "t")
    assert len(shards) == 3 and all(
        k.startswith("a.jsonl#bytes") for s in shards for k in s.unit_keys
    )
    assert read_paths(config, shards) == [f"src/f{i}.py" for i in range(250)]
    assert discover_shards(config, "t") == shards
