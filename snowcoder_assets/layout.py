"""Where each artifact lives under `data_dir`, in one place so stages never guess paths."""

from __future__ import annotations

from pathlib import Path

from snowcoder_assets.storage import local_dir

LINEAGE_DIR = "lineage"
LINEAGE_DB = "lineage.duckdb"
INSTANCE_DIR = "dagster_home"  # the Dagster instance of this data_dir (runs, events, partitions)
HUB_DRY_RUN_DIR = "hub_dry_run"


def stage_path(data_dir: Path, stage: str, source: str, shard: str, suffix: str = "") -> Path:
    """One parquet file per partition of a per-file stage: `<stage>/<source>/<shard>.parquet`."""
    return data_dir / stage / source / f"{shard}{suffix}.parquet"


def raw_shard_path(data_dir: Path, source: str, shard: str) -> Path:
    return stage_path(data_dir, "raw_files", source, shard)


def shard_registry_path(data_dir: Path, source: str) -> Path:
    return data_dir / "shards" / f"{source}.parquet"


def lineage_table_dir(data_dir: Path, table: str) -> Path:
    return data_dir / LINEAGE_DIR / table


def lineage_part_path(data_dir: Path, table: str, stage: str, source: str, shard: str) -> Path:
    """One parquet file per (table, stage, partition): re-running a partition replaces it."""
    return lineage_table_dir(data_dir, table) / stage / source / f"{shard}.parquet"


def lineage_db_path(data_dir: Path) -> Path:
    """The DuckDB file of lineage views: a local file, also when data_dir is a bucket."""
    return local_dir(data_dir) / LINEAGE_DB


def instance_dir(data_dir: Path) -> Path:
    return data_dir / INSTANCE_DIR


def corpus_dir(data_dir: Path) -> Path:
    """`phase1_corpus`: one parquet file of documents per source shard."""
    return data_dir / "phase1_corpus"


def corpus_shard_path(data_dir: Path, source: str, shard: str) -> Path:
    return corpus_dir(data_dir) / source / f"{shard}.parquet"


def dedup_dir(data_dir: Path, minhash_tag: str) -> Path:
    """`dup_clusters` output, tagged with its MinHash settings so two settings never mix."""
    return data_dir / "dup_clusters" / minhash_tag


def tokenizer_dir(data_dir: Path) -> Path:
    return data_dir / "tokenizer"


def training_set_dir(data_dir: Path) -> Path:
    return data_dir / "annotator_training_set"


def annotator_dir(data_dir: Path) -> Path:
    return data_dir / "quality_annotator"


def annotator_eval_path(data_dir: Path) -> Path:
    """The annotator's and the baselines' figures on the quality eval set (beside the model
    folder, which is swapped in whole)."""
    return data_dir / "quality_annotator_eval.json"


def scores_path(data_dir: Path, source: str, shard: str) -> Path:
    return stage_path(data_dir, "quality_scores", source, shard)


def topk_dir(data_dir: Path) -> Path:
    return data_dir / "topk_corpus"


def topk_selection_path(data_dir: Path) -> Path:
    return data_dir / "topk_selection.json"


def packed_dir(data_dir: Path, phase: str) -> Path:
    return data_dir / "packed" / phase


def manifest_path(data_dir: Path) -> Path:
    return data_dir / "phase_manifest.json"


def checkpoints_dir(data_dir: Path) -> Path:
    return data_dir / "checkpoints"


def hub_dry_run_dir(data_dir: Path, artifact: str) -> Path:
    return data_dir / HUB_DRY_RUN_DIR / artifact
