"""Reading what the Dagster instance recorded: latest materializations, versions, tags.

Every question about "what ran, on what" goes through these few functions, in bulk (one query
per asset for all its partitions), so planning stays cheap as partitions grow. The tag names
are Dagster's own (`dagster/code_version`, `dagster/data_version`, `dagster/input_...`). The
one writer here, `report_runless_materializations`, records many runless materializations
in bulk for the same reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    get_input_event_pointer_tag,
)
from dagster._core.events import DagsterEvent, StepMaterializationData
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID
from dagster._time import get_current_timestamp

MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION
CHUNK = 500  # storage ids per query (SQLite limits bound variables)
EVENT_BATCH = 1000  # runless events per `store_event_batch` call (one INSERT on Postgres)


@dataclass(frozen=True)
class Materialization:
    """The parts of one materialization event the planner and the stages use."""

    storage_id: int
    partition: str | None
    tags: Mapping[str, str]
    metadata: Mapping[str, Any]

    @property
    def code_version(self) -> str | None:
        return self.tags.get(CODE_VERSION_TAG)

    @property
    def data_version(self) -> str | None:
        return self.tags.get(DATA_VERSION_TAG)

    def input_event_pointer(self, key: dg.AssetKey) -> int | None:
        value = self.tags.get(get_input_event_pointer_tag(key))
        return int(value) if value and value.isdigit() else None


def data_version_tags(version: str) -> dict[str, str]:
    """Tags that give a reported (runless or logged) materialization its data version."""
    return {DATA_VERSION_TAG: version, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"}


def report_runless_materializations(
    instance: dg.DagsterInstance, events: Sequence[dg.AssetMaterialization]
) -> None:
    """`instance.report_runless_asset_event` for many materializations, written in batches.

    The entries are the ones Dagster 1.13 builds for a runless event (`AssetMethods.
    _report_runless_asset_event` -> `report_dagster_event`), handed to the event log storage's
    `store_event_batch`, as `handle_new_event` does for a batch when `DAGSTER_EVENT_BATCH_SIZE`
    is set; the rest of `handle_new_event` does nothing for runless asset events (no run to
    update, no listeners on the runless run id). On Postgres a batch is one INSERT of the
    events, one of their indexed tags and one update of the asset's row (from the batch's last
    event, hence one asset key per batch); one event at a time costs three new connections and
    five statements (~30 ms). Storages without a batch path (SQLite, in-memory) store each.
    """
    by_key: dict[dg.AssetKey, list[dg.AssetMaterialization]] = {}
    for event in events:
        by_key.setdefault(event.asset_key, []).append(event)
    for same_key in by_key.values():
        for start in range(0, len(same_key), EVENT_BATCH):
            entries = [_runless_entry(e) for e in same_key[start : start + EVENT_BATCH]]
            instance.event_log_storage.store_event_batch(entries)


def _runless_entry(event: dg.AssetMaterialization) -> dg.EventLogEntry:
    return dg.EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message="",
        run_id=RUNLESS_RUN_ID,
        timestamp=get_current_timestamp(),
        job_name=RUNLESS_JOB_NAME,
        dagster_event=DagsterEvent(
            event_type_value=MATERIALIZATION.value,
            event_specific_data=StepMaterializationData(event),
            job_name=RUNLESS_JOB_NAME,
        ),
    )


def latest_storage_ids(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitioned: bool
) -> dict[str | None, int]:
    """Storage id of the latest materialization of each partition (or of the asset)."""
    if partitioned:
        return dict(instance.get_latest_storage_id_by_partition(key, MATERIALIZATION))
    records = instance.get_asset_records([key])
    entry = records[0].asset_entry if records else None
    if entry is None or entry.last_materialization_record is None:
        return {}
    return {None: entry.last_materialization_record.storage_id}


def latest_materializations(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitioned: bool
) -> dict[str | None, Materialization]:
    """The latest materialization of each partition (or of the asset), fetched in bulk."""
    return _by_storage_ids(instance, key, latest_storage_ids(instance, key, partitioned).values())


def _by_storage_ids(
    instance: dg.DagsterInstance, key: dg.AssetKey, storage_ids: Iterable[int]
) -> dict[str | None, Materialization]:
    out: dict[str | None, Materialization] = {}
    wanted = sorted(storage_ids)
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, storage_ids=chunk), limit=len(chunk)
        )
        for record in result.records:
            out[record.partition_key] = _materialization(record)
    return out


def latest_data_versions(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, str]:
    """Data version of the latest materialization of each partition (one indexed query)."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        key, MATERIALIZATION, [DATA_VERSION_TAG]
    )
    return {p: t[DATA_VERSION_TAG] for p, t in tags.items() if DATA_VERSION_TAG in t}


def materialization_before(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None, storage_id: int
) -> Materialization | None:
    """The latest materialization of `key` (partition) older than event `storage_id`."""
    record = instance.get_latest_data_version_record(
        key, is_source=False, partition_key=partition, before_cursor=storage_id
    )
    return _materialization(record) if record is not None else None


def content(found: Materialization) -> str | None:
    """What a materialization holds: the digest of the files it recorded for its own partition
    (exact even when one run covered a batch, whose data version is the batch's:
    dagster#34013), else its data version."""
    from snowcoder_assets.versions import data_version, recorded_outputs

    outputs = recorded_outputs(found.metadata)
    return data_version([outputs]).value if outputs else found.data_version


def content_changed(
    instance: dg.DagsterInstance, key: dg.AssetKey, latest: Materialization, storage_id: int
) -> bool:
    """Does `latest` hold other content than its partition had just after event `storage_id`?"""
    if latest.storage_id <= storage_id:
        return False
    before = materialization_before(instance, key, latest.partition, storage_id + 1)
    return before is None or content(before) != content(latest)


def updated_since(
    instance: dg.DagsterInstance, key: dg.AssetKey, storage_id: int | None
) -> set[str]:
    """Partitions of `key` materialized after event `storage_id` with other content (only
    those newer records are read in full)."""
    ids = latest_storage_ids(instance, key, partitioned=True)
    if storage_id is None:
        return {p for p in ids if p is not None}
    newer = _by_storage_ids(instance, key, (i for i in ids.values() if i > storage_id))
    return {
        p
        for p, found in newer.items()
        if p is not None and content_changed(instance, key, found, storage_id)
    }


def own_latest(context: dg.AssetExecutionContext) -> Materialization | None:
    """This asset's previous materialization, as the running step sees it."""
    found = latest_materializations(context.instance, context.asset_key, partitioned=False)
    return found.get(None)


def materialized_partitions(
    instance: dg.DagsterInstance, key: str | dg.AssetKey, registered: Iterable[str]
) -> list[str]:
    """Registered partitions of `key` that the instance has a materialization of, in order."""
    done = instance.get_materialized_partitions(dg.AssetKey.from_coercible(key))
    return [p for p in registered if p in done]


def _materialization(record: dg.EventLogRecord) -> Materialization:
    entry = record.event_log_entry
    materialization = entry.asset_materialization
    return Materialization(
        storage_id=record.storage_id,
        partition=record.partition_key,
        tags=dict(entry.tags or {}),
        metadata=dict(materialization.metadata) if materialization else {},
    )
