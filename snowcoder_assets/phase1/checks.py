"""Invariants of the phase-1 assets, read back from what the stages wrote (plain functions)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.io import files_under
from snowcoder_assets.layout import corpus_dir, lineage_db_path, lineage_part_path, raw_shard_path
from snowcoder_assets.phase1.decontaminated_files import DECISION_STAGE as DECONTAMINATION
from snowcoder_assets.phase1.deduped_files import EXACT, deduped_path
from snowcoder_assets.phase1.file_signals import signals_path
from snowcoder_assets.phase1.filtered_files import DECISION_STAGE as FILTER_DECISIONS
from snowcoder_assets.phase1.filtered_files import filtered_path
from snowcoder_assets.storage import connect_duckdb

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
    where = "WHERE o.stage = ?" if stage else ""
    params = [str(inputs), str(outputs)] + ([stage] if stage else [])
    with connect_duckdb() as con:
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
        "file_signals", raw_shard_path(d, source, shard), signals_path(d, source, shard)
    )


def filter_decided_all(config: SnowcoderConfig, source: str, shard: str) -> dg.AssetCheckResult:
    d = config.data_dir
    return _missing(
        "filtered_files",
        signals_path(d, source, shard),
        lineage_part_path(d, "decisions", FILTER_DECISIONS, source, shard),
    )


def dedup_decided_all(config: SnowcoderConfig, source: str, shard: str) -> dg.AssetCheckResult:
    d = config.data_dir
    return _missing(
        "deduped_files",
        filtered_path(d, source, shard),
        lineage_part_path(d, "decisions", EXACT, source, shard),
    )


def decont_decided_all(config: SnowcoderConfig, source: str, shard: str) -> dg.AssetCheckResult:
    d = config.data_dir
    return _missing(
        "decontaminated_files",
        deduped_path(d, source, shard),
        lineage_part_path(d, "decisions", "decontaminate", source, shard),
    )


def corpus_checks(config: SnowcoderConfig, rebuilt: list[Path]) -> list[dg.AssetCheckResult]:
    """The blocking invariants of `phase1_corpus`, over the lineage views and the documents.
    `no_benchmark_ngrams` holds when every file of the rebuilt documents passed decontamination
    and none has a contamination record: a document is its files' texts behind separator lines,
    so running the benchmark index over it again (the cost of the whole decontamination stage a
    second time) can only add n-grams that span two files. A new index changes decontamination's
    code version, which rebuilds every shard."""
    corpus = [str(p) for p in files_under(corpus_dir(config.data_dir)) if p.suffix == ".parquet"]
    filtered = str(config.data_dir / "filtered_files" / "*" / "*.parquet")
    with connect_duckdb(lineage_db_path(config.data_dir), read_only=True) as con:
        undecided = _ids(con, "SELECT doc_id FROM file_status WHERE reason = 'undecided'")
        dup_ids = _ids(con, "SELECT doc_id FROM files GROUP BY doc_id HAVING count(*) > 1")
        exact = corpus and _ids(
            con,
            (
                "WITH members AS (SELECT unnest(doc_ids) AS doc_id FROM read_parquet(?)) "
                "SELECT any_value(f.doc_id) FROM members m JOIN read_parquet(?) f USING (doc_id) "
                "GROUP BY f.exact_hash HAVING count(*) > 1"
            ),
            [corpus, filtered],
        )
        contaminated = rebuilt and _ids(
            con, _NOT_DECONTAMINATED, [[str(p) for p in rebuilt], DECONTAMINATION]
        )
    return [
        _result(EVERY_FILE_HAS_STATUS, undecided),
        _result(UNIQUE_DOC_ID, dup_ids),
        _result(NO_EXACT_DUPLICATES, exact),
        _result(NO_BENCHMARK_NGRAMS, contaminated),
    ]


# Documents with a file that decontamination did not keep, or that has a contamination record.
_NOT_DECONTAMINATED = """
WITH members AS (
    SELECT document_id, unnest(doc_ids) AS doc_id FROM read_parquet(?)
), passed AS (
    SELECT DISTINCT doc_id FROM decisions WHERE stage = ? AND kept
)
SELECT DISTINCT m.document_id FROM members m
WHERE m.doc_id NOT IN (SELECT doc_id FROM passed)
   OR m.doc_id IN (SELECT doc_id FROM contamination)
ORDER BY 1
"""


def _ids(con, sql: str, params: list | None = None) -> list[str]:
    return [r[0] for r in con.execute(sql, params or []).fetchall()]


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


def bytes_chart(bytes_by_lang: Mapping[str, int], width: int = 40) -> dg.MarkdownMetadataValue:
    """A bar chart of corpus bytes per language (the 20 largest), drawn in text: the corpus
    step runs on every new shard, and matplotlib alone would cost it most of a second."""
    items = sorted(bytes_by_lang.items(), key=lambda kv: -kv[1])[:20]
    top = max((v for _, v in items), default=0) or 1
    lines = ["| lang | MB | |", "|---|---:|---|"]
    for lang, num_bytes in items:
        bar = "█" * max(1, round(width * num_bytes / top))
        lines.append(f"| {lang} | {num_bytes / 1e6:.2f} | `{bar}` |")
    return dg.MetadataValue.md("\n".join(lines))
