"""What `snowcoder materialize` runs: the selection's missing or out-of-date asset partitions,
read from the instance, grouped into runs that respect the graph.

An asset partition needs a run when the instance has no materialization of it, when its
latest materialization carries another code version than the definitions (Dagster's
`dagster/code_version` tag), when a file that materialization recorded is gone or holds other
bytes, or when an upstream partition was materialized since with a different data version.
This is Dagster's own staleness rule, evaluated in bulk per asset: Dagster's stale-status
resolver skips partitioned dependencies past 100 partitions, and its automation conditions
compare with the previous sensor tick rather than with the last materialization.

New data flows through at once: a partition that is missing or has new upstream data pulls
its downstream into the same plan (and, where they share partitions, the same run), so a new or
changed shard runs its whole chain in one go. A re-run for a new code version (a changed
threshold) or for files changed on disk does not: the next plan, made when those runs end,
sees whether their data version changed, so an unchanged output stops the cascade there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from snowcoder_assets.orchestration.automation import ORDER_ONLY_DEPS
from snowcoder_assets.orchestration.records import (
    Materialization,
    content_changed,
    latest_materializations,
    latest_storage_ids,
)
from snowcoder_assets.versions import changed_outputs, recorded_outputs

MISSING = "missing"
NEW_CODE = "new code version"
ON_DISK = "changed on disk"
NEW_DATA = "new upstream data"
UPSTREAM = "upstream re-runs"
FORCED = "forced"
FLOWS_DOWN = (MISSING, NEW_DATA, UPSTREAM, FORCED)  # reasons whose new data the children get


@dataclass(frozen=True)
class Work:
    key: dg.AssetKey
    partition: str | None
    reason: str


@dataclass
class RunSpec:
    """One Dagster run: assets in graph order, over one partition range (or none)."""

    keys: list[dg.AssetKey]
    partitions: list[str] | None
    after: set[int] = field(default_factory=set)
    size: int = 0  # asset partitions it materializes (for progress)

    def label(self) -> str:
        names = ", ".join(k.to_user_string() for k in self.keys)
        if not self.partitions:
            return names
        span = (
            self.partitions[0]
            if len(self.partitions) == 1
            else (
                f"{self.partitions[0]}..{self.partitions[-1]} ({len(self.partitions)} partitions)"
            )
        )
        return f"{names} [{span}]"


@dataclass
class Plan:
    work: list[Work]
    blocked: list[str]
    runs: list[RunSpec]

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for item in self.work:
            reasons = out.setdefault(item.key.to_user_string(), {})
            reason = item.reason.split(":")[0]
            reasons[reason] = reasons.get(reason, 0) + 1
        return out


class _Records:
    """The instance's latest records, fetched once per asset and kept for the plan."""

    def __init__(self, instance: dg.DagsterInstance, graph) -> None:
        self.instance, self.graph = instance, graph
        self._full: dict[dg.AssetKey, dict] = {}
        self._ids: dict[dg.AssetKey, dict] = {}

    def partitioned(self, key: dg.AssetKey) -> bool:
        return self.graph.get(key).is_partitioned

    def full(self, key: dg.AssetKey) -> dict[str | None, Materialization]:
        if key not in self._full:
            self._full[key] = latest_materializations(self.instance, key, self.partitioned(key))
        return self._full[key]

    def ids(self, key: dg.AssetKey) -> dict[str | None, int]:
        if key not in self._ids:
            self._ids[key] = latest_storage_ids(self.instance, key, self.partitioned(key))
        return self._ids[key]

    def changed_since(self, key: dg.AssetKey, partition: str | None, storage_id: int) -> bool:
        """Was `key` (partition) materialized after event `storage_id` with other content?"""
        latest_id = self.ids(key).get(partition)
        if latest_id is None or latest_id <= storage_id:
            return False
        latest = self.full(key).get(partition)
        return latest is None or content_changed(self.instance, key, latest, storage_id)


def make_plan(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: Iterable[dg.AssetKey],
    partitions: list[str],
    data_dir: Path,
    max_runs: int,
    force: bool = False,
) -> Plan:
    """The work the selection needs now, and the runs that do it."""
    graph = defs.resolve_asset_graph()
    selected = set(selection)
    order = [k for k in graph.toposorted_asset_keys if k in selected]
    records = _Records(instance, graph)
    requested: dict[dg.AssetKey, dict[str | None, str]] = {}
    for key in order:
        node = graph.get(key)
        for partition in partitions if node.is_partitioned else [None]:
            reason = (
                FORCED
                if force
                else _own_reason(records, graph, key, partition, data_dir, partitions)
            )
            reason = reason or _inherited(graph, requested, key, partition, partitions)
            if reason:
                requested.setdefault(key, {})[partition] = reason
    blocked = _drop_blocked(records, graph, requested, order, partitions)
    work = [Work(k, p, r) for k in order for p, r in requested.get(k, {}).items()]
    runs = _group(graph, requested, order, partitions, max_runs)
    return Plan(work, blocked, runs)


