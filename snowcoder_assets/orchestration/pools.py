"""Dagster concurrency pools and the Kubernetes pod each kind of step asks for.

Pools (limits in the instance's dagster.yaml: one step at a time each): global assets that
write shared files (the dedup state, corpora, the tokenizer, the manifest) run in
`global_writers`, so a UI backfill and a CLI run never write them at the same time; GPU stages
run in `gpu`.

Pods: every asset carries a `dagster-k8s/config` op tag with its CPU, memory and GPU requests.
It is on the asset, not on a job, because backfill and automation runs are launched without
job tags (dagster-io/dagster#26720), and `k8s_job_executor` reads step pods' settings from op
tags only. `[kubernetes] step_resources` in the configuration overrides them per asset.
"""

from __future__ import annotations

from typing import Any

GLOBAL_WRITERS = "global_writers"
GPU = "gpu"
K8S_CONFIG_TAG = "dagster-k8s/config"


def pod_tags(cpu: str, memory: str, gpus: int = 0) -> dict[str, Any]:
    """The op tag that sizes a step's pod: requests = limits for CPU and memory, and
    `nvidia.com/gpu` (limits only, as the device plugin requires) when `gpus` > 0."""
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)  # a Kubernetes quantity
    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}
    return {K8S_CONFIG_TAG: {"container_config": {"resources": resources}}}


# One source shard (<= 0.5 GB of files) streams in bounded memory on one core or two.
SHARD_POD = pod_tags("2", "4Gi")
# Global assets read every shard's small outputs (band keys, decisions, corpus lists).
GLOBAL_POD = pod_tags("4", "16Gi")
# Scoring, generation, evaluation and training: one GPU.
GPU_POD = pod_tags("8", "64Gi", gpus=1)
