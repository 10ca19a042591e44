"""GitSource: files tracked at HEAD, read from the object store, odd entries recorded not read."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from snowcoder_assets.config import GitSourceConfig
from snowcoder_assets.sources.base import (
    REASON_BINARY,
    REASON_EMPTY,
    REASON_LANGUAGE_EXCLUDED,
    REASON_NOT_REGULAR,
    REASON_SYMLINK,
    REASON_TOO_LARGE,
    REASON_UNDECODABLE,
    RawRecord,
)
from snowcoder_assets.sources.git import EMPTY_FINGERPRINT, GitSource

MAX_BYTES = 100
ODD_NAME = "dir/odd name é.py"
# Independent of the machine's git configuration (autocrlf, hooks, signing).
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    ident = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    command = ["git", "-C", str(repo), *ident, *args]
    proc = subprocess.run(command, check=True, capture_output=True, text=True, env=GIT_ENV)
    return proc.stdout.strip()


def make_repo(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    git(folder, "init", "-q")
    write_files(folder, files)
    if files:
        commit(folder, "initial")
    return folder


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def commit(folder: Path, message: str) -> str:
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", message)
    return git(folder, "rev-parse", "HEAD")


def source(path: Path) -> GitSource:
    config = GitSourceConfig(name="code", kind="git", path=path)
    return GitSource(config, MAX_BYTES, "cp1252")


def read_all(src: GitSource) -> dict[tuple[str, str], RawRecord]:
    keys = [unit.key for unit in src.units()]
    records = list(src.read(keys))
    by_key = {(r.repo, r.path): r for r in records}
    assert len(by_key) == len(records)
    return by_key


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = make_repo(
        tmp_path / "proj",
        {
            "a.py": b"print('committed')\n",
            ODD_NAME: b"x = 1\n",
            "tab\tand\nnewline.py": b"y = 2\n",
            "img.bin": b"\x89PNG\x00\x01\x02",
            "latin.txt": b"\x81\x8d\x8f\x90\x9d",
            "empty.py": b"",
            "big.py": b"#" * (MAX_BYTES + 1),
        },
    )
    os.symlink("a.py", folder / "link.py")
    commit(folder, "add link")
    (folder / "a.py").write_text("print('changed, not committed')\n")
    (folder / "untracked.py").write_text("print('untracked')\n")
    return folder


def test_git_source_reads_files_tracked_at_head(repo: Path) -> None:
    records = read_all(source(repo))
    tracked = [ODD_NAME, "tab\tand\nnewline.py", "img.bin", "latin.txt", "empty.py", "big.py"]
    assert set(records) == {("proj", p) for p in ["a.py", "link.py", *tracked]}
    a = records["proj", "a.py"]
    assert (a.text, a.encoding, a.reason) == ("print('committed')\n", "utf-8", None)
    assert a.num_bytes == 19
    assert records["proj", ODD_NAME].text == "x = 1\n"
    assert records["proj", "tab\tand\nnewline.py"].text == "y = 2\n"


def test_git_source_records_unusable_files_with_reasons(repo: Path) -> None:
    records = read_all(source(repo))
    reasons = {path: (r.reason, r.detail) for (_, path), r in records.items() if r.reason}
    assert reasons == {
        "img.bin": (REASON_BINARY, None),
        "latin.txt": (REASON_UNDECODABLE, None),
        "empty.py": (REASON_EMPTY, None),
        "big.py": (REASON_TOO_LARGE, f"> {MAX_BYTES} bytes"),
        "link.py": (REASON_SYMLINK, "a.py"),
    }
    assert records["proj", "big.py"].num_bytes == MAX_BYTES + 1
    assert all(r.text is None for r in records.values() if r.reason)


def test_git_source_unit_is_head_commit_with_listing_totals(repo: Path) -> None:
    [unit] = source(repo).units()
    assert unit.key == "proj"
    assert unit.fingerprint == git(repo, "rev-parse", "HEAD")
    assert unit.num_files == 8
    assert unit.num_bytes == 19 + 6 + 6 + 7 + 5 + 0 + MAX_BYTES + 1 + len("a.py")


def test_git_source_fingerprint_changes_after_new_commit(repo: Path) -> None:
    before = next(source(repo).units()).fingerprint
    assert next(source(repo).units()).fingerprint == before  # working tree edits do not count
    head = commit(repo, "second")
    after = next(source(repo).units())
    assert after.fingerprint == head != before
    assert read_all(source(repo))["proj", "untracked.py"].text == "print('untracked')\n"


def test_git_source_folder_of_repositories(tmp_path: Path) -> None:
    make_repo(tmp_path / "alpha", {"main.py": b"a = 1\n"})
    make_repo(tmp_path / "beta", {"lib/b.rs": b"fn main() {}\n"})
    write_files(tmp_path, {"notes/readme.md": b"not a repository\n", "loose.py": b"x\n"})
    src = source(tmp_path)
    assert [u.key for u in src.units()] == ["alpha", "beta"]
    records = read_all(src)
    assert set(records) == {("alpha", "main.py"), ("beta", "lib/b.rs")}
    assert [r.path for r in src.read(["beta", "missing"])] == ["lib/b.rs"]


def test_git_source_empty_repository_has_no_files(tmp_path: Path) -> None:
    make_repo(tmp_path / "fresh", {})
    [unit] = source(tmp_path / "fresh").units()
    assert (unit.key, unit.num_files, unit.num_bytes) == ("fresh", 0, 0)
    assert unit.fingerprint == EMPTY_FINGERPRINT
    assert list(source(tmp_path / "fresh").read(["fresh"])) == []


def test_git_source_without_repository_raises(tmp_path: Path) -> None:
    write_files(tmp_path, {"plain/a.py": b"x = 1\n"})
    with pytest.raises(ValueError, match="not a git repository"):
        list(source(tmp_path).units())


def test_git_source_submodule_is_not_regular(tmp_path: Path) -> None:
    folder = make_repo(tmp_path / "outer", {"a.py": b"x = 1\n"})
    sha = git(folder, "rev-parse", "HEAD")
    git(folder, "update-index", "--add", "--cacheinfo", f"160000,{sha},vendor/sub")
    git(folder, "commit", "-q", "-m", "gitlink")
    records = read_all(source(folder))
    sub = records["outer", "vendor/sub"]
    assert (sub.reason, sub.detail, sub.text) == (REASON_NOT_REGULAR, "submodule", None)
    assert records["outer", "a.py"].text == "x = 1\n"


def test_git_source_language_gate_skips_reading(repo: Path) -> None:
    src = source(repo)
    src.language_gate = lambda path: REASON_LANGUAGE_EXCLUDED if path.endswith(".bin") else None
    records = read_all(src)
    assert records["proj", "img.bin"].reason == REASON_LANGUAGE_EXCLUDED
    assert records["proj", "a.py"].reason is None


def test_git_source_ignores_git_dir_from_environment(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_repo(tmp_path / "other", {"other.py": b"z = 3\n"})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert ("proj", "a.py") in read_all(source(repo))
