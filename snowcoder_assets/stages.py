"""Completion markers: what a stage consumed, so unchanged partitions are skipped on re-run.

Each per-partition stage writes `<data_dir>/<stage>/<source>/<shard>.done.json` last, holding the
digest of its inputs (upstream digests, configuration, code version). A partition is current when
its marker's input digest equals the digest computed now; anything else (no marker, a changed
shard, a changed threshold, a changed upstream decision) makes it run again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from snowcoder_assets.io import read_json, write_json


def digest(*parts: Any) -> str:
    """A short stable hash of JSON-serializable parts (configs as dicts, upstream digests)."""
    payload = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(payload.encode(), digest_size=12).hexdigest()


def marker_path(data_dir: Path, stage: str, source: str, shard: str) -> Path:
    return data_dir / stage / source / f"{shard}.done.json"


def read_marker(data_dir: Path, stage: str, source: str, shard: str) -> dict[str, Any] | None:
    path = marker_path(data_dir, stage, source, shard)
    return read_json(path) if path.is_file() else None


def write_marker(
    data_dir: Path, stage: str, source: str, shard: str, input_digest: str, **stats: Any
) -> str:
    """Record a finished partition; returns its output digest (what downstream stages consume)."""
    output_digest = digest(stage, input_digest, stats)
    write_json(
        marker_path(data_dir, stage, source, shard),
        {"input_digest": input_digest, "output_digest": output_digest, **stats},
    )
    return output_digest


def output_digest(data_dir: Path, stage: str, source: str, shard: str) -> str | None:
    marker = read_marker(data_dir, stage, source, shard)
    return marker.get("output_digest") if marker else None


def is_current(data_dir: Path, stage: str, source: str, shard: str, input_digest: str) -> bool:
    marker = read_marker(data_dir, stage, source, shard)
    return marker is not None and marker.get("input_digest") == input_digest


# Global stages (dedup clustering, corpora, tokenizer, annotator) keep one marker each, outside
# their own output folders (which are swapped in whole), in `<data_dir>/_markers/`.


def global_marker_path(data_dir: Path, stage: str) -> Path:
    return data_dir / "_markers" / f"{stage}.done.json"


def write_global_marker(data_dir: Path, stage: str, input_digest: str, **stats: Any) -> str:
    """Record a finished global stage; its output digest depends on its inputs only."""
    output = digest(stage, input_digest)
    write_json(
        global_marker_path(data_dir, stage),
        {"input_digest": input_digest, "output_digest": output, **stats},
    )
    return output


def global_output_digest(data_dir: Path, stage: str) -> str | None:
    path = global_marker_path(data_dir, stage)
    return read_json(path).get("output_digest") if path.is_file() else None


def global_is_current(data_dir: Path, stage: str, input_digest: str) -> bool:
    path = global_marker_path(data_dir, stage)
    return path.is_file() and read_json(path).get("input_digest") == input_digest
