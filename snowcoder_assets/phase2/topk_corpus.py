"""`topk_corpus`: per language, the best-scored phase-1 files up to the phase-2 token budget.

The selection (`phase2/topk.py`) keeps the phase-1 language mix; every scored file gets a
`quality` lineage row (score, rank, selected, repeats); the selected files are grouped into
repository documents as in phase 1. The repeat count is recorded for training, never copied.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from snowcoder_assets.config import SnowcoderConfig, split_partition_key
from snowcoder_assets.io import read_json, write_json, write_table
from snowcoder_assets.layout import (
    lineage_part_path,
    scores_path,
    topk_dir,
    topk_selection_path,
)
from snowcoder_assets.lineage.schemas import QUALITY_SCHEMA
from snowcoder_assets.phase1.decontaminated_files import decontaminated_path
from snowcoder_assets.phase1.file_signals import signals_path
from snowcoder_assets.phase2.quality_annotator import annotator_fingerprint

Log = Callable[[str], None]


def quality_path(data_dir: Path) -> Path:
    return lineage_part_path(data_dir, "quality", "topk", "_corpus", "all")


def build_topk_corpus(config: SnowcoderConfig, partitions: list[str], log: Log) -> dict[str, Any]:
    """Select per language up to the token budget, record `quality`, build the documents."""
    import polars as pl

    from snowcoder_assets.phase1.corpus import build_documents
    from snowcoder_assets.phase2.topk import budget_for, cutoffs, select_topk, summary

    data_dir = config.data_dir
    shards = [split_partition_key(p) for p in partitions]
    frame = pl.read_parquet([str(scores_path(data_dir, s, h)) for s, h in shards])
    budget = budget_for(int(frame["tokens"].sum()), config.topk)
    selected = select_topk(frame.select("doc_id", "lang", "tokens", "score"), budget)
    annotator = f"quality_annotator@{annotator_fingerprint(data_dir)}"
    quality = selected.select(
        "doc_id",
        pl.lit(annotator).alias("annotator"),
        pl.col("score").cast(pl.Float64),
        pl.col("rank").cast(pl.Int64),
        "selected",
        pl.when(pl.col("selected"))
        .then(config.topk.repeats)
        .otherwise(0)
        .cast(pl.Int64)
        .alias("repeats"),
    )
    write_table(quality_path(data_dir), quality.to_arrow().cast(QUALITY_SCHEMA))
    ids = selected.filter(pl.col("selected"))["doc_id"].to_list()
    paths = [str(decontaminated_path(data_dir, s, h)) for s, h in shards]
    docs = build_documents(
        paths, topk_dir(data_dir), config.corpus.seed, config.corpus.max_document_bytes, ids
    )
    from snowcoder_assets.phase2.topk_profile import profile

    report = {
        "budget_tokens": budget,
        "repeats": config.topk.repeats,
        "selected_files": len(ids),
        "documents": docs.documents,
        "selected_tokens": int(selected.filter(pl.col("selected"))["tokens"].sum()),
        "cutoffs": cutoffs(selected),
        "languages": summary(selected, budget),
        "profile": profile(
            [
                (decontaminated_path(data_dir, s, h), signals_path(data_dir, s, h))
                for s, h in shards
            ],
            selected,
        ),
    }
    write_json(topk_selection_path(data_dir), report)
    log(f"selected {len(ids)} files, {report['selected_tokens']} of budget {budget} tokens")
    return {**report, "frame": selected}


def read_selection(data_dir: Path) -> dict[str, Any]:
    return read_json(topk_selection_path(data_dir))
