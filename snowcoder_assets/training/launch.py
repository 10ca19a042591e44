"""Where a training phase runs: `[training] launcher = "subprocess" | "k8s"`.

`subprocess` (the default) runs `snowcoder_train` on the step's own machine through
`PipesSubprocessClient`. `k8s` launches one pod per phase through dagster-k8s's
`PipesK8sClient`: the pod runs `torchrun --standalone --nproc_per_node=<gpus> -m
snowcoder_train ...` on the image of `[training.k8s]` (else `$SNOWCODER_IMAGE`), asks for
`gpus` whole GPUs, and streams its logs and rank 0's Pipes messages back into the run, so the
asset reads the same metadata either way. The step that launches it only waits, so it needs no
GPU of its own (`[kubernetes] step_resources.checkpoints` can shrink its pod).

The pod gets configuration as plain values (`SNOWCODER_DATA_DIR`, which may be an `s3://` URL,
and the variables `env_vars` names, copied from the launching process) and credentials only as
Kubernetes secrets referenced by name (`env_secrets`, mounted with `envFrom`): no secret value is
ever written into a pod spec. dagster-k8s (and the kubernetes client) is imported only here, and
only when a phase is launched on Kubernetes.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from pydantic import Field, field_validator

from snowcoder_assets.storage import DATA_DIR_ENV_VAR
from snowcoder_assets.strict import StrictModel

IMAGE_ENV_VAR = "SNOWCODER_IMAGE"
NAMESPACE_ENV_VAR = "SNOWCODER_K8S_NAMESPACE"
# Dagster's Helm chart sets this on code-location pods (their image); a last resort here.
CURRENT_IMAGE_ENV_VAR = "DAGSTER_CURRENT_IMAGE"
TRAIN_COMPONENT = "snowcoder-train"
GPU_RESOURCE = "nvidia.com/gpu"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Words of names that hold credentials (HF_TOKEN, AWS_SECRET_ACCESS_KEY, OPENAI_API_KEY, ...):
# those travel in a secret (`env_secrets`), never as a value.
_SECRET_WORDS = {
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "KEY",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
}


class TrainingK8sConfig(StrictModel):
    """The pod each phase runs in under `launcher = "k8s"` (Kubernetes quantities)."""

    image: str = ""  # empty: $SNOWCODER_IMAGE, else the image of the run itself
    namespace: str = ""  # empty: $SNOWCODER_K8S_NAMESPACE, else the run's own namespace
    gpus: int = Field(default=1, ge=1)  # per pod: torchrun --nproc_per_node
    cpu: str = Field(default="8", pattern=r"^\d+(\.\d+)?m?$")
    memory: str = Field(default="64Gi", pattern=r"^\d+(\.\d+)?([EPTGMK]i?)?$")
    # /dev/shm for the data loader and NCCL (a container's default is 64 MiB)
    shm_size: str = Field(default="16Gi", pattern=r"^\d+(\.\d+)?([EPTGMK]i?)?$")
    # names of variables copied from the launching process (values of plain settings only)
    env_vars: list[str] = Field(default_factory=lambda: ["SNOWCODER_CONFIG", DATA_DIR_ENV_VAR])
    # Kubernetes secrets (by name) whose keys become the pod's environment (envFrom)
    env_secrets: list[str] = Field(default_factory=lambda: ["snowcoder-storage-credentials"])
    # a PersistentVolumeClaim mounted at a local data_dir (not needed for an object-store URL)
    data_volume_claim: str = ""
    service_account_name: str = ""  # empty: the namespace's default

    @field_validator("env_vars")
    @classmethod
    def _plain_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.match(_ENV_NAME, name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if _SECRET_WORDS & set(name.upper().split("_")):
                raise ValueError(
                    f"{name!r} looks like a credential: put it in a Kubernetes secret and list "
                    "the secret in env_secrets instead"
                )
        return names

    @field_validator("env_secrets")
    @classmethod
    def _secret_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.match(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", name):
                raise ValueError(f"{name!r} is not a Kubernetes secret name")
        return names


def pod_image(settings: TrainingK8sConfig) -> str:
    image = settings.image or os.environ.get(IMAGE_ENV_VAR) or os.environ.get(CURRENT_IMAGE_ENV_VAR)
    if not image:
        raise ValueError(
            f'[training] launcher = "k8s" needs an image: set [training.k8s] image or '
            f"${IMAGE_ENV_VAR}"
        )
    return image


def pod_namespace(settings: TrainingK8sConfig) -> str | None:
    """None lets dagster-k8s use the namespace it runs in (or the kubeconfig's)."""
    return settings.namespace or os.environ.get(NAMESPACE_ENV_VAR) or None


def pod_env(settings: TrainingK8sConfig, data_dir: str) -> dict[str, str]:
    """Plain values only: the named variables the launching process has, and the data_dir."""
    env = {name: os.environ[name] for name in settings.env_vars if name in os.environ}
    env[DATA_DIR_ENV_VAR] = data_dir  # the resolved one: a folder or an s3://... URL
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def pod_spec(settings: TrainingK8sConfig, data_dir: str) -> dict[str, Any]:
    """`base_pod_spec` of a phase's pod (dagster-k8s sets its image, command and env)."""
    size = {"cpu": settings.cpu, "memory": settings.memory, GPU_RESOURCE: str(settings.gpus)}
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}}
    ]
    if settings.data_volume_claim:
        if "://" in data_dir and not data_dir.startswith("file://"):
            raise ValueError(
                f"[training.k8s] data_volume_claim mounts a folder, but data_dir is {data_dir}"
            )
        mounts.append({"name": "data", "mountPath": data_dir.removeprefix("file://")})
        claim = {"claimName": settings.data_volume_claim}
        volumes.append({"name": "data", "persistentVolumeClaim": claim})
    container: dict[str, Any] = {
        "name": TRAIN_COMPONENT,
        # extended resources: requests must equal limits
        "resources": {"requests": dict(size), "limits": dict(size)},
        "envFrom": [{"secretRef": {"name": name}} for name in settings.env_secrets],
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        "restartPolicy": "Never",  # a failed phase fails the step; a rerun resumes it
    }
    if settings.service_account_name:
        spec["serviceAccountName"] = settings.service_account_name
    return spec


