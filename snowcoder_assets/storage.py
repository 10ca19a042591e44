"""Where `data_dir` lives: a local folder or an fsspec URL (`s3://`, `gs://`, `hf://`, ...).

A local `data_dir` is a `pathlib.Path`, as it always was. A URL becomes a `upath.UPath`, which
has the same methods (`/`, `open`, `exists`, `rglob`, `read_text`, ...) over fsspec, so a stage
builds its paths the same way on both. The few things object storage does differently live
here and in `io.py`:

- a finished file is written to a local temporary file and uploaded in one PUT (or one
  multipart upload, which also appears only when complete), so readers never see half an
  object; a killed run leaves at most an unreferenced local temp file;
- readers hand pyarrow, polars and DuckDB an open file or the URL, never a local path;
- what must stay on a local disk (the sqlite Dagster instance when no `DAGSTER_HOME` is set,
  the DuckDB catalog of lineage views, scratch space) goes to `local_dir`.

Credentials come from each store's usual environment (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
`GOOGLE_APPLICATION_CREDENTIALS`, `HF_TOKEN`, ...), never from the configuration file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

DATA_DIR_ENV_VAR = "SNOWCODER_DATA_DIR"  # overrides [paths] data_dir (set on cluster pods)
LOCAL_DIR_ENV_VAR = "SNOWCODER_LOCAL_DIR"  # scratch and caches of an object-storage data_dir
LOCAL_PROTOCOLS = ("file", "local")

DataPath = Any  # pathlib.Path or upath.UPath: the same interface, no common base class
_OPENED: dict[str, Any] = {}  # object-storage filesystems of the data_dirs this process uses


def is_url(spec: str | os.PathLike[str]) -> bool:
    """`s3://bucket/x` and friends; `file://` URLs count as local paths."""
    text = spec if isinstance(spec, str) else str(spec)
    return "://" in text and text.split("://", 1)[0] not in LOCAL_PROTOCOLS


def is_remote(path: DataPath) -> bool:
    """True for a UPath on object storage (anything that is not a local `pathlib.Path`)."""
    return not isinstance(path, Path)


def data_path(spec: str | DataPath) -> DataPath:
    """A local Path for paths and `file://` URLs, a UPath for object-storage URLs (a Path or
    UPath already is returned as it is)."""
    if not isinstance(spec, str):
        return spec
    text = spec
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    if not is_url(text):
        return Path(text)
    from upath import UPath

    # No listings cache: other processes (parallel runs) add objects while this one lists.
    path = UPath(text.rstrip("/"), use_listings_cache=False)
    _OPENED.setdefault(path.protocol, path.fs)
    return path


def local_dir(data_dir: DataPath) -> Path:
    """The local folder for what cannot live on object storage: `data_dir` itself when it is
    local, else `SNOWCODER_LOCAL_DIR` or `~/.cache/snowcoder/<hash of the URL>`."""
    if not is_remote(data_dir):
        return data_dir
    explicit = os.environ.get(LOCAL_DIR_ENV_VAR)
    if explicit:
        return Path(explicit).expanduser().resolve()
    tag = hashlib.blake2b(str(data_dir).encode(), digest_size=6).hexdigest()
    return Path("~/.cache/snowcoder").expanduser() / tag


def url_of(path: DataPath) -> str:
    """What pyarrow, polars and DuckDB are given: a local path as a string, or the URL."""
    return str(path)


def arrow_filesystem(path: DataPath) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) for reading datasets with pyarrow."""
    if not is_remote(path):
        return None, str(path)
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(path.fs)), path.path


def upload(local_file: Path, target: DataPath) -> None:
    """Publish a finished local file as `target` in one request (a PUT, or a multipart upload
    that becomes visible only when complete)."""
    target.fs.put_file(str(local_file), target.path)
    target.fs.invalidate_cache(target.parent.path)


def connect_duckdb(database: str | os.PathLike[str] = ":memory:", read_only: bool = False) -> Any:
    """A DuckDB connection that reads and writes `s3://...` (etc.) through fsspec.

    DuckDB's own httpfs extension is downloaded at run time (not possible offline, and one more
    credential path); fsspec's filesystems serve instead. DuckDB asks a registered filesystem
    for `modified()`, which s3fs lacks: it is answered from the object's listing.
    """
    import duckdb

    con = duckdb.connect(str(database), read_only=read_only)
    for fs in _OPENED.values():
        if not hasattr(fs, "modified") or type(fs).modified is _fsspec_modified():
            fs.modified = _modified_from_info(fs)
        con.register_filesystem(fs)
    return con


def _fsspec_modified() -> Any:
    from fsspec.spec import AbstractFileSystem

    return AbstractFileSystem.modified


def _modified_from_info(fs: Any) -> Any:
    def modified(path: str) -> Any:
        info = fs.info(path)
        return info.get("LastModified") or info.get("mtime") or info.get("updated")

    return modified


def replace_folder(built: Path, target: DataPath) -> None:
    """Put a folder built locally in place of `target`.

    Locally two renames swap it in whole. On object storage each file is uploaded (each object
    appears whole), then the objects the new folder no longer has are deleted: a reader sees
    every object complete, and the Dagster materialization recorded after this returns is what
    says the folder is current.
    """
    if not is_remote(target):
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            os.replace(target, old)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return
    names = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    for name in sorted(names):
        upload(built / name, target / name)
    stale = [p for p in target.rglob("*") if p.is_file() and p.relative_to(target).as_posix()
             not in names] if target.exists() else []  # fmt: skip
    for path in stale:
        path.unlink()
    shutil.rmtree(built, ignore_errors=True)
