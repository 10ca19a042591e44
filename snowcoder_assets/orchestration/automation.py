"""Declarative automation: what the automation sensor materializes by itself.

CPU stages are eager: a new or changed shard, an upstream update or a new code version (a
changed threshold, once the code location reloads) materializes them, never while an upstream
is missing or running, and never past a failed blocking check. GPU stages (annotator, scoring,
training) and the tokenizer, which every token budget downstream depends on, run only for
partitions that appear after the condition was applied (`on_missing`); publishing never runs
by itself. The sensor is on by default.

Dagster 1.13 ignores data versions in `any_deps_updated` (the filter is disabled in
`CachingInstanceQueryer`), so the sensor re-runs downstream of every update; the data versions
stop the cascade in `snowcoder materialize` and in the UI's staleness instead.
"""

from __future__ import annotations

import dagster as dg

AUTOMATION_SENSOR = "snowcoder_automation"
# Asset metadata naming deps that order an asset but whose updates do not make it stale; the
# planner reads it, the asset's automation condition ignores them (`order_only`).
ORDER_ONLY_DEPS = "snowcoder/order_only_deps"


def cpu_eager(ignore: tuple[str, ...] = ()) -> dg.AutomationCondition:
    """`eager()`, also fired by a new code version, gated on upstream blocking checks; updates of
    the assets in `ignore` do not trigger it (they still order it: it waits while they run)."""
    condition = dg.AutomationCondition.eager().replace(
        "newly_missing",
        dg.AutomationCondition.newly_missing() | dg.AutomationCondition.code_version_changed(),
    )
    if ignore:
        condition = condition.replace(
            "any_deps_updated",
            dg.AutomationCondition.any_deps_updated().ignore(dg.AssetSelection.assets(*ignore)),
        )
    return condition & dg.AutomationCondition.all_deps_blocking_checks_passed()


def order_only(*keys: str) -> dict:
    """Decorator arguments for a CPU stage that waits for `keys` without being triggered by
    them: the metadata the planner reads, and the matching automation condition."""
    return {"metadata": {ORDER_ONLY_DEPS: list(keys)}, "automation_condition": cpu_eager(keys)}


CPU_EAGER = cpu_eager()
ON_MISSING = dg.AutomationCondition.on_missing()

automation_sensor = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Materializes what the assets' automation conditions ask for (CPU stages eager, "
    "GPU stages and the tokenizer on missing partitions, publishing never).",
)
