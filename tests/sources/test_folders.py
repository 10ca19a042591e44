"""Folder sources: local_dir repositories and the embedded python_install corpus."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

from snowcoder_assets.config import LocalDirSourceConfig, PythonInstallSourceConfig
from snowcoder_assets.sources.folders import LocalDirSource, PythonInstallSource
from tests.corpora import build_hostile_tree


def test_local_dir_repositories_are_subfolders_and_loose_files_form_root(tmp_path: Path):
    build_hostile_tree(tmp_path / "c", tmp_path / "out")
    source = LocalDirSource(
        LocalDirSourceConfig(name="s", kind="local_dir", path=tmp_path / "c"), 4096, "cp1252"
    )
    units = {u.key: u for u in source.units()}
    assert set(units) == {".", "bad", "good"}
    assert units["good"].num_files == 9
    records = {(r.repo, r.path): r for r in source.read(["good", "."])}
    assert ("good", "src/util.c") in records
    assert (".", "loose.py") in records
    assert records[("good", "main.py")].text == "def main():\n    return 42\n"


def test_local_dir_fingerprint_changes_when_a_file_changes(tmp_path: Path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.py").write_text("a = 1\n")
    source = LocalDirSource(
        LocalDirSourceConfig(name="s", kind="local_dir", path=tmp_path), 1000, "cp1252"
    )
    before = next(source.units()).fingerprint
    (tmp_path / "r" / "a.py").write_text("a = 22\n")
    assert next(source.units()).fingerprint != before


def test_local_dir_language_gate_skips_reading(tmp_path: Path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "lib.so").write_bytes(b"\x7fELF" + b"\0" * 100)
    source = LocalDirSource(
        LocalDirSourceConfig(name="s", kind="local_dir", path=tmp_path), 1000, "cp1252"
    )
    source.language_gate = lambda path: "unknown_language" if path.endswith(".so") else None
    (record,) = source.read(["r"])
    assert (record.reason, record.num_bytes) == ("unknown_language", 104)


def test_python_install_repos_are_top_level_packages_and_modules():
    config = PythonInstallSourceConfig(
        name="py", kind="python_install", site_packages=[], exclude=["test"]
    )
    source = PythonInstallSource(config, 1_000_000, "cp1252")
    repos = source.repositories()
    assert {"json", "os", "asyncio"} <= set(repos)
    assert "test" not in repos and "site-packages" not in repos
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = {r.path: r for r in source.read(["json"])}
    assert paths["json/decoder.py"].text == (stdlib / "json" / "decoder.py").read_text()
    (os_record,) = [r for r in source.read(["os"]) if r.path == "os.py"]
    assert os_record.repo == "os" and os_record.text


def test_python_install_site_packages_selection():
    config = PythonInstallSourceConfig(
        name="py", kind="python_install", stdlib=False, site_packages=["pydantic", "duckdb"]
    )
    repos = PythonInstallSource(config, 1_000_000, "cp1252").repositories()
    assert set(repos) == {"pydantic", "duckdb"}
    assert json.dumps(sorted(repos))  # names only, no dist-info folders
