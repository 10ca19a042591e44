"""`data_dir = "s3://..."` against a real S3 API (moto in server mode, on a local port).

Phase 1 and the Hub dry run of its corpus on the bucket give the same bytes (corpus, lineage
parquet, dry-run files) as on a local folder; a run killed mid-way leaves only whole objects,
and running again completes it to the same result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest

from snowcoder_assets.config import load_config
from snowcoder_assets.layout import lineage_db_path
from snowcoder_assets.orchestration.materialize import materialize
from snowcoder_assets.storage import DATA_DIR_ENV_VAR, LOCAL_DIR_ENV_VAR, connect_duckdb
from tests.corpora import local_dir_source, write_config
from tests.phase1.test_pipeline import build_planted_corpus
from tests.services import local_s3

SELECTION = "*hub_phase1_dataset"
BUCKET = "snowcoder-data"
PUBLISHED = ("phase1_corpus", "lineage", "hub_dry_run")  # what phase 1 and the dry run write


@pytest.fixture(scope="module")
def s3_env() -> dict[str, str]:
    with local_s3(BUCKET) as env:
        yield env


@pytest.fixture
def on_s3(s3_env, monkeypatch) -> None:
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)


def _config_file(tmp_path: Path, corpus: Path, name: str) -> Path:
    return write_config(
        tmp_path / f"{name}.toml", tmp_path / name, local_dir_source("planted", corpus),
        "shard_max_files = 2",
    )  # fmt: skip


def _files(root: str) -> dict[str, bytes]:
    """Every published file under `root` (a local folder or an s3:// URL), by relative path,
    leaving out the dataset card, which names its data_dir."""
    fs, base = fsspec.core.url_to_fs(root)
    fs.invalidate_cache()
    found = {}
    for path in fs.find(base):
        name = path[len(base.rstrip("/")) + 1 :]
        if name.split("/", 1)[0] in PUBLISHED and not name.endswith(".md"):
            found[name] = fs.cat_file(path)
    return found


def _file_fates(data_dir) -> list[tuple]:
    # the catalog is local; its views read the lineage parquet on the bucket through fsspec
    with connect_duckdb(lineage_db_path(data_dir), read_only=True) as con:
        return con.execute(
            "SELECT repo, path, kept, reason FROM file_status ORDER BY repo, path"
        ).fetchall()


def _every_object_is_whole(url: str) -> list[str]:
    """Objects under `url` that a reader would choke on: leftovers of a temp-file protocol,
    parquet without its footer, JSON cut short. Returns their keys."""
    fs, base = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    broken = []
    for path in fs.find(base):
        name = path.rsplit("/", 1)[-1]
        try:
            if ".tmp" in name or name.startswith("."):
                raise ValueError("temporary object")
            if name.endswith(".parquet"):
                with fs.open(path, "rb") as handle:
                    pq.read_metadata(handle)
            elif name.endswith(".json"):
                json.loads(fs.cat_file(path))
        except Exception as error:  # anything unreadable is what the test reports
            broken.append(f"{path}: {error}")
    return broken


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory) -> tuple[Path, dict[str, bytes], list[tuple]]:
    """The planted corpus run once on a local data_dir: (corpus, files, file fates)."""
    tmp_path = tmp_path_factory.mktemp("local")
    corpus = tmp_path / "corpus"
    build_planted_corpus(corpus)
    config = load_config(_config_file(tmp_path, corpus, "local_data"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(_home(tmp_path / "home")))
        assert materialize(config, SELECTION, echo=lambda _: None).ok
    return corpus, _files(str(config.data_dir)), _file_fates(config.data_dir)


def _home(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    (path / "dagster.yaml").write_text((root / "dagster_home" / "dagster.yaml").read_text())
    return path


def _bucket_config(tmp_path: Path, monkeypatch, corpus: Path, prefix: str) -> tuple[str, Path]:
    """(data_dir URL, config file): the URL given the way pods get it, SNOWCODER_DATA_DIR."""
    url = f"s3://{BUCKET}/{prefix}"
    monkeypatch.setenv(DATA_DIR_ENV_VAR, url)
    monkeypatch.setenv(LOCAL_DIR_ENV_VAR, str(tmp_path / "scratch"))
    monkeypatch.setenv("DAGSTER_HOME", str(_home(tmp_path / "home")))
    return url, _config_file(tmp_path, corpus, "ignored_local_dir")


def _assert_same_as_local(url: str, config, local_files: dict, local_fates: list) -> None:
    on_bucket = _files(url)
    assert {n.split("/", 1)[0] for n in on_bucket} == set(PUBLISHED)
    assert sorted(on_bucket) == sorted(local_files)
    assert [n for n in on_bucket if on_bucket[n] != local_files[n]] == []
    assert _file_fates(config.data_dir) == local_fates


def test_phase1_and_dry_run_on_s3_match_a_local_data_dir(
    tmp_path, on_s3, monkeypatch, local_reference
):
    corpus, local_files, local_fates = local_reference
    url, config_file = _bucket_config(tmp_path, monkeypatch, corpus, "same-bytes")
    config = load_config(config_file)
    assert str(config.data_dir) == url
    lines: list[str] = []
    assert materialize(config, SELECTION, echo=lines.append).ok, lines[-20:]

    _assert_same_as_local(url, config, local_files, local_fates)
    assert not (tmp_path / "ignored_local_dir").exists()  # nothing went to the config's folder


def _first_objects(url: str, process: subprocess.Popen, timeout_s: float = 240.0) -> int:
    """Wait until the run has published some objects under `url`; their count."""
    fs, base = fsspec.core.url_to_fs(url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        fs.invalidate_cache()
        found = fs.find(base) if fs.exists(base) else []
        if any("/lineage/" in p for p in found):
            return len(found)
        time.sleep(0.2)
    raise AssertionError(f"no lineage object under {url} after {timeout_s:.0f} s")


def test_a_killed_run_leaves_only_whole_objects_and_reruns_to_the_same_bytes(
    tmp_path, on_s3, monkeypatch, local_reference
):
    corpus, local_files, local_fates = local_reference
    url, config_file = _bucket_config(tmp_path, monkeypatch, corpus, "killed")
    cli = Path(sys.executable).parent / "snowcoder"
    run = subprocess.Popen(
        [str(cli), "--config", str(config_file), "materialize", "--select", SELECTION],
        env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert _first_objects(url, run) > 0
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the CLI, its run worker and step processes
        run.wait(timeout=30)
    assert _every_object_is_whole(url) == []

    config = load_config(config_file)
    lines: list[str] = []
    assert materialize(config, SELECTION, echo=lines.append).ok, lines[-20:]
    assert _every_object_is_whole(url) == []
    _assert_same_as_local(url, config, local_files, local_fates)
