"""What every source yields, and the shared file reading that turns hostile bytes into reasons.

A source has two jobs: `units()` lists its units of new data cheaply (a repository for folder
sources, an input file or data shard for tabular ones) with a fingerprint that changes when
their content does; `read(unit_keys)` streams a `RawRecord` for every file of those units,
including the ones that cannot be used, which carry a drop `reason` instead of text.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# Drop reasons recorded by ingestion (stage `ingest`); snake_case names, asserted in tests.
REASON_BINARY = "binary"
REASON_UNDECODABLE = "undecodable"
REASON_EMPTY = "empty"
REASON_TOO_LARGE = "too_large"
REASON_UNREADABLE = "unreadable"
REASON_SYMLINK = "symlink"
REASON_SYMLINK_OUTSIDE_ROOT = "symlink_outside_root"
REASON_BROKEN_SYMLINK = "broken_symlink"
REASON_NOT_REGULAR = "not_regular_file"
REASON_VCS_METADATA = "vcs_metadata"
REASON_UNKNOWN_LANGUAGE = "unknown_language"
REASON_LANGUAGE_EXCLUDED = "language_not_included"
REASON_CORRUPT_ROW = "corrupt_row"
REASON_CORRUPT_FILE = "corrupt_file"
REASON_DUPLICATE_PATH = "duplicate_path"

VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr"})
ROOT_REPO = "."  # repository name of loose files directly in a local_dir source's root
_CONTROL_CHARS = frozenset(range(0, 32)) - {9, 10, 12, 13}


@dataclass(frozen=True)
class SourceUnit:
    """A unit of new data that is never split across shards."""

    key: str  # repository name, or input file / data shard id for tabular sources
    num_bytes: int
    num_files: int
    fingerprint: str  # changes whenever the unit's content may have changed


@dataclass
class RawRecord:
    """One file as read from a source: text when usable, else the reason it is not."""

    repo: str
    path: str
    num_bytes: int
    text: str | None = None
    encoding: str | None = None
    reason: str | None = None
    detail: str | None = None
    lang_hint: str | None = None  # a dataset's own language label, used when the name says none
    stars: int | None = None
    licenses: list[str] | None = field(default=None)


class Source(Protocol):
    name: str

    def units(self) -> Iterator[SourceUnit]:
        """List the source's units (cheap: metadata only)."""
        ...

    def read(self, unit_keys: Iterable[str]) -> Iterator[RawRecord]:
        """Stream every file of the given units, usable or not."""
        ...


def decode_text(data: bytes, fallback_encoding: str) -> tuple[str | None, str | None, str]:
    """Decode file bytes as text: UTF-8 (BOM stripped), UTF-16 with a BOM, then the fallback.

    Returns (text, encoding, reason); text is None when the bytes are binary (NUL bytes
    outside UTF-16) or decode under none of the encodings. The fallback (strict cp1252 by
    default) only accepts results without control characters, so random bytes stay undecodable.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16", ""
        except UnicodeDecodeError:
            return None, None, REASON_UNDECODABLE
    if b"\0" in data:
        return None, None, REASON_BINARY
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig", ""
        return data.decode("utf-8"), "utf-8", ""
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode(fallback_encoding)
    except UnicodeDecodeError:
        return None, None, REASON_UNDECODABLE
    if any(ord(ch) in _CONTROL_CHARS for ch in text):
        return None, None, REASON_UNDECODABLE
    return text, fallback_encoding, ""


def read_file_record(
    root: str | Path,
    file_path: str | Path,
    repo: str,
    rel_path: str,
    max_bytes: int,
    fallback: str,
) -> RawRecord:
    """Read one directory entry into a record without following links or reading huge files."""
    try:
        st = os.lstat(file_path)
    except OSError as exc:
        return RawRecord(repo, rel_path, 0, reason=REASON_UNREADABLE, detail=_os_error(exc))
    if stat.S_ISLNK(st.st_mode):
        return _symlink_record(root, file_path, repo, rel_path)
    if stat.S_ISDIR(st.st_mode):
        return RawRecord(repo, rel_path, 0, reason=REASON_UNREADABLE, detail="folder not listable")
    if not stat.S_ISREG(st.st_mode):
        return RawRecord(repo, rel_path, 0, reason=REASON_NOT_REGULAR, detail=_file_kind(st))
    if st.st_size == 0:
        return RawRecord(repo, rel_path, 0, reason=REASON_EMPTY)
    if st.st_size > max_bytes:
        return RawRecord(
            repo, rel_path, st.st_size, reason=REASON_TOO_LARGE, detail=f"> {max_bytes} bytes"
        )
    try:
        # O_NOFOLLOW: the entry may have been swapped for a link since lstat.
        fd = os.open(file_path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        return RawRecord(
            repo, rel_path, st.st_size, reason=REASON_UNREADABLE, detail=_os_error(exc)
        )
    return record_from_bytes(repo, rel_path, data, max_bytes, fallback)


def record_from_bytes(
    repo: str, rel_path: str, data: bytes, max_bytes: int, fallback: str
) -> RawRecord:
    """Classify and decode bytes already in memory (files and binary dataset columns alike)."""
    size = len(data)
    if size == 0:
        return RawRecord(repo, rel_path, 0, reason=REASON_EMPTY)
    if size > max_bytes:
        return RawRecord(
            repo, rel_path, size, reason=REASON_TOO_LARGE, detail=f"> {max_bytes} bytes"
        )
    text, encoding, reason = decode_text(data, fallback)
    if text is None:
        return RawRecord(repo, rel_path, size, reason=reason)
    return RawRecord(repo, rel_path, size, text=text, encoding=encoding)


def record_from_text(repo: str, rel_path: str, text: str, max_bytes: int) -> RawRecord:
    """Classify text that a dataset already holds as a string."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates (e.g. a JSON "\\ud800" escape): not text
        return RawRecord(
            repo, rel_path, len(text), reason=REASON_UNDECODABLE, detail="lone surrogate code point"
        )
    if size == 0:
        return RawRecord(repo, rel_path, 0, reason=REASON_EMPTY)
    if size > max_bytes:
        return RawRecord(
            repo, rel_path, size, reason=REASON_TOO_LARGE, detail=f"> {max_bytes} bytes"
        )
    if "\0" in text:
        return RawRecord(repo, rel_path, size, reason=REASON_BINARY)
    return RawRecord(repo, rel_path, size, text=text, encoding="utf-8")