def _order_only(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    names = graph.get(key).metadata.get(ORDER_ONLY_DEPS)
    values = getattr(names, "data", getattr(names, "value", names)) or []
    return {dg.AssetKey.from_user_string(n) for n in values}


def _parent_partitions(graph, key, partition, parent, partitions) -> list[str | None]:
    if not graph.get(parent).is_partitioned:
        return [None]
    return [partition] if graph.get(key).is_partitioned else list(partitions)


def _label(key: dg.AssetKey, partition: str | None) -> str:
    return key.to_user_string() + (f"[{partition}]" if partition else "")


def _own_reason(records: _Records, graph, key, partition, data_dir: Path, partitions) -> str | None:
    latest = records.full(key).get(partition)
    if latest is None:
        return MISSING
    if latest.code_version != graph.get(key).code_version:
        return NEW_CODE
    outputs = recorded_outputs(latest.metadata)
    changed = changed_outputs(data_dir, outputs) if outputs else []
    if changed:
        return f"{ON_DISK}: {changed[0]}"
    for parent in graph.get(key).parent_keys - _order_only(graph, key):
        for q in _parent_partitions(graph, key, partition, parent, partitions):
            if records.changed_since(parent, q, latest.storage_id):
                return f"{NEW_DATA}: {_label(parent, q)}"
    return None


def _inherited(graph, requested, key, partition, partitions) -> str | None:
    """A parent in the plan that brings new data (missing, new upstream data) pulls this
    partition in; order-only parents do not."""
    for parent in graph.get(key).parent_keys - _order_only(graph, key):
        asked = requested.get(parent, {})
        for q in _parent_partitions(graph, key, partition, parent, partitions):
            if asked.get(q, "").split(":")[0] in FLOWS_DOWN:
                return f"{UPSTREAM}: {parent.to_user_string()}"
    return None


def _producers(graph, parent: dg.AssetKey) -> set[dg.AssetKey]:
    """Who makes a parent exist: itself, or for an external asset the assets reporting it
    (none for `source_files`, which discovery reports)."""
    node = graph.get(parent)
    return set(node.parent_keys) if node.is_external else {parent}


def _will_exist(graph, requested, parent: dg.AssetKey, q: str | None) -> bool:
    if graph.get(parent).is_external:
        return any(p in requested for p in _producers(graph, parent))
    return q in requested.get(parent, {})


def _missing_input(records, graph, requested, key, partition, partitions) -> str | None:
    for parent in graph.get(key).parent_keys:
        if not _producers(graph, parent):
            continue
        for q in _parent_partitions(graph, key, partition, parent, partitions):
            if q not in records.ids(parent) and not _will_exist(graph, requested, parent, q):
                return _label(parent, q)
    return None


def _drop_blocked(records, graph, requested, order, partitions) -> list[str]:
    """Remove work whose inputs will not exist (a missing parent nothing in the plan makes);
    returns what was removed, for the user."""
    blocked = []
    for key in order:
        for partition in list(requested.get(key, {})):
            missing = _missing_input(records, graph, requested, key, partition, partitions)
            if missing:
                blocked.append(f"{_label(key, partition)} waits for {missing}")
                del requested[key][partition]
        if key in requested and not requested[key]:
            del requested[key]
    return blocked


def _batches(keys: list[str], partitions: list[str], per_run: int, max_runs: int) -> list[tuple]:
    """Contiguous ranges (in partition order) of the requested keys, at most `per_run` each,
    split further so that up to `max_runs` runs can work at once."""
    wanted, ranges, current = set(keys), [], []
    for key in partitions:
        if key in wanted:
            current.append(key)
        elif current:
            ranges.append(current)
            current = []
    if current:
        ranges.append(current)
    size = max(1, min(per_run, -(-len(keys) // max(1, max_runs))))
    return [tuple(r[i : i + size]) for r in ranges for i in range(0, len(r), size)]


def _group(graph, requested, order, partitions, max_runs) -> list[RunSpec]:
    """Put each (asset, batch) into the run of its parents when it can share it."""
    runs: list[RunSpec] = []
    where: dict[dg.AssetKey, list[tuple]] = {}  # key -> [(batch or None, run index)]
    for key in order:
        if key not in requested:
            continue
        node = graph.get(key)
        if node.is_partitioned:
            per_run = node.backfill_policy.max_partitions_per_run if node.backfill_policy else 1
            # In a pool (one step at a time), more runs would only wait for each other.
            slots = 1 if node.pools else max_runs
            batches = _batches(list(requested[key]), partitions, per_run or 1, slots)
        else:
            batches = [None]
        for batch in batches:
            parents = _parent_runs(graph, requested, where, key, batch)
            index = _joinable(runs, parents, batch, alone=len(batches) == 1)
            if index is None:
                runs.append(RunSpec([], list(batch) if batch else None, parents))
                index = len(runs) - 1
            if batch and runs[index].partitions is None:
                runs[index].partitions = list(batch)
            runs[index].keys.append(key)
            runs[index].size += len(batch) if batch else 1
            where.setdefault(key, []).append((batch, index))
    return runs


def _parent_runs(graph, requested, where, key, batch) -> set[int]:
    """Runs holding this node's parents (producers of external parents included)."""
    found: set[int] = set()
    for parent in graph.get(key).parent_keys:
        for producer in _producers(graph, parent):
            for other, index in where.get(producer, []):
                if batch is None or other is None or set(other) & set(batch):
                    found.add(index)
    return found


def _ancestors(runs: list[RunSpec], index: int) -> set[int]:
    seen, todo = set(), list(runs[index].after)
    while todo:
        i = todo.pop()
        if i not in seen:
            seen.add(i)
            todo.extend(runs[i].after)
    return seen


def _joinable(runs: list[RunSpec], parents: set[int], batch, alone: bool) -> int | None:
    """A parent run this node can join: every other parent run finishes before it, and the
    partitions agree. A partitioned node joins an unpartitioned run only when it has a single
    batch (else the other batches would wait for this one)."""
    for index in sorted(parents, reverse=True):
        run = runs[index]
        if not parents - {index} <= _ancestors(runs, index):
            continue
        if batch is None or (run.partitions is None and alone):
            return index
        if run.partitions is not None and tuple(run.partitions) == batch:
            return index
    return None
