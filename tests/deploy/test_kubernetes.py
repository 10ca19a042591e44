"""deploy/ against dagster-k8s's own classes, with a mocked Kubernetes API (no cluster).

The run launcher is built from `deploy/dagster.yaml`; step pods come from `k8s_job_executor`
as the project configures it, launched by dagster-k8s's `K8sStepHandler`. Asserted: a GPU
asset's pod asks for `nvidia.com/gpu`, a CPU stage's for its CPU and memory, `[kubernetes]`
overrides a size, and pods carry the storage URL but no secret value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import create_context_free_log_manager
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.init import InitExecutorContext
from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext
from dagster._core.launcher import LaunchRunContext
from dagster._core.test_utils import create_run_for_test, environ, instance_for_test
from dagster._grpc.types import ExecuteStepArgs
from dagster_k8s import K8sRunLauncher
from dagster_k8s.executor import _K8S_EXECUTOR_CONFIG_SCHEMA, K8sStepHandler

from snowcoder_assets.orchestration.kubernetes import KubernetesConfig, k8s_executor
from tests.corpora import local_dir_source, write_config

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"AWS_SECRET_ACCESS_KEY": "s3-secret-never-in-a-pod", "DAGSTER_PG_PASSWORD": "pg-pw-x"}
ENV = {
    "SNOWCODER_K8S_NAMESPACE": "snowcoder",
    "SNOWCODER_IMAGE": "registry.example/snowcoder:1",
    "SNOWCODER_DATA_DIR": "s3://corpora/snowcoder",
    **SECRETS,
}


def _run_launcher_section() -> dict:
    launcher = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    return launcher


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """An instance whose run launcher is deploy/dagster.yaml's K8sRunLauncher, its Kubernetes
    API mocked (storage stays sqlite here: Postgres has its own tests)."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.py").write_text("print(1)\n")
    source = local_dir_source("local", tmp_path / "files")
    config = write_config(tmp_path / "snowcoder.toml", tmp_path / "data", source)
    monkeypatch.setenv("SNOWCODER_CONFIG", str(config))
    batch_api = mock.MagicMock()
    with (
        environ(ENV),
        mock.patch("dagster_k8s.launcher.load_kubernetes_config"),
        mock.patch("kubernetes.config.load_incluster_config"),
        instance_for_test(overrides={"run_launcher": _run_launcher_section()}) as instance,
    ):
        launcher = instance.run_launcher
        assert isinstance(launcher, K8sRunLauncher)
        launcher._api_client.batch_api = batch_api
        yield instance, launcher, batch_api


def _job(asset: str):
    repo = ReconstructableRepository.for_module("snowcoder_assets.definitions", "defs", str(ROOT))
    job = repo.get_reconstructable_job("__ASSET_JOB")
    return job.get_subset(asset_selection={dg.AssetKey(asset)})


def _created_job(batch_api: mock.MagicMock):
    (name, _, kwargs), *_ = batch_api.method_calls
    assert name == "create_namespaced_job"
    assert kwargs["namespace"] == "snowcoder"
    return kwargs["body"]


def _container(body) -> dict:
    return body.spec.template.spec.containers[0].to_dict()


