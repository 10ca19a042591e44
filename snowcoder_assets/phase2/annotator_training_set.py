"""`annotator_training_set`: positives vs negatives for the quality annotator, split by repo.

Offline, the positives are a heuristic proxy (well-documented phase-1 files, labelled as such)
and the negatives random phase-1 files, both sampled deterministically in bounded memory; at
paper scale configured sources supply them. Configured texts that overlap a benchmark are left
out.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig, split_partition_key
from snowcoder_assets.io import iter_rows, write_json, write_table
from snowcoder_assets.layout import training_set_dir
from snowcoder_assets.phase1.decontaminated_files import benchmark_index, decontaminated_path
from snowcoder_assets.phase1.file_signals import signals_path
from snowcoder_assets.phase2.training_set import (
    PROXY_LABEL,
    TRAINING_SET_SCHEMA,
    group_of,
    is_proxy_positive,
    read_text_source,
    split_by_group,
)

Log = Callable[[str], None]
SPLITS = ("train", "validation")
PROXY_FEATURES = [
    "doc_id",
    "num_lines",
    "mean_line_length",
    "max_line_length",
    "alnum_fraction",
    "comment_fraction",
]


def training_set_outputs(data_dir: Path) -> list[Path]:
    folder = training_set_dir(data_dir)
    return [folder / f"{name}.parquet" for name in SPLITS] + [folder / "summary.json"]


def _seeded_key(seed: int, doc_id: str) -> bytes:
    return hashlib.blake2b(f"{seed}\0{doc_id}".encode(), digest_size=8).digest()


class _Reservoir:
    """The k rows with the smallest seeded keys: a deterministic sample, in bounded memory."""

    def __init__(self, k: int, seed: int) -> None:
        self.k, self.seed, self._heap = k, seed, []

    def offer(self, row: dict[str, Any]) -> None:
        item = (tuple(-b for b in _seeded_key(self.seed, row["doc_id"])), row["doc_id"], row)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, item)
        elif item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def rows(self) -> list[dict[str, Any]]:
        return [r for *_, r in sorted(self._heap, key=lambda t: t[1])]


def build_training_set(config: SnowcoderConfig, partitions: list[str], log: Log) -> dict:
    """Write train/validation parquet of (text, label, origin, group); return counts."""
    data = config.annotator_data
    positives, negatives = (
        _Reservoir(data.max_positives, data.seed),
        _Reservoir(data.max_negatives, data.seed + 1),
    )
    for row in _phase1_rows(config, partitions):
        row["origin"], row["group"] = "phase1", group_of(f"{row['source']}/{row['repo']}")
        if not data.positives and is_proxy_positive(row):
            positives.offer({**row, "origin": "phase1-proxy"})
        elif not data.negatives:
            negatives.offer(row)
    pos = positives.rows() if not data.positives else _external(config, data.positives, log)
    neg = negatives.rows() if not data.negatives else _external(config, data.negatives, log)
    rows = [_example(r, 1) for r in pos[: data.max_positives]] + [
        _example(r, 0) for r in neg[: data.max_negatives]
    ]
    split = dict(zip(SPLITS, split_by_group(rows, data.validation_fraction), strict=True))
    for name, part in split.items():
        write_table(
            training_set_dir(config.data_dir) / f"{name}.parquet",
            pa.Table.from_pylist(part, schema=TRAINING_SET_SCHEMA),
        )
    report = {
        "positives": len(pos),
        "negatives": len(neg),
        "train": len(split["train"]),
        "validation": len(split["validation"]),
        "positives_origin": "configured" if data.positives else PROXY_LABEL,
        "negatives_origin": "configured" if data.negatives else "random phase-1 files",
    }
    write_json(training_set_dir(config.data_dir) / "summary.json", report)
    return report


def _phase1_rows(config: SnowcoderConfig, partitions: list[str]) -> Iterator[dict[str, Any]]:
    """Phase-1 files (decontaminated) with the signals the proxy needs."""
    import polars as pl

    for key in partitions:
        source, shard = split_partition_key(key)
        signals = pl.read_parquet(
            signals_path(config.data_dir, source, shard), columns=PROXY_FEATURES
        )
        features = {r["doc_id"]: r for r in signals.to_dicts()}
        for rows in iter_rows(
            decontaminated_path(config.data_dir, source, shard),
            ["doc_id", "source", "repo", "path", "lang", "content"],
        ):
            for row in rows:
                yield {**features[row["doc_id"]], **row}


def _external(config: SnowcoderConfig, sources, log: Log) -> list[dict[str, Any]]:
    """Configured texts, minus any that overlap a benchmark (the phase-1 index)."""
    index, out, dropped = benchmark_index(config), [], 0
    for source in sources:
        for text in read_text_source(source):
            if index.find(text):
                dropped += 1
                continue
            key = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
            out.append(
                {"content": text, "origin": source.path, "group": group_of(key), "doc_id": key}
            )
    if dropped:
        log(f"{dropped} configured texts overlap a benchmark and were left out")
    return out


def _example(row: dict[str, Any], label: int) -> dict[str, Any]:
    return {
        "text": row["content"],
        "label": label,
        "origin": row["origin"],
        "group": row["group"],
        "doc_id": row["doc_id"],
    }


def load_training_set(data_dir: Path, split: str) -> list[tuple[str, int]]:
    import pyarrow.parquet as pq

    table = pq.read_table(
        training_set_dir(data_dir) / f"{split}.parquet", columns=["text", "label"]
    )
    return list(zip(table["text"].to_pylist(), table["label"].to_pylist(), strict=True))
