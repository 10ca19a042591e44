"""`no_benchmark_ngrams` on phase1_corpus: it fails for a document with a file that
decontamination flagged or never decided, and passes for clean documents."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from snowcoder_assets.config import load_config
from snowcoder_assets.layout import corpus_shard_path, lineage_part_path
from snowcoder_assets.lineage.schemas import CONTAMINATION_SCHEMA, DECISIONS_SCHEMA
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.phase1.checks import NO_BENCHMARK_NGRAMS, corpus_checks
from snowcoder_assets.phase1.corpus import CORPUS_SCHEMA


def _write(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _document(document_id: str, doc_ids: list[str]) -> dict:
    return {
        "document_id": document_id, "source": "s", "repo": "r", "lang": "python", "part": 0,
        "text": "x", "doc_ids": doc_ids, "num_files": len(doc_ids), "bytes": 1,
    }  # fmt: skip


def _no_benchmark_ngrams(tmp_path: Path, contamination: list[dict]):
    config_file = tmp_path / "snowcoder.toml"
    (tmp_path / "src").mkdir()
    config_file.write_text(
        f'[paths]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n[[sources]]\nname = "s"\n'
        f'kind = "local_dir"\npath = "{(tmp_path / "src").as_posix()}"\n'
    )
    config = load_config(config_file)
    data = config.data_dir
    corpus = corpus_shard_path(data, "s", "00000")
    documents = [_document("clean", ["a", "b"]), _document("flagged", ["c"])]
    documents.append(_document("undecided", ["d"]))
    _write(corpus, documents, CORPUS_SCHEMA)
    filtered = pa.schema([("doc_id", pa.string()), ("exact_hash", pa.string())])
    rows = [{"doc_id": d, "exact_hash": d} for d in "abcd"]
    _write(data / "filtered_files" / "s" / "00000.parquet", rows, filtered)
    decisions = [
        {"doc_id": d, "stage": "decontaminate", "kept": True, "partition": "s/00000"}
        for d in ("a", "b", "c")
    ]
    _write(lineage_part_path(data, "decisions", "decontaminate", "s", "00000"), decisions,
           DECISIONS_SCHEMA)  # fmt: skip
    _write(lineage_part_path(data, "contamination", "decontaminate", "s", "00000"),
           contamination, CONTAMINATION_SCHEMA)  # fmt: skip
    refresh_views(data)
    results = {r.check_name: r for r in corpus_checks(config, [corpus])}
    return results[NO_BENCHMARK_NGRAMS]


def test_no_benchmark_ngrams_names_flagged_and_undecided_documents(tmp_path: Path) -> None:
    hit = {"doc_id": "c", "benchmark": "humaneval", "task_id": "HumanEval/0", "evidence": "e"}
    result = _no_benchmark_ngrams(tmp_path, [hit])
    assert not result.passed
    assert result.metadata["first_ids"].value == ["flagged", "undecided"]


def test_no_benchmark_ngrams_passes_when_every_file_was_kept(tmp_path: Path) -> None:
    result = _no_benchmark_ngrams(tmp_path, [])
    assert result.metadata["first_ids"].value == ["undecided"]
