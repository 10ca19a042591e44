"""Phase 1's machinery applied to the synthetic files: the same signals and thresholds, exact
and near dedup against the phase-1 corpus (phase 2 is a part of it) and the other synthetic
files, and benchmark decontamination. Reasons are phase 1's, so one query reads both.

Against phase 1, the stored signals are reused: exact hashes from `filtered_files`, MinHash
band keys and signatures from `file_signals`, read only for the band keys the synthetic files
have (a semi-join), so the cost follows the synthetic corpus, not the phase-1 one. Among
synthetic files the first in prompt order survives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from snowcoder_assets.config import SnowcoderConfig, split_partition_key
from snowcoder_assets.phase1.decontaminated_files import benchmark_index, decontaminated_path
from snowcoder_assets.phase1.file_signals import minhash_path
from snowcoder_assets.phase1.filtered_files import filtered_path


@dataclass
class Verdict:
    reason: str | None = None
    detail: str = ""
    evidence: list[dict[str, str]] | None = None  # contamination rows


def apply_filters(
    config: SnowcoderConfig, files: Sequence[dict[str, Any]], partitions: list[str]
) -> list[Verdict]:
    """One verdict per file (`doc_id`, `lang`, `path`, `code`), in order: None = kept."""
    verdicts = [Verdict() for _ in files]
    hashes = _threshold_filter(config, files, verdicts)
    corpus = _phase1_ids(config, partitions)
    if config.dedup.exact:
        _exact(config, files, hashes, verdicts, corpus, partitions)
    if config.dedup.near:
        _near(config, files, verdicts, corpus, partitions)
    _decontaminate(config, files, verdicts)
    return verdicts


def _pending(verdicts: list[Verdict]) -> list[int]:
    return [i for i, v in enumerate(verdicts) if v.reason is None]


def _threshold_filter(
    config: SnowcoderConfig, files: Sequence[dict[str, Any]], verdicts: list[Verdict]
) -> list[str]:
    from snowcoder_assets.phase1.filters import decide
    from snowcoder_assets.phase1.signals import compute_signals

    hashes = []
    for file, verdict in zip(files, verdicts, strict=True):
        signals = compute_signals(file["code"], file["lang"], file["path"])
        hashes.append(signals["exact_hash"])
        kept, reason, detail = decide(signals, file["lang"], config.filters)
        if not kept:
            verdict.reason, verdict.detail = reason, detail or ""
    return hashes


def _phase1_ids(config: SnowcoderConfig, partitions: list[str]) -> pl.LazyFrame:
    paths = [str(decontaminated_path(config.data_dir, *split_partition_key(p))) for p in partitions]
    if not paths:
        return pl.LazyFrame({"doc_id": []}, schema={"doc_id": pl.String})
    return pl.scan_parquet(paths).select("doc_id")


def _where(row: dict[str, Any]) -> str:
    return f"{row['repo']}/{row['path']}"


def _exact(
    config: SnowcoderConfig,
    files: Sequence[dict[str, Any]],
    hashes: list[str],
    verdicts: list[Verdict],
    corpus: pl.LazyFrame,
    partitions: list[str],
) -> None:
    paths = [str(filtered_path(config.data_dir, *split_partition_key(p))) for p in partitions]
    wanted = sorted({hashes[i] for i in _pending(verdicts)})
    known: dict[str, dict] = {}
    if paths and wanted:
        rows = (
            pl.scan_parquet(paths)
            .select("doc_id", "repo", "path", "exact_hash")
            .filter(pl.col("exact_hash").is_in(wanted))
            .join(corpus, on="doc_id", how="semi")
            .sort("doc_id")
            .collect()
        )
        for row in rows.iter_rows(named=True):
            known.setdefault(row["exact_hash"], row)
    first_synthetic: dict[str, str] = {}
    for i in _pending(verdicts):
        if hashes[i] in known:
            verdicts[i].reason = "exact_duplicate"
            verdicts[i].detail = f"same content as {_where(known[hashes[i]])} (phase 1)"
        elif hashes[i] in first_synthetic:
            verdicts[i].reason = "exact_duplicate"
            verdicts[i].detail = f"same content as synthetic {first_synthetic[hashes[i]]}"
        else:
            first_synthetic[hashes[i]] = files[i]["doc_id"]


def _near(
    config: SnowcoderConfig,
    files: Sequence[dict[str, Any]],
    verdicts: list[Verdict],
    corpus: pl.LazyFrame,
    partitions: list[str],
) -> None:
    from snowcoder_assets.phase1.minhash import (
        band_hashes,
        candidate_pairs,
        estimate_jaccard_pairs,
        signatures,
    )

    pending = _pending(verdicts)
    if not pending:
        return
    settings = config.dedup.minhash
    sigs = signatures([files[i]["code"] for i in pending], settings).astype(np.uint32)
    bands = band_hashes(sigs, settings)
    phase1 = _phase1_bands(config, partitions, corpus, bands)
    offset = phase1.height
    synthetic = pl.DataFrame(
        {
            "doc_index": np.repeat(np.arange(len(pending)) + offset, bands.shape[1]),
            "band": np.tile(np.arange(bands.shape[1], dtype=np.int32), len(pending)),
            "hash": bands.reshape(-1).astype(np.uint64),
        }
    )
    table = pl.concat(
        [
            phase1.select("doc_index", "band", "hash").explode("band", "hash")
            if offset
            else synthetic.clear(),
            synthetic,
        ]
    )
    pairs = candidate_pairs(table)
    pairs = pairs[pairs[:, 1] >= offset]  # a pair holds a synthetic file (sorted: b is one)
    matrix = np.concatenate(
        [
            np.stack(phase1["signature"].to_numpy()).astype(np.uint32)
            if offset
            else np.empty((0, sigs.shape[1]), np.uint32),
            sigs,
        ]
    )
    similarity = estimate_jaccard_pairs(matrix[pairs[:, 0]], matrix[pairs[:, 1]])
    close = pairs[similarity >= settings.threshold], similarity[similarity >= settings.threshold]
    _settle_near(files, verdicts, pending, offset, phase1, *close)


def _phase1_bands(
    config: SnowcoderConfig, partitions: list[str], corpus: pl.LazyFrame, bands: np.ndarray
) -> pl.DataFrame:
    """Phase-1 files sharing a band key with a synthetic file: doc_index, band, hash lists."""
    paths = [str(minhash_path(config.data_dir, *split_partition_key(p))) for p in partitions]
    if not paths:
        return pl.DataFrame(schema={"doc_index": pl.Int64})
    wanted = pl.Series(np.unique(bands).astype(np.uint64))
    rows = (
        pl.scan_parquet(paths)
        .join(corpus, on="doc_id", how="semi")
        .with_columns(band=pl.int_ranges(0, pl.col("bands").list.len(), dtype=pl.Int32))
        .filter(pl.col("bands").list.eval(pl.element().is_in(wanted.implode())).list.any())
        .sort("doc_id")
        .collect()
    )
    return rows.with_row_index("doc_index").with_columns(
        pl.col("doc_index").cast(pl.Int64), hash=pl.col("bands")
    )


def _settle_near(
    files: Sequence[dict[str, Any]],
    verdicts: list[Verdict],
    pending: list[int],
    offset: int,
    phase1: pl.DataFrame,
    pairs: np.ndarray,
    similarity: np.ndarray,
) -> None:
    """Drop a synthetic file close to a phase-1 file, or to an earlier surviving synthetic."""
    best: dict[int, tuple[float, int]] = {}
    for (a, b), sim in zip(pairs.tolist(), similarity.tolist(), strict=True):
        if a < offset and sim > best.get(b, (-1.0, 0))[0]:
            best[b] = (sim, a)
    for b, (sim, a) in best.items():
        i = pending[b - offset]
        verdicts[i].reason = "near_duplicate"
        verdicts[i].detail = f"~{sim:.2f} Jaccard with phase-1 doc {phase1['doc_id'][a]}"
    for (a, b), sim in sorted(zip(pairs.tolist(), similarity.tolist(), strict=True)):
        if a < offset:
            continue
        first, later = pending[a - offset], pending[b - offset]
        if verdicts[first].reason is None and verdicts[later].reason is None:
            verdicts[later].reason = "near_duplicate"
            verdicts[later].detail = f"~{sim:.2f} Jaccard with synthetic {files[first]['doc_id']}"


def _decontaminate(
    config: SnowcoderConfig, files: Sequence[dict[str, Any]], verdicts: list[Verdict]
) -> None:
    index = benchmark_index(config)
    for i in _pending(verdicts):
        matches = index.find(files[i]["code"])
        if matches:
            first = matches[0]
            verdicts[i].reason = first.reason
            verdicts[i].detail = f"{first.benchmark} {first.task_id}"
            verdicts[i].evidence = [
                {
                    "doc_id": files[i]["doc_id"],
                    "benchmark": m.benchmark,
                    "task_id": m.task_id,
                    "evidence": m.evidence,
                }
                for m in matches
            ]
