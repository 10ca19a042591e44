"""`file_signals`: per-file quality signals and MinHash band keys of one shard, computed once.

Thresholds apply downstream (`filtered_files`), so changing one never recomputes signals; the
signatures feed the global near-dedup clustering, which then reads only these small keys.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import ParquetBatchWriter, iter_rows
from snowcoder_assets.layout import raw_shard_path, stage_path
from snowcoder_assets.lineage.decisions import StageStats
from snowcoder_assets.lineage.schemas import IDENTITY_COLUMNS, IDENTITY_FIELDS

STAGE = "file_signals"
MINHASH_SUFFIX = ".minhash"
MINHASH_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("bands", pa.list_(pa.uint64())),
        ("signature", pa.list_(pa.uint32())),
    ]
)


def signals_schema() -> pa.Schema:
    from snowcoder_assets.phase1.signals import SIGNALS_SCHEMA

    return pa.schema([*IDENTITY_FIELDS, *SIGNALS_SCHEMA])


def signals_path(data_dir: Path, source: str, shard: str) -> Path:
    return stage_path(data_dir, STAGE, source, shard)


def minhash_path(data_dir: Path, source: str, shard: str) -> Path:
    return stage_path(data_dir, STAGE, source, shard, MINHASH_SUFFIX)


def run_file_signals(
    config: SnowcoderConfig, source: str, shard: str, log: Callable[[str], None]
) -> StageStats:
    """Quality signals and MinHash band keys of every usable file of the partition."""
    from snowcoder_assets.phase1.minhash import band_hashes, signatures
    from snowcoder_assets.phase1.signals import compute_signals

    data_dir, minhash = config.data_dir, config.dedup.minhash
    stats = StageStats()
    with (
        ParquetBatchWriter(signals_path(data_dir, source, shard), signals_schema()) as out,
        ParquetBatchWriter(minhash_path(data_dir, source, shard), MINHASH_SCHEMA) as sig_out,
    ):
        for rows in iter_rows(
            raw_shard_path(data_dir, source, shard), [*IDENTITY_COLUMNS, "content"]
        ):
            texts = [row.pop("content") for row in rows]
            sigs = signatures(texts, minhash)
            bands = band_hashes(sigs, minhash)
            for row, text, sig, band in zip(rows, texts, sigs, bands, strict=True):
                out.write({**row, **compute_signals(text, row["lang"], row["path"])})
                sig_out.write(
                    {
                        "doc_id": row["doc_id"],
                        "bands": band.tolist(),
                        "signature": sig.astype("uint32").tolist(),
                    }
                )
                stats.count(row, True, None)
    return stats
