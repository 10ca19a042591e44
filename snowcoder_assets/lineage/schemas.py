"""Schemas of the lineage tables (the public contract in DESIGN.md).

Each table is a folder of parquet files under `<data_dir>/lineage/<table>/`; an empty file with
the schema (`_empty.parquet`) is always present, so every view resolves before any stage ran.
"""

from __future__ import annotations

import pyarrow as pa

# Who a file is and where it came from: the leading columns of every per-file parquet table.
IDENTITY_FIELDS = [
    ("doc_id", pa.string()),
    ("source", pa.string()),
    ("partition", pa.string()),
    ("repo", pa.string()),
    ("path", pa.string()),
    ("lang", pa.string()),
    ("bytes", pa.int64()),
    ("stars", pa.int64()),
    ("licenses", pa.list_(pa.string())),
]
IDENTITY_COLUMNS = [name for name, _ in IDENTITY_FIELDS]

FILES_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("partition", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("lang", pa.string()),
        ("bytes", pa.int64()),
        ("content_sha", pa.string()),
    ]
)

DECISIONS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("stage", pa.string()),
        ("kept", pa.bool_()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("partition", pa.string()),
    ]
)

DUP_CLUSTERS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("cluster_id", pa.string()),
        ("representative_doc_id", pa.string()),
        ("method", pa.string()),
        ("similarity", pa.float64()),
    ]
)

CONTAMINATION_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("benchmark", pa.string()),
        ("task_id", pa.string()),
        ("evidence", pa.string()),
    ]
)

QUALITY_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("annotator", pa.string()),
        ("score", pa.float64()),
        ("rank", pa.int64()),
        ("selected", pa.bool_()),
        ("repeats", pa.int64()),
    ]
)

SYNTHETIC_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("seed_doc_ids", pa.list_(pa.string())),
        ("generator", pa.string()),
        ("prompt_id", pa.string()),
        ("kept", pa.bool_()),
        ("reason", pa.string()),
        # Beyond the contract's six: enough to redo or audit a prompt.
        ("detail", pa.string()),
        ("lang", pa.string()),
        ("template_id", pa.string()),
        ("sampling", pa.string()),  # JSON of the sampling parameters
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
    ]
)

EVALUATION_SCHEMA = pa.schema(
    [
        ("checkpoint", pa.string()),  # <phase>@<weights digest>
        ("phase", pa.string()),
        ("benchmark", pa.string()),
        ("task_id", pa.string()),
        ("passed", pa.bool_()),
        ("result", pa.string()),  # "passed", "failed: <short reason>", "timed out"
        # Beyond the contract's six: what ran, where, and how long it took.
        ("completion", pa.string()),
        ("sandbox", pa.string()),  # bwrap | unshare | rlimit-only
        ("seconds", pa.float64()),
        ("generator", pa.string()),
        ("completion_tokens", pa.int64()),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "files": FILES_SCHEMA,
    "decisions": DECISIONS_SCHEMA,
    "dup_clusters": DUP_CLUSTERS_SCHEMA,
    "contamination": CONTAMINATION_SCHEMA,
    "quality": QUALITY_SCHEMA,
    "synthetic": SYNTHETIC_SCHEMA,
    "evaluation": EVALUATION_SCHEMA,
}

# Order in which stages look at a file; `file_status` reports the first stage that dropped it.
STAGE_ORDER: tuple[str, ...] = (
    "ingest",
    "filter",
    "exact_dedup",
    "near_dedup",
    "decontaminate",
    "phase1",
)
