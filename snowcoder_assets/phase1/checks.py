"""Invariants of the phase-1 assets, read back from what the stages wrote (plain functions)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.layout import lineage_db_path, lineage_part_path, raw_shard_path
from snowcoder_assets.metadata import figure_png, png_markdown
from snowcoder_assets.phase1.per_file import (
    DECONT_STAGE,
    DEDUP_STAGE,
    FILTER_STAGE,
    SIGNALS_STAGE,
    stage_path,
)

EVERY_INPUT_DECIDED = "every_input_decided"
EVERY_FILE_HAS_STATUS = "every_file_has_status"
UNIQUE_DOC_ID = "unique_doc_id"
NO_EXACT_DUPLICATES = "no_exact_duplicates"
NO_BENCHMARK_NGRAMS = "no_benchmark_ngrams"
CORPUS_CHECKS = (EVERY_FILE_HAS_STATUS, UNIQUE_DOC_ID, NO_EXACT_DUPLICATES, NO_BENCHMARK_NGRAMS)


def _missing(
    asset: str, inputs: Path, outputs: Path, stage: str | None = None
) -> dg.AssetCheckResult:
    """Every doc of `inputs` appears in `outputs` (decisions of `stage`, when given)."""
    import duckdb

    where = "WHERE o.stage = ?" if stage else ""
    params = [str(inputs), str(outputs)] + ([stage] if stage else [])
    with duckdb.connect() as con:
        missing = con.execute(
            "SELECT i.doc_id FROM read_parquet(?) i ANTI JOIN "
            f"(SELECT doc_id FROM read_parquet(?) o {where}) USING (doc_id) ORDER BY 1",
            params,
        ).fetchall()
    return dg.AssetCheckResult(
        check_name=EVERY_INPUT_DECIDED,
        asset_key=asset,
        passed=not missing,
        metadata={"num_missing": len(missing), "first_doc_ids": [r[0] for r in missing[:10]]},
    )


def signals_cover_raw(config: SnowcoderConfig, source: str, shard: str) -> dg.AssetCheckResult:
    d = config.data_dir
    return _missing(
        SIGNALS_STAGE, raw_shard_path(d, source, shard), stage_path(d, SIGNALS_STAGE, source, shard)
    )


def filter_decided_all(config: SnowcoderConfig, source: str, shard: str) -> dg.AssetCheckResult:
    d = config.data_dir
    return _missing(
        FILTER_STAGE,
        stage_path(d, SIGNALS_STAGE, source, shard),
        lineage_part_path(d, "decisions", "filter", source, shard),
    )


def dedup_decided_all(config: SnowcoderConfig, source: str, shard: str) -> dg.AssetCheckResult:
    d = config.data_dir
    return _missing(
        DEDUP_STAGE,
        stage_path(d, FILTER_STAGE, source, shard),
        lineage_part_path(d, "decisions", "exact_dedup", source, shard),
    )


def decont_decided_all(config: SnowcoderConfig, source: str, shard: str) -> dg.AssetCheckResult:
    d = config.data_dir
    return _missing(
        DECONT_STAGE,
        stage_path(d, DEDUP_STAGE, source, shard),
        lineage_part_path(d, "decisions", "decontaminate", source, shard),
    )


def corpus_checks(config: SnowcoderConfig) -> list[dg.AssetCheckResult]:
    """The blocking invariants of `phase1_corpus`, over the lineage views and the documents."""
    import duckdb

    from snowcoder_assets.phase1.corpus import corpus_dir

    corpus = str(corpus_dir(config) / "*.parquet")
    filtered = str(config.data_dir / FILTER_STAGE / "*" / "*.parquet")
    with duckdb.connect(str(lineage_db_path(config.data_dir)), read_only=True) as con:
        undecided = _ids(con, "SELECT doc_id FROM file_status WHERE reason = 'undecided'")
        dup_ids = _ids(con, "SELECT doc_id FROM files GROUP BY doc_id HAVING count(*) > 1")
        exact = _ids(
            con,
            (
                "WITH members AS (SELECT unnest(doc_ids) AS doc_id FROM read_parquet(?)) "
                "SELECT any_value(f.doc_id) FROM members m JOIN read_parquet(?) f USING (doc_id) "
                "GROUP BY f.exact_hash HAVING count(*) > 1"
            ),
            [corpus, filtered],
        )
    contaminated = _benchmark_hits(config, corpus)
    return [
        _result(EVERY_FILE_HAS_STATUS, undecided),
        _result(UNIQUE_DOC_ID, dup_ids),
        _result(NO_EXACT_DUPLICATES, exact),
        _result(NO_BENCHMARK_NGRAMS, contaminated),
    ]


def _ids(con, sql: str, params: list | None = None) -> list[str]:
    return [r[0] for r in con.execute(sql, params or []).fetchall()]


def _benchmark_hits(config: SnowcoderConfig, corpus_glob: str) -> list[str]:
    """Documents of the corpus in which the benchmark index still finds a task."""
    import duckdb

    from snowcoder_assets.phase1.per_file import benchmark_index

    index = benchmark_index(config)
    hits = []
    with duckdb.connect() as con:
        result = con.execute("SELECT document_id, text FROM read_parquet(?)", [corpus_glob])
        for batch in result.fetch_record_batch(256):
            for row in batch.to_pylist():
                if index.find(row["text"]):
                    hits.append(row["document_id"])
    return hits


def _result(name: str, offending: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        asset_key="phase1_corpus",
        passed=not offending,
        metadata={"num_offending": len(offending), "first_ids": offending[:10]},
    )


def funnel_table(config: SnowcoderConfig) -> dg.TableMetadataValue:
    """Files in, kept and dropped per stage, from the lineage views."""
    from snowcoder_assets.lineage.store import query

    rows = query(config.data_dir, "select_stage_funnel")
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(c, "string" if c == "stage" else "int")
            for c in ("stage", "files", "kept", "dropped")
        ]
    )
    return dg.MetadataValue.table(records=[dg.TableRecord(r) for r in rows], schema=schema)


def bytes_chart(bytes_by_lang: Mapping[str, int]) -> dg.MarkdownMetadataValue:
    """A horizontal bar chart of corpus bytes per language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = sorted(bytes_by_lang.items(), key=lambda kv: kv[1])[-20:]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(items) + 1))
    ax.barh([k for k, _ in items], [v / 1e6 for _, v in items])
    ax.set_xlabel("MB")
    ax.set_title("phase1_corpus bytes per language")
    return png_markdown(figure_png(fig), "bytes per language")