def printable_name(name: str) -> str:
    """A repo or path name that parquet can store: undecodable bytes shown as \\xNN escapes.

    File names that are not UTF-8 reach Python as surrogate escapes (PEP 383)."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        try:
            raw = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = name.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")


def _symlink_record(root: str | Path, file_path: str | Path, repo: str, rel_path: str) -> RawRecord:
    """Links are recorded, never followed: a target inside the root is ingested on its own."""
    try:
        target = os.readlink(file_path)
    except OSError as exc:
        return RawRecord(repo, rel_path, 0, reason=REASON_UNREADABLE, detail=_os_error(exc))
    resolved = Path(os.path.realpath(file_path))  # non-strict: terminates on loops
    try:
        resolved.relative_to(os.path.realpath(root))
    except ValueError:
        return RawRecord(repo, rel_path, 0, reason=REASON_SYMLINK_OUTSIDE_ROOT, detail=target)
    try:
        os.stat(file_path)
    except OSError as exc:
        kind = "link loop" if exc.errno == errno.ELOOP else "target missing"
        return RawRecord(
            repo, rel_path, 0, reason=REASON_BROKEN_SYMLINK, detail=f"{kind}: {target}"
        )
    return RawRecord(repo, rel_path, 0, reason=REASON_SYMLINK, detail=target)


def walk_files(top: str | Path) -> Iterator[tuple[str, bool]]:
    """Every non-directory entry under `top` in sorted order, never descending into links.

    Yields (path, inside_vcs_metadata) as strings (this is the ingestion hot loop). Directory
    links are yielded as entries (and then recorded as links) rather than walked, so link
    loops cannot hang the walk.
    """
    stack: list[tuple[str, bool]] = [(os.fspath(top), False)]
    while stack:
        folder, in_vcs = stack.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError:
            yield folder, in_vcs  # recorded as unreadable by read_file_record
            continue
        subdirs = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append((entry.path, in_vcs or entry.name in VCS_DIRS))
            else:
                yield entry.path, in_vcs
        stack.extend(reversed(subdirs))


def fingerprint_tree(top: str | Path) -> tuple[str, int, int]:
    """(fingerprint, bytes, files) of a folder from names, sizes and mtimes: no content read."""
    digest = hashlib.blake2b(digest_size=16)
    prefix = len(os.fspath(top)) + 1
    total_bytes = total_files = 0
    for path, _ in walk_files(top):
        try:
            st = os.lstat(path)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        digest.update(f"{path[prefix:]}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
        total_bytes += max(size, 0)
        total_files += 1
    return digest.hexdigest(), total_bytes, total_files


def _os_error(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "OSError")
    return f"{name}: {exc.strerror or exc}"


def _file_kind(st: os.stat_result) -> str:
    if stat.S_ISFIFO(st.st_mode):
        return "fifo"
    if stat.S_ISSOCK(st.st_mode):
        return "socket"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return "device"
    return "special"
