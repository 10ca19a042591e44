"""HfDatasetSource: data shards as units, every row exactly once, built from local data only."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from snowcoder_assets.config import HfDatasetSourceConfig
from snowcoder_assets.sources.base import REASON_CORRUPT_ROW, REASON_DUPLICATE_PATH, RawRecord
from snowcoder_assets.sources.hf_dataset import HfDatasetSource

datasets = pytest.importorskip("datasets")

MAX_BYTES = 1000
NUM_ROWS = 7


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Builders write lock files into the datasets cache: keep them out of the home folder."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    datasets.disable_progress_bars()


def stack_columns(n: int = NUM_ROWS) -> dict[str, list[Any]]:
    return {
        "hexsha": [f"{i:040x}" for i in range(n)],
        "content": [f"value_{i} = {i}\n" for i in range(n)],
        "max_stars_repo_name": [f"octo/repo{i % 2}" for i in range(n)],
        "max_stars_repo_path": [f"pkg/m{i}.py" for i in range(n)],
        "lang": ["Python"] * n,
        "max_stars_count": [i for i in range(n)],
        "max_stars_repo_licenses": [["MIT"] for _ in range(n)],
    }


def source(path: Path | str, split: str = "train") -> HfDatasetSource:
    config = HfDatasetSourceConfig(name="hf", kind="hf_dataset", path=str(path), split=split)
    return HfDatasetSource(config, MAX_BYTES, "cp1252")


def read_by_unit(src: HfDatasetSource) -> dict[str, list[RawRecord]]:
    return {unit.key: list(src.read([unit.key])) for unit in src.units()}


def assert_every_row_once(by_unit: dict[str, list[RawRecord]], n: int = NUM_ROWS) -> None:
    texts = Counter(r.text for records in by_unit.values() for r in records)
    assert texts == Counter(f"value_{i} = {i}\n" for i in range(n))


def test_hf_dataset_source_save_to_disk_one_unit_per_arrow_file(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(stack_columns()).save_to_disk(tmp_path / "saved", num_shards=3)
    src = source(tmp_path / "saved")
    units = list(src.units())
    assert [u.key for u in units] == ["00000", "00001", "00002"]
    assert sum(u.num_files for u in units) == NUM_ROWS
    assert len({u.fingerprint for u in units}) == 3
    by_unit = read_by_unit(src)
    assert all(by_unit.values())
    assert_every_row_once(by_unit)


def test_hf_dataset_source_maps_stack_columns(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(stack_columns()).save_to_disk(tmp_path / "saved")
    first = next(source(tmp_path / "saved").read(["00000"]))
    assert (first.repo, first.path, first.text, first.reason) == (
        "octo/repo0",
        "pkg/m0.py",
        "value_0 = 0\n",
        None,
    )
    assert (first.lang_hint, first.stars, first.licenses) == ("Python", 0, ["MIT"])


def test_hf_dataset_source_dataset_dict_selects_split(tmp_path: Path) -> None:
    train = datasets.Dataset.from_dict(stack_columns())
    test = datasets.Dataset.from_dict(stack_columns(2))
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(tmp_path / "dd")
    by_unit = read_by_unit(source(tmp_path / "dd", split="test"))
    assert_every_row_once(by_unit, 2)
    with pytest.raises(ValueError, match="no split 'validation'"):
        list(source(tmp_path / "dd", split="validation").units())


def test_hf_dataset_source_parquet_folder_through_load_dataset(tmp_path: Path) -> None:
    full = datasets.Dataset.from_dict(stack_columns())
    (tmp_path / "pq").mkdir()
    full.select(range(4)).to_parquet(tmp_path / "pq" / "train-00000.parquet")
    full.select(range(4, NUM_ROWS)).to_parquet(tmp_path / "pq" / "train-00001.parquet")
    src = source(tmp_path / "pq")
    assert [u.key for u in src.units()] == ["00000", "00001"]
    by_unit = read_by_unit(src)
    assert [len(records) for records in by_unit.values()] == [4, 3]
    assert_every_row_once(by_unit)


def test_hf_dataset_source_fingerprint_changes_with_files(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    datasets.Dataset.from_dict(stack_columns()).to_parquet(folder / "train.parquet")
    before = next(source(folder).units()).fingerprint
    assert next(source(folder).units()).fingerprint == before
    datasets.Dataset.from_dict(stack_columns(3)).to_parquet(folder / "train.parquet")
    assert next(source(folder).units()).fingerprint != before


def test_hf_dataset_source_missing_content_and_duplicates(tmp_path: Path) -> None:
    columns = stack_columns(3)
    columns["content"][1] = None
    columns["max_stars_repo_path"][2] = columns["max_stars_repo_path"][0]
    columns["max_stars_repo_name"][2] = columns["max_stars_repo_name"][0]
    datasets.Dataset.from_dict(columns).save_to_disk(tmp_path / "saved")
    records = list(source(tmp_path / "saved").read(["00000"]))
    assert [(r.path, r.reason) for r in records] == [
        ("pkg/m0.py", None),
        ("pkg/m1.py", REASON_CORRUPT_ROW),
        ("pkg/m0.py#dup1", REASON_DUPLICATE_PATH),
    ]


def test_hf_dataset_source_unknown_unit_key_reads_nothing(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(stack_columns()).save_to_disk(tmp_path / "saved")
    assert list(source(tmp_path / "saved").read(["00007", "abc", "0"])) == []


def test_hf_dataset_source_empty_dataset_has_no_units(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(stack_columns(0)).save_to_disk(tmp_path / "saved")
    assert list(source(tmp_path / "saved").units()) == []
