"""The `git` source: the files tracked at HEAD of a repository, or of each repository in a folder.

Only committed content is read, straight from the object store: untracked and modified files in
the working tree are invisible, and the fingerprint (the HEAD commit) changes exactly when the
content can. Blobs stream through one `git cat-file --batch` process per repository; sizes come
from `ls-tree`, so files over the limit, links and submodules are recorded without reading them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from snowcoder_assets.config import GitSourceConfig
from snowcoder_assets.sources.base import (
    REASON_EMPTY,
    REASON_NOT_REGULAR,
    REASON_SYMLINK,
    REASON_TOO_LARGE,
    REASON_UNREADABLE,
    RawRecord,
    SourceUnit,
    record_from_bytes,
)

EMPTY_FINGERPRINT = "empty"  # a repository without commits
MAX_LINK_TARGET = 4096  # a "link" blob larger than any real path is not read
MODE_SYMLINK, MODE_SUBMODULE = "120000", "160000"
# Never prompt, never fetch missing blobs of partial clones, and keep messages parseable.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_NO_LAZY_FETCH": "1", "LC_ALL": "C"}


@dataclass(frozen=True)
class TreeEntry:
    """One `ls-tree --long` line: a tracked file at HEAD."""

    mode: str
    kind: str  # blob, or commit for a submodule
    sha: str
    size: int  # 0 for submodules
    path: str  # posix, relative to the repository root


class GitSource:
    """Repositories by folder name; `path` is one repository or a folder of them."""

    def __init__(self, config: GitSourceConfig, max_file_bytes: int, fallback: str) -> None:
        self.name = config.name
        self.path = config.path
        self.max_file_bytes = max_file_bytes
        self.fallback_encoding = fallback
        # Set by ingestion: a drop reason for a path, checked before a blob is read.
        self.language_gate: Callable[[str], str | None] | None = None
        if not self.path.is_dir():
            raise FileNotFoundError(f"source {config.name!r}: {self.path} is not a folder")

    def repositories(self) -> dict[str, Path]:
        """Repository name -> folder; subfolders that are not repositories are skipped."""
        if _is_repository(self.path):
            return {self.path.name: self.path}
        repos = {
            entry.name: entry
            for entry in sorted(self.path.iterdir())
            if entry.is_dir() and not entry.is_symlink() and _is_repository(entry)
        }
        if not repos:
            raise ValueError(
                f"source {self.name!r}: {self.path} is not a git repository "
                "and none of its subfolders is one"
            )
        return repos

    def units(self) -> Iterator[SourceUnit]:
        for repo, folder in self.repositories().items():
            head = head_commit(folder)
            entries = list(list_tree(folder, head)) if head else []
            num_bytes = sum(e.size for e in entries)
            yield SourceUnit(repo, num_bytes, len(entries), head or EMPTY_FINGERPRINT)

    def read(self, unit_keys: Iterable[str]) -> Iterator[RawRecord]:
        repositories = self.repositories()
        for repo in unit_keys:
            folder = repositories.get(repo)
            head = head_commit(folder) if folder else None
            if folder is None or head is None:
                continue  # gone since listing, or no commits: no files
            with BlobReader(folder) as blobs:
                for entry in list_tree(folder, head):
                    yield self._record(repo, entry, blobs)

    def _record(self, repo: str, entry: TreeEntry, blobs: BlobReader) -> RawRecord:
        """Classify from the tree entry first; read the blob only when it may be used."""
        path, size, limit = entry.path, entry.size, self.max_file_bytes
        if entry.mode == MODE_SUBMODULE:
            return RawRecord(repo, path, 0, reason=REASON_NOT_REGULAR, detail="submodule")
        if entry.mode == MODE_SYMLINK:
            target = _link_target(entry, blobs)
            return RawRecord(repo, path, 0, reason=REASON_SYMLINK, detail=target)
        if entry.kind != "blob" or not entry.mode.startswith("100"):
            detail = f"mode {entry.mode}"
            return RawRecord(repo, path, size, reason=REASON_NOT_REGULAR, detail=detail)
        if size > limit:
            return RawRecord(repo, path, size, reason=REASON_TOO_LARGE, detail=f"> {limit} bytes")
        if size == 0:
            return RawRecord(repo, path, 0, reason=REASON_EMPTY)
        gated = self.language_gate(path) if self.language_gate else None
        if gated:
            return RawRecord(repo, path, size, reason=gated)
        data = blobs.read(entry.sha)
        if data is None:
            return RawRecord(repo, path, size, reason=REASON_UNREADABLE, detail="object missing")
        return record_from_bytes(repo, path, data, limit, self.fallback_encoding)


class BlobReader:
    """One long-running `git cat-file --batch`: a request, then its answer, per blob."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._proc = subprocess.Popen(
            ["git", "-C", str(folder), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_env(),
        )

    def read(self, sha: str) -> bytes | None:
        """The object's bytes, or None when the repository lacks it."""
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(sha.encode("ascii") + b"\n")
        stdin.flush()
        header = stdout.readline().split()
        if len(header) != 3:  # "<sha> missing" (or ambiguous)
            if not header:
                raise RuntimeError(f"git cat-file stopped early in {self.folder}")
            return None
        size = int(header[2])
        data = stdout.read(size)
        if len(data) != size or stdout.read(1) != b"\n":
            raise RuntimeError(f"git cat-file sent a truncated object {sha} in {self.folder}")
        return data

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout:
            self._proc.stdout.close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def head_commit(folder: Path) -> str | None:
    """The HEAD commit, or None for a repository without commits yet."""
    proc = _run_git(folder, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if proc.returncode == 1 and not proc.stdout.strip():
        return None
    _check(proc, folder, "rev-parse")
    return proc.stdout.decode("ascii").strip()


def list_tree(folder: Path, commit: str) -> Iterator[TreeEntry]:
    """Every file of the commit's tree; -z keeps odd names (spaces, newlines, UTF-8) intact."""
    proc = _run_git(folder, "ls-tree", "-r", "-z", "--long", "--full-tree", commit)
    _check(proc, folder, "ls-tree")
    for item in proc.stdout.split(b"\0"):
        if not item:
            continue
        meta, _, raw_path = item.partition(b"\t")
        mode, kind, sha, size = meta.decode("ascii").split()
        path = raw_path.decode("utf-8", "backslashreplace")  # names need not be UTF-8
        yield TreeEntry(mode, kind, sha, 0 if size == "-" else int(size), path)


def _link_target(entry: TreeEntry, blobs: BlobReader) -> str:
    if entry.size > MAX_LINK_TARGET:
        return f"link target of {entry.size} bytes"
    data = blobs.read(entry.sha)
    return "(object missing)" if data is None else data.decode("utf-8", "backslashreplace")


def _is_repository(folder: Path) -> bool:
    return (folder / ".git").exists()  # a folder, or a file for worktrees and submodules


def _run_git(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, env=_env(), check=False
    )


def _check(proc: subprocess.CompletedProcess[bytes], folder: Path, what: str) -> None:
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"git {what} failed in {folder}: {message}")


def _env() -> dict[str, str]:
    """The caller's environment without GIT_* variables: GIT_DIR would override `-C`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**inherited, **_GIT_ENV}
