"""A small corpus of real stdlib modules, one repository per shard, and its configuration."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from tests.corpora import local_dir_source, write_config

STDLIB = Path(sysconfig.get_paths()["stdlib"])
REPOS = {
    "alpha": ["textwrap", "shlex"],
    "beta": ["fnmatch", "colorsys"],
    "gamma": ["bisect", "textwrap"],  # textwrap again: an exact duplicate across shards
}
PHASE1_SELECTION = "*phase1_corpus"


def add_repo(root: Path, name: str, modules: list[str]) -> None:
    for module in modules:
        target = root / name / f"{module}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((STDLIB / f"{module}.py").read_text())


def write_small_config(tmp_path: Path, data: str = "data", extra: str = "") -> Path:
    config = write_config(
        tmp_path / f"{data}.toml",
        tmp_path / data,
        local_dir_source("small", tmp_path / "code"),
        "shard_max_files = 2",
    )
    if extra:
        config.write_text(config.read_text() + extra)
    return config


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    for name, modules in REPOS.items():
        add_repo(tmp_path / "code", name, modules)
    return tmp_path / "code"
