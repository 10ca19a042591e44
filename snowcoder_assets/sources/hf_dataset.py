"""The `hf_dataset` source: a `datasets` dataset by Hub id or local path, read streaming.

A unit is one data shard of the streaming dataset (a data file, or a slice of a `save_to_disk`
folder), so units are read independently and never loaded whole. Rows map to records exactly
as in the tabular sources. `datasets` is imported only when a dataset is opened: importing it
is slow, and every process that loads the pipeline would pay for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from snowcoder_assets.config import HfDatasetSourceConfig
from snowcoder_assets.sources.base import RawRecord, SourceUnit, fingerprint_tree
from snowcoder_assets.sources.tabular import RowMapper

if TYPE_CHECKING:
    from datasets import IterableDataset


@dataclass(frozen=True)
class OpenedDataset:
    """The streaming dataset (None when it has no rows) and what units report about it."""

    dataset: IterableDataset | None
    fingerprint: str
    num_bytes: int  # estimates, spread evenly over the shards; 0 when unknown
    num_rows: int


class HfDatasetSource:
    """Units are the data shards of one split, keyed `00000`, `00001`, ..."""

    def __init__(self, config: HfDatasetSourceConfig, max_file_bytes: int, fallback: str) -> None:
        self.name = config.name
        self.config = config
        self.max_file_bytes = max_file_bytes
        self.fallback_encoding = fallback

    def units(self) -> Iterator[SourceUnit]:
        opened = self.open()
        if opened.dataset is None:
            return
        n = opened.dataset.num_shards
        for i in range(n):
            yield SourceUnit(
                f"{i:05d}",
                _share(opened.num_bytes, n, i),
                _share(opened.num_rows, n, i),
                f"{opened.fingerprint}:{i}/{n}",  # a new shard count renames every unit
            )

    def read(self, unit_keys: Iterable[str]) -> Iterator[RawRecord]:
        dataset = self.open().dataset
        if dataset is None:
            return
        n = dataset.num_shards
        for key in unit_keys:
            index = _shard_index(key, n)
            if index is None:
                continue  # not a shard of the dataset as it is now
            mapper = RowMapper(self.config, self.max_file_bytes, self.fallback_encoding, key)
            for row_index, row in enumerate(dataset.shard(num_shards=n, index=index)):
                yield mapper.record(row, row_index)

    def open(self) -> OpenedDataset:
        """The split as a streaming dataset restricted to the columns rows are read from."""
        local = Path(self.config.path).expanduser()
        if _is_saved(local):
            return self._open_saved(local)
        return self._open_streaming(local if local.exists() else None)

    def _open_saved(self, folder: Path) -> OpenedDataset:
        """A `save_to_disk` folder: one shard per arrow file (memory-mapped, not loaded)."""
        import datasets

        split_folder = self._split_folder(folder)
        fingerprint, num_bytes, _ = fingerprint_tree(split_folder)
        state = json.loads((split_folder / "state.json").read_text(encoding="utf-8"))
        if not state.get("_data_files"):  # saved empty; load_from_disk fails on it
            return OpenedDataset(None, fingerprint, 0, 0)
        loaded = datasets.load_from_disk(str(split_folder))
        rows = len(loaded)
        if rows == 0:
            return OpenedDataset(None, fingerprint, 0, 0)
        loaded = loaded.select_columns(self._present(loaded.column_names))
        shards = max(1, min(len(loaded.cache_files), rows))
        dataset = loaded.to_iterable_dataset(num_shards=shards)
        return OpenedDataset(dataset, fingerprint, num_bytes, rows)

    def _split_folder(self, folder: Path) -> Path:
        """The folder of the configured split when `folder` holds a saved DatasetDict."""
        dict_file = folder / "dataset_dict.json"
        if not dict_file.is_file():
            return folder
        splits = json.loads(dict_file.read_text(encoding="utf-8")).get("splits", [])
        if self.config.split not in splits:
            raise ValueError(
                f"source {self.name!r}: {folder} has no split {self.config.split!r} "
                f"(splits: {sorted(splits)})"
            )
        return folder / self.config.split

    def _open_streaming(self, local: Path | None) -> OpenedDataset:
        """Data files (local or on the Hub) through their dataset builder, streaming."""
        import datasets

        c = self.config
        builder = datasets.load_dataset_builder(
            c.path, name=c.config_name, revision=c.revision, data_dir=c.data_dir
        )
        dataset = builder.as_streaming_dataset(split=c.split)
        if dataset.column_names:
            dataset = dataset.select_columns(self._present(dataset.column_names))
        split = (builder.info.splits or {}).get(c.split)
        num_bytes = getattr(split, "num_bytes", 0) or 0
        num_rows = getattr(split, "num_examples", 0) or 0
        if local is not None:
            fingerprint, local_bytes, _ = _local_fingerprint(local)
            num_bytes = num_bytes or local_bytes
        else:  # on the Hub the builder hash is derived from the resolved commit
            fingerprint = f"{c.revision or 'main'}@{builder.hash}"
        return OpenedDataset(dataset, fingerprint, num_bytes, num_rows)

    def _present(self, column_names: list[str]) -> list[str]:
        wanted = RowMapper(self.config, self.max_file_bytes, self.fallback_encoding).columns
        present = [c for c in wanted if c in column_names]
        return present or column_names[:1]  # no known column: rows still count, as corrupt


def _is_saved(folder: Path) -> bool:
    """A `save_to_disk` folder, by the same files `load_from_disk` looks for."""
    dataset = (folder / "dataset_info.json").is_file() and (folder / "state.json").is_file()
    return dataset or (folder / "dataset_dict.json").is_file()


def _local_fingerprint(path: Path) -> tuple[str, int, int]:
    """Names, sizes and mtimes of the local data: no content read."""
    if path.is_dir():
        return fingerprint_tree(path)
    st = os.stat(path)
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}", st.st_size, 1


def _share(total: int, n: int, i: int) -> int:
    """Shard i's part of a total split as evenly as `shard(contiguous=True)` splits rows."""
    return total // n + (1 if i < total % n else 0)


def _shard_index(key: str, n: int) -> int | None:
    try:
        index = int(key)
    except ValueError:
        return None
    return index if 0 <= index < n and key == f"{index:05d}" else None