def _step_pod(instance, asset: str, kube: KubernetesConfig) -> dict:
    """The Job dagster-k8s's step handler creates for `asset`'s step under our executor."""
    job = _job(asset)
    executor_def = k8s_executor(kube)
    mapped = executor_def.apply_config_mapping({})  # what the configured executor passes on
    assert mapped.success, mapped.errors
    processed = process_config(
        resolve_to_config_type(_K8S_EXECUTOR_CONFIG_SCHEMA), mapped.value["config"]
    )
    executor = executor_def.executor_creation_fn(
        InitExecutorContext(
            job=job, executor_def=executor_def, executor_config=processed.value, instance=instance
        )
    )
    run = create_run_for_test(
        instance, job_name="__ASSET_JOB", job_code_origin=job.get_python_origin()
    )
    plan = create_execution_plan(job)
    plan_context = PlanOrchestrationContext(
        plan_data=PlanData(
            job=job,
            dagster_run=run,
            instance=instance,
            execution_plan=plan,
            raise_on_error=True,
            retry_mode=RetryMode.DISABLED,
        ),
        log_manager=create_context_free_log_manager(instance, run),
        executor=executor,
        output_capture=None,
    )
    step_keys = [step.key for step in plan.steps]
    batch_api = mock.MagicMock()
    handler: K8sStepHandler = executor._step_handler
    handler._api_client.batch_api = batch_api
    context = StepHandlerContext(
        instance=instance,
        plan_context=plan_context,
        steps=plan.steps,
        execute_step_args=ExecuteStepArgs(job.get_python_origin(), run.run_id, step_keys),
    )
    list(handler.launch_step(context))
    return _container(_created_job(batch_api))


def test_run_pod_from_deploy_config_has_storage_url_and_secret_refs_only(cluster):
    instance, launcher, batch_api = cluster
    job = _job("file_signals")
    run = create_run_for_test(
        instance, job_name="__ASSET_JOB", job_code_origin=job.get_python_origin()
    )
    launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    body = _created_job(batch_api)
    container = _container(body)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SNOWCODER_DATA_DIR"] == "s3://corpora/snowcoder"
    assert container["image"] == "registry.example/snowcoder:1"
    secret_refs = {e["secret_ref"]["name"] for e in container["env_from"] if e.get("secret_ref")}
    assert {"snowcoder-storage-credentials", "snowcoder-postgres"} <= secret_refs
    rendered = json.dumps(body.to_dict(), default=str)
    assert not [name for name, value in SECRETS.items() if value in rendered]


@pytest.mark.parametrize(
    ("asset", "gpus", "cpu", "memory"),
    [
        ("quality_annotator", 1, "8", "64Gi"),
        ("evaluation", 1, "8", "64Gi"),
        ("file_signals", 0, "2", "4Gi"),
        ("dup_clusters", 0, "4", "16Gi"),
    ],
)
def test_step_pod_asks_for_what_the_asset_needs(cluster, asset, gpus, cpu, memory):
    instance, _, _ = cluster
    resources = _step_pod(instance, asset, KubernetesConfig())["resources"]
    assert resources["requests"] == {"cpu": cpu, "memory": memory}
    assert resources["limits"].get("nvidia.com/gpu", "0") == str(gpus)
    assert (resources["limits"]["cpu"], resources["limits"]["memory"]) == (cpu, memory)


def test_kubernetes_config_overrides_one_assets_pod(cluster):
    instance, _, _ = cluster
    kube = KubernetesConfig.model_validate(
        {"step_resources": {"quality_scores": {"cpu": "16", "memory": "120Gi", "gpus": 2}}}
    )
    resources = _step_pod(instance, "quality_scores", kube)["resources"]
    assert resources["limits"] == {"cpu": "16", "memory": "120Gi", "nvidia.com/gpu": "2"}
    untouched = _step_pod(instance, "raw_files", kube)["resources"]
    assert untouched["limits"] == {"cpu": "2", "memory": "4Gi"}


def test_checkpoints_step_holds_no_gpu_when_training_runs_in_pods_of_its_own(cluster):
    from snowcoder_assets.config import load_config
    from snowcoder_assets.definitions import step_pods

    instance, _, _ = cluster
    config = load_config(os.environ["SNOWCODER_CONFIG"])
    assert _step_pod(instance, "checkpoints", step_pods(config))["resources"]["limits"] == {
        "cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"
    }  # fmt: skip
    training = config.training.model_copy(update={"launcher": "k8s"})
    in_pods = config.model_copy(update={"training": training})
    resources = _step_pod(instance, "checkpoints", step_pods(in_pods))["resources"]
    # "0", not absent: dagster-k8s merges the override into the asset's op tag
    assert resources["limits"] == {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "0"}
    assert resources["requests"] == {"cpu": "1", "memory": "2Gi"}
