"""Code versions and data versions: how Dagster knows what changed.

A stage's `code_version` hashes the source of the modules that compute it and the configuration
sections it reads, so a changed threshold changes `filtered_files`' version and not
`file_signals`'. Every materialization reports a `data_version` made of the digests of the files
it wrote, and records those files (size, mtime, digest) in its metadata, so a file wiped or edited
on disk is noticed instead of trusted (`changed_outputs`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from snowcoder_assets.io import file_digest

OUTPUTS_KEY = "snowcoder/outputs"
Record = dict[str, list]  # relative path -> [size, mtime_ns, digest]


def code_version(modules: Sequence[str], *settings: Any) -> str:
    """Hash of the modules' source files (found, not imported: the definitions load in every
    run's process, and a stage's torch must not) and the JSON of the configuration parts."""
    hasher = hashlib.blake2b(digest_size=8)
    for name in modules:
        hasher.update(_module_file(name).read_bytes())
    for part in settings:
        payload = part.model_dump(mode="json") if hasattr(part, "model_dump") else part
        hasher.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return hasher.hexdigest()


def _module_file(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no module {name!r} to version")
    return Path(spec.origin)


def outputs_record(data_dir: Path, paths: Iterable[Path], previous: Record | None = None) -> Record:
    """What a materialization wrote, keyed by path relative to `data_dir` (moves keep working).
    Digests of files `previous` recorded with the same size and mtime are reused, not re-read."""
    record: Record = {}
    previous = previous or {}
    for path in sorted(set(paths)):
        stat = path.stat()
        name = path.relative_to(data_dir).as_posix()
        known = previous.get(name)
        if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            record[name] = list(known)
        else:
            record[name] = [stat.st_size, stat.st_mtime_ns, file_digest(path)]
    return record


def data_version(records: Iterable[Record]) -> dg.DataVersion:
    """One version for the files of one materialization (a partition, or a batch of them)."""
    hasher = hashlib.blake2b(digest_size=12)
    for record in records:
        for name, (_size, _mtime, file_hash) in sorted(record.items()):
            hasher.update(f"{name}\0{file_hash}\n".encode())
    return dg.DataVersion(hasher.hexdigest())


def outputs_metadata(record: Record) -> dict[str, dg.MetadataValue]:
    return {OUTPUTS_KEY: dg.MetadataValue.json(record)}


def recorded_outputs(metadata: Mapping[str, Any]) -> Record | None:
    value = metadata.get(OUTPUTS_KEY)
    if value is None:
        return None
    return dict(getattr(value, "data", value))


def changed_outputs(data_dir: Path, record: Record) -> list[str]:
    """Recorded files that are gone or hold other bytes now (a changed mtime alone is checked
    by digest, so a rewrite with the same content is not a change)."""
    changed = []
    for name, (size, mtime_ns, file_hash) in record.items():
        path = data_dir / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            changed.append(name)
            continue
        if stat.st_size != size or (
            stat.st_mtime_ns != mtime_ns and file_digest(path) != file_hash
        ):
            changed.append(name)
    return changed
