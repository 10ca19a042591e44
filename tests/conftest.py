"""Shared fixtures: isolated Dagster homes and configs, and a corpus of hostile files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.corpora import MAX_FILE_BYTES, build_hostile_tree, local_dir_source, write_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """`snowcoder --config` exports SNOWCODER_CONFIG for its children; undo it after each test."""
    monkeypatch.delenv("SNOWCODER_CONFIG", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away Dagster instance with the project's dagster.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def hostile_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(config file, source folder) for a local_dir source of hostile files."""
    folder = tmp_path / "corpus"
    build_hostile_tree(folder, tmp_path / "outside")
    config = write_config(
        tmp_path / "snowcoder.toml",
        tmp_path / "data",
        local_dir_source("hostile", folder),
        f"max_file_bytes = {MAX_FILE_BYTES}",
    )
    monkeypatch.setenv("SNOWCODER_CONFIG", str(config))
    return config, folder
