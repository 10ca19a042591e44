"""Kubernetes by configuration: `[orchestration] executor = "k8s"` runs every step in its own
pod (dagster-k8s's `k8s_job_executor`, under the instance's `K8sRunLauncher`).

Each asset's pod size is its `dagster-k8s/config` op tag (`pools.py`); `[kubernetes]
step_resources` overrides it per asset through the executor's `per_step_k8s_config`, so a
cluster's sizes are configuration, not code. dagster-k8s is imported only when chosen.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from snowcoder_assets.orchestration.pools import K8S_CONFIG_TAG, pod_tags
from snowcoder_assets.strict import StrictModel


class PodResources(StrictModel):
    """A step pod's size: Kubernetes quantities ("4", "500m"; "16Gi") and whole GPUs."""

    cpu: str = Field(pattern=r"^\d+(\.\d+)?m?$")
    memory: str = Field(pattern=r"^\d+(\.\d+)?([EPTGMK]i?)?$")
    gpus: int = Field(default=0, ge=0)


class KubernetesConfig(StrictModel):
    """Step pods under `executor = "k8s"`."""

    # asset name -> its pod size, instead of the size its op tag asks for
    step_resources: dict[str, PodResources] = Field(default_factory=dict)
    # steps of one run in flight at once (None: no limit beyond the cluster's)
    max_concurrent_steps: int | None = Field(default=None, ge=1)
    # extra environment variables to copy from the run pod into step pods (names only)
    env_vars: list[str] = Field(default_factory=list)


def step_overrides(config: KubernetesConfig) -> dict[str, dict[str, Any]]:
    """`per_step_k8s_config` of the executor: one entry per overridden asset (op name)."""
    overrides = {}
    for name, size in sorted(config.step_resources.items()):
        tag = pod_tags(size.cpu, size.memory, size.gpus)[K8S_CONFIG_TAG]
        if not size.gpus:  # dagster-k8s merges this into the op tag: say 0, or its GPU stays
            tag["container_config"]["resources"]["limits"]["nvidia.com/gpu"] = "0"
        overrides[name] = tag
    return overrides


def k8s_executor(config: KubernetesConfig) -> Any:
    """dagster-k8s's `k8s_job_executor` configured from `[kubernetes]`."""
    from dagster_k8s import k8s_job_executor

    settings: dict[str, Any] = {"per_step_k8s_config": step_overrides(config)}
    if config.max_concurrent_steps:
        settings["max_concurrent"] = config.max_concurrent_steps
    if config.env_vars:
        settings["env_vars"] = list(config.env_vars)
    return k8s_job_executor.configured(settings, name="snowcoder_k8s_executor")
