"""The shard registry: which source units (repositories, input files) form which shard.

Assignments are append-only and stored in `<data_dir>/shards/<source>.parquet` (the data of the
`source_files` asset), so adding a repository never reshuffles existing shards: new units are
packed into new shards (bounded by bytes and files, never splitting a unit). Each shard's
fingerprint is reported to the Dagster instance as the data version of its `source_files`
partition (`raw/discovery.py`); a shard whose fingerprint changed is re-ingested.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig, partition_key
from snowcoder_assets.io import read_table, write_table
from snowcoder_assets.layout import shard_registry_path
from snowcoder_assets.sources import SourceUnit, build_source

RETIRED_UNIT = "\0retired:"  # registry row of a shard whose units all vanished

REGISTRY_SCHEMA = pa.schema(
    [
        ("unit_key", pa.string()),
        ("shard", pa.string()),
        ("num_bytes", pa.int64()),
        ("num_files", pa.int64()),
        ("fingerprint", pa.string()),
    ]
)


@dataclass(frozen=True)
class Shard:
    source: str
    shard: str
    unit_keys: tuple[str, ...]
    num_bytes: int
    num_files: int
    fingerprint: str

    @property
    def partition_key(self) -> str:
        return partition_key(self.source, self.shard)


def discover_shards(config: SnowcoderConfig, source_name: str) -> list[Shard]:
    """List the source, assign new units to new shards, persist, and return every shard.

    A shard whose units have all vanished is *retired*: it stays registered with no units, so
    it is ingested once more as empty and every stage's outputs for it become empty (its files
    leave the corpus and the lineage views) instead of lingering.
    """
    units = sorted(build_source(config, source_name).units(), key=lambda u: u.key)
    registry_path = shard_registry_path(config.data_dir, source_name)
    registered = load_assignments(registry_path)
    old = {k: v for k, v in registered.items() if not k.startswith(RETIRED_UNIT)}
    new_units = [u for u in units if u.key not in old]
    assigned = {**old, **_pack(new_units, _next_shard_number(registered.values()), config)}
    assigned = {u.key: assigned[u.key] for u in units}  # units that vanished leave their shard
    retired = sorted(set(registered.values()) - set(assigned.values()))
    shards = _group(source_name, units, assigned) + [
        Shard(source_name, shard, (), 0, 0, _fingerprint([])) for shard in retired
    ]
    _save(registry_path, units, assigned, retired)
    return sorted(shards, key=lambda s: s.shard)


def discover_all(config: SnowcoderConfig) -> list[Shard]:
    return [shard for source in config.sources for shard in discover_shards(config, source.name)]


def load_assignments(registry_path: Path) -> dict[str, str]:
    if not registry_path.is_file():
        return {}
    table = read_table(registry_path, columns=["unit_key", "shard"])
    return dict(zip(table["unit_key"].to_pylist(), table["shard"].to_pylist(), strict=True))


def load_shard(config: SnowcoderConfig, source_name: str, shard: str) -> Shard:
    """A registered shard as last discovered (the ingestion reads exactly these units)."""
    path = shard_registry_path(config.data_dir, source_name)
    if not path.is_file():
        raise LookupError(f"no shards registered for source {source_name!r}: run discovery first")
    rows = [
        r
        for r in read_table(path).to_pylist()
        if r["shard"] == shard and not r["unit_key"].startswith(RETIRED_UNIT)
    ]
    return (
        _group(
            source_name,
            [
                SourceUnit(r["unit_key"], r["num_bytes"], r["num_files"], r["fingerprint"])
                for r in rows
            ],
            {r["unit_key"]: shard for r in rows},
        )[0]
        if rows
        else Shard(source_name, shard, (), 0, 0, _fingerprint([]))
    )


def _pack(units: list[SourceUnit], first: int, config: SnowcoderConfig) -> dict[str, str]:
    limit_bytes, limit_files = config.ingest.shard_max_bytes, config.ingest.shard_max_files
    out: dict[str, str] = {}
    number, used_bytes, used_files = first, 0, 0
    for unit in units:
        full = (
            used_bytes + unit.num_bytes > limit_bytes or used_files + unit.num_files > limit_files
        )
        if used_files and full:
            number, used_bytes, used_files = number + 1, 0, 0
        out[unit.key] = f"{number:05d}"
        used_bytes += unit.num_bytes
        used_files += max(unit.num_files, 1)
    return out


def _next_shard_number(shards: Iterable[str]) -> int:
    return max((int(s) for s in shards), default=-1) + 1


def _group(source: str, units: list[SourceUnit], assigned: dict[str, str]) -> list[Shard]:
    members: dict[str, list[SourceUnit]] = {}
    for unit in units:
        members.setdefault(assigned[unit.key], []).append(unit)
    return [
        Shard(
            source=source,
            shard=shard,
            unit_keys=tuple(u.key for u in group),
            num_bytes=sum(u.num_bytes for u in group),
            num_files=sum(u.num_files for u in group),
            fingerprint=_fingerprint(group),
        )
        for shard, group in sorted(members.items())
    ]


def _fingerprint(units: list[SourceUnit]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for unit in sorted(units, key=lambda u: u.key):
        digest.update(f"{unit.key}\0{unit.fingerprint}\n".encode())
    return digest.hexdigest()


def _save(
    path: Path, units: list[SourceUnit], assigned: dict[str, str], retired: list[str]
) -> None:
    rows = [
        {
            "unit_key": u.key,
            "shard": assigned[u.key],
            "num_bytes": u.num_bytes,
            "num_files": u.num_files,
            "fingerprint": u.fingerprint,
        }
        for u in units
    ] + [
        {
            "unit_key": f"{RETIRED_UNIT}{shard}",
            "shard": shard,
            "num_bytes": 0,
            "num_files": 0,
            "fingerprint": "retired",
        }
        for shard in retired
    ]
    write_table(path, pa.Table.from_pylist(rows, schema=REGISTRY_SCHEMA))