def pod_meta(phase: str) -> dict[str, Any]:
    return {
        "labels": {
            "app.kubernetes.io/component": TRAIN_COMPONENT,
            "snowcoder/phase": phase,
        }
    }


def k8s_pipes_client() -> Any:
    """dagster-k8s's Pipes client: in-cluster config when running in a pod, else kubeconfig."""
    from dagster_k8s import PipesK8sClient

    return PipesK8sClient()


def run_phase_pod(
    context: Any,
    client: Any,
    settings: TrainingK8sConfig,
    command: list[str],
    phase: str,
    data_dir: str,
) -> Any:
    """Run one phase in its own pod and wait for it (and for its deletion: every phase of a
    run gets the same pod name from dagster-k8s, so the next one must not collide)."""
    namespace = pod_namespace(settings)
    invocation = client.run(
        context=context,
        image=pod_image(settings),
        command=command,
        namespace=namespace,
        env=pod_env(settings, data_dir),
        base_pod_spec=pod_spec(settings, data_dir),
        base_pod_meta=pod_meta(phase),
    )
    _await_pod_deleted(context, namespace)
    return invocation


def _await_pod_deleted(context: Any, namespace: str | None, timeout: float = 300.0) -> None:
    import kubernetes
    from dagster_k8s.client import DagsterKubernetesClient
    from dagster_k8s.pipes import get_pod_name
    from dagster_k8s.utils import detect_current_namespace

    namespace = namespace or detect_current_namespace(None) or "default"
    name = get_pod_name(context.run_id, context.op.name)
    core_api = DagsterKubernetesClient.production_client().core_api
    deadline = time.monotonic() + timeout
    while True:
        try:
            core_api.read_namespaced_pod(name, namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return
            raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"pod {namespace}/{name} still exists {timeout:.0f}s after deletion")
        time.sleep(1.0)
