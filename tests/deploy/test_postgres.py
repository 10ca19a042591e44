"""A real PostgreSQL as the instance's run, event-log and schedule storage.

Phase 1 and the Hub dry run of its corpus go through a Postgres instance (the one
deploy/dagster.yaml configures) and give the same file fates and corpus as a sqlite instance;
the runs, partitions and materializations are rows in Postgres.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg2
import pyarrow.parquet as pq
import pytest

from snowcoder_assets.config import load_config
from snowcoder_assets.layout import corpus_dir
from snowcoder_assets.orchestration.instance import open_instance, template_path
from snowcoder_assets.orchestration.materialize import materialize
from snowcoder_assets.raw.partitions import SOURCE_SHARDS
from tests.corpora import local_dir_source, write_config
from tests.phase1.test_pipeline import build_planted_corpus, file_status
from tests.services import local_postgres, postgres_instance_settings

SELECTION = "*hub_phase1_dataset"


@pytest.fixture(scope="module")
def postgres_url() -> str:
    with local_postgres() as url:
        yield url


def _config(tmp_path: Path, corpus: Path, name: str) -> Path:
    return write_config(
        tmp_path / f"{name}.toml", tmp_path / name, local_dir_source("planted", corpus),
        "shard_max_files = 2",
    )  # fmt: skip


def _outputs(config) -> tuple[list[dict], list, list]:
    table = pq.read_table(corpus_dir(config.data_dir)).sort_by("document_id")
    dry_run = sorted(
        (p.relative_to(config.data_dir / "hub_dry_run").as_posix(), p.read_bytes())
        for p in (config.data_dir / "hub_dry_run").rglob("*")
        if p.is_file() and p.suffix != ".md"  # the card names its data_dir
    )
    return table.to_pylist(), sorted(file_status(config.data_dir).items()), dry_run


def test_phase1_and_hub_dry_run_through_postgres_match_sqlite(tmp_path, postgres_url, monkeypatch):
    corpus = tmp_path / "corpus"
    expected = build_planted_corpus(corpus)
    local = load_config(_config(tmp_path, corpus, "on_sqlite"))
    assert materialize(local, SELECTION, echo=lambda _: None).ok

    home = tmp_path / "pg_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(postgres_instance_settings(template_path(), postgres_url))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    on_pg = load_config(_config(tmp_path, corpus, "on_postgres"))
    lines: list[str] = []
    assert materialize(on_pg, SELECTION, echo=lines.append).ok, lines[-20:]

    assert dict(_outputs(on_pg)[1]) == expected
    assert _outputs(on_pg) == _outputs(local)
    with open_instance(on_pg) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        partitions = instance.get_dynamic_partitions(SOURCE_SHARDS.name)
        runs = instance.get_runs()
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    with psycopg2.connect(postgres_url) as con, con.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs")
        assert cur.fetchone()[0] == len(runs)
        cur.execute("SELECT count(*) FROM dynamic_partitions")
        assert cur.fetchone()[0] == len(partitions) >= 3
