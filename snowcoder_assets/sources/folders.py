"""Sources whose repositories are folders on disk: `local_dir` and `python_install`.

Both map a repository name to a folder (or a single module file) and read it with the shared
hostile-input handling in `base.py`. Files inside VCS metadata folders are recorded, not read.
"""

from __future__ import annotations

import os
import stat
import sys
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from snowcoder_assets.config import LocalDirSourceConfig, PythonInstallSourceConfig
from snowcoder_assets.sources.base import (
    REASON_VCS_METADATA,
    ROOT_REPO,
    RawRecord,
    SourceUnit,
    fingerprint_tree,
    read_file_record,
    walk_files,
)


class FolderRepositories:
    """Repositories given as {name: folder or file}; shared reading and fingerprinting."""

    def __init__(self, name: str, max_file_bytes: int, fallback_encoding: str) -> None:
        self.name = name
        self.max_file_bytes = max_file_bytes
        self.fallback_encoding = fallback_encoding
        # Set by ingestion: a drop reason for a path's language, checked before any read.
        self.language_gate: Callable[[str], str | None] | None = None

    def repositories(self) -> dict[str, list[Path]]:
        """Repository name -> the top-level entries that make it up (folders or files)."""
        raise NotImplementedError

    def root_of(self, entry: Path) -> Path:
        """The folder that links must stay inside and paths are relative to."""
        raise NotImplementedError

    def units(self) -> Iterator[SourceUnit]:
        for repo, entries in sorted(self.repositories().items()):
            parts = [self._fingerprint_entry(entry) for entry in entries]
            fingerprint = "/".join(p[0] for p in parts)
            yield SourceUnit(repo, sum(p[1] for p in parts), sum(p[2] for p in parts), fingerprint)

    def read(self, unit_keys: Iterable[str]) -> Iterator[RawRecord]:
        repositories = self.repositories()
        for repo in unit_keys:
            for entry in repositories.get(repo, []):
                yield from self._read_entry(repo, entry)

    def _fingerprint_entry(self, entry: Path) -> tuple[str, int, int]:
        if entry.is_dir() and not entry.is_symlink():
            return fingerprint_tree(entry)
        try:
            st = os.lstat(entry)
            return f"{entry.name}:{st.st_size}:{st.st_mtime_ns}", st.st_size, 1
        except OSError:
            return f"{entry.name}:missing", 0, 1

    def _read_entry(self, repo: str, entry: Path) -> Iterator[RawRecord]:
        root = os.fspath(self.root_of(entry))
        prefix = len(root) + 1
        if not entry.is_dir() or entry.is_symlink():
            files: Iterable[tuple[str, bool]] = [(os.fspath(entry), False)]
        else:
            files = walk_files(entry)
        gate = self.language_gate
        for file_path, in_vcs in files:
            rel_path = file_path[prefix:]
            if os.sep != "/":
                rel_path = rel_path.replace(os.sep, "/")
            if in_vcs:
                yield RawRecord(repo, rel_path, _lstat_size(file_path), reason=REASON_VCS_METADATA)
                continue
            skip = gate(rel_path) if gate else None
            if skip:
                st = _lstat(file_path)
                if st is None or not stat.S_ISLNK(st.st_mode):
                    yield RawRecord(repo, rel_path, st.st_size if st else 0, reason=skip)
                    continue
            yield read_file_record(
                root, file_path, repo, rel_path, self.max_file_bytes, self.fallback_encoding
            )


class LocalDirSource(FolderRepositories):
    """Every immediate subfolder is a repository; loose files in the root form repo '.'."""

    def __init__(self, config: LocalDirSourceConfig, max_file_bytes: int, fallback: str) -> None:
        super().__init__(config.name, max_file_bytes, fallback)
        self.path = config.path
        if not self.path.is_dir():
            raise FileNotFoundError(f"source {config.name!r}: {self.path} is not a folder")

    def repositories(self) -> dict[str, list[Path]]:
        repos: dict[str, list[Path]] = {}
        for entry in sorted(self.path.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                repos[entry.name] = [entry]
            else:
                repos.setdefault(ROOT_REPO, []).append(entry)
        return repos

    def root_of(self, entry: Path) -> Path:
        if entry.is_dir() and not entry.is_symlink():
            return entry
        return self.path


class PythonInstallSource(FolderRepositories):
    """The running interpreter's stdlib and site-packages; repo = top-level package or module.

    A package folder and its module files of the same name (`six.py`) belong to one repository;
    `*.dist-info` folders and caches are left out, as they hold no source code.
    """

    SKIP = frozenset({"site-packages", "dist-packages", "__pycache__"})

    def __init__(
        self, config: PythonInstallSourceConfig, max_file_bytes: int, fallback: str
    ) -> None:
        super().__init__(config.name, max_file_bytes, fallback)
        self.config = config
        self._roots = python_install_roots(config.stdlib, config.site_packages != [])

    def repositories(self) -> dict[str, list[Path]]:
        repos: dict[str, list[Path]] = {}
        wanted = self.config.site_packages
        for kind, root in self._roots:
            for entry in sorted(root.iterdir()):
                repo = _top_level_name(entry)
                if repo is None or repo in self.SKIP or repo in self.config.exclude:
                    continue
                if kind == "site" and wanted != "*" and repo not in wanted:
                    continue
                repos.setdefault(repo, []).append(entry)
        return repos

    def root_of(self, entry: Path) -> Path:
        return entry.parent


def python_install_roots(stdlib: bool, site_packages: bool) -> list[tuple[str, Path]]:
    """(kind, folder) pairs of the running interpreter, stdlib first."""
    roots: list[tuple[str, Path]] = []
    if stdlib:
        roots.append(("stdlib", Path(sysconfig.get_paths()["stdlib"])))
    if site_packages:
        seen = set()
        for key in ("purelib", "platlib"):
            folder = Path(sysconfig.get_paths()[key])
            if folder.is_dir() and folder.resolve() not in seen:
                seen.add(folder.resolve())
                roots.append(("site", folder))
    if not roots:
        raise ValueError(f"python_install source reads nothing ({sys.executable})")
    return roots


def _top_level_name(entry: Path) -> str | None:
    name = entry.name
    if name.startswith((".", "_distutils_hack")) or name.endswith((".dist-info", ".egg-info")):
        return None
    if entry.is_dir() and not entry.is_symlink():
        return name
    stem = name.split(".", 1)[0]
    return stem or None


def _lstat(path: str | Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _lstat_size(path: str | Path) -> int:
    st = _lstat(path)
    return st.st_size if st else 0
