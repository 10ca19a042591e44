from __future__ import annotations

import hashlib
from pathlib import Path

import datasets
import pytest
import yaml

from snowcoder_assets.hub import LayoutSpec, dataset_layout
from snowcoder_assets.hub.cards import size_category
from snowcoder_assets.hub.layout import shard_bounds
from tests.hub.conftest import LANGS


def front_matter(readme: Path) -> dict:
    _, header, _ = readme.read_text().split("---\n", 2)
    return yaml.safe_load(header)


def digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_dataset_layout_writes_configs_shards_and_card(corpus_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    spec = LayoutSpec("SnowCoder phase 1", repo_id="me/p1", shard_rows=3)
    funnel = [{"stage": "raw_files", "files": 20, "kept": 13, "dropped": 7}]
    dataset_layout(
        corpus_dir, out, spec, extra={"config_hash": "abc123"}, tables={"Per-stage funnel": funnel}
    )
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "data/default/train-00000-of-00005.parquet" in files
    assert "data/python/train-00002-of-00003.parquet" in files
    assert "data/markdown/train-00000-of-00001.parquet" in files
    meta = front_matter(out / "README.md")
    assert meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["pretty_name"] == "SnowCoder phase 1"
    assert {"license", "tags"} <= set(meta)
    configs = {c["config_name"]: c["data_files"] for c in meta["configs"]}
    assert set(configs) == {"default", *LANGS}
    assert configs["java"] == [{"split": "train", "path": "data/java/*.parquet"}]
    body = (out / "README.md").read_text()
    assert 'load_dataset("me/p1", name="python"' in body
    assert "abc123" in body and "| raw_files | 20 | 13 | 7 |" in body


def test_dataset_layout_is_byte_identical_on_rerun(corpus_dir: Path, tmp_path: Path) -> None:
    spec = LayoutSpec("p1", shard_rows=4)
    dataset_layout(corpus_dir, tmp_path / "a", spec)
    dataset_layout(corpus_dir, tmp_path / "b", spec)
    first = digest(tmp_path / "a")
    dataset_layout(corpus_dir, tmp_path / "a", spec)  # replaces in place
    assert digest(tmp_path / "a") == digest(tmp_path / "b") == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("config", ["default", *LANGS])
def test_dataset_layout_loads_with_datasets(corpus_dir: Path, tmp_path: Path, config: str) -> None:
    out = tmp_path / "repo"
    dataset_layout(corpus_dir, out, LayoutSpec("p1", shard_rows=2))
    ds = datasets.load_dataset(
        "parquet",
        data_files=sorted(str(p) for p in (out / "data" / config).glob("*.parquet")),
        split="train",
        cache_dir=str(tmp_path / "cache"),
    )
    expected = sum(LANGS.values()) if config == "default" else LANGS[config]
    assert ds.num_rows == expected
    if config != "default":
        assert set(ds["lang"]) == {config}
        assert ds["document_id"] == sorted(ds["document_id"])


@pytest.mark.parametrize(
    ("sizes", "rows", "nbytes", "expected"),
    [
        ([1, 1, 1], 2, 100, [(0, 2), (2, 3)]),
        ([5, 5, 5], 10, 10, [(0, 2), (2, 3)]),
        ([], 10, 10, [(0, 0)]),
        ([50], 10, 10, [(0, 1)]),
    ],
)
def test_shard_bounds_cut_by_rows_and_bytes(sizes, rows, nbytes, expected) -> None:
    assert shard_bounds(sizes, rows, nbytes) == expected


def test_size_category_buckets() -> None:
    assert size_category(999) == "n<1K"
    assert size_category(1000) == "1K<n<10K"
    assert size_category(2_000_000_000_000) == "n>1T"


def test_streamed_shards_follow_shard_bounds(tmp_path: Path) -> None:
    """Shards cut while streaming (rows arrive in row groups) match `shard_bounds` exactly."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from snowcoder_assets.phase1.corpus import CORPUS_SCHEMA

    sizes = [(i * 7919) % 900 + 1 for i in range(2500)]  # crosses row groups of 1,000
    rows = [
        {"document_id": f"d{i:05d}", "source": "s", "repo": "r", "lang": "python", "part": 0,
         "text": "x", "doc_ids": [f"f{i}"], "num_files": 1, "bytes": size}
        for i, size in enumerate(sizes)
    ]  # fmt: skip
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA), corpus / "part.parquet")
    spec = LayoutSpec("p", shard_rows=700, shard_bytes=200_000)
    info = dataset_layout(corpus, tmp_path / "repo", spec)
    bounds = shard_bounds(sizes, spec.shard_rows, spec.shard_bytes)
    for config in ("default", "python"):
        shards = sorted((tmp_path / "repo" / "data" / config).glob("*.parquet"))
        assert [pq.read_metadata(s).num_rows for s in shards] == [b - a for a, b in bounds]
        assert info.configs[config].documents == 2500 and info.configs[config].bytes == sum(sizes)
    first = pq.ParquetFile(shards[0])
    assert first.metadata.row_group(0).num_rows == min(1000, bounds[0][1])
