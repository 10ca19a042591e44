"""`[training] launcher = "k8s"`: a pod per phase through dagster-k8s's PipesK8sClient.

No cluster: the Kubernetes API is faked the way dagster-k8s's own tests do it (a
`DagsterKubernetesClient` whose `core_api` records the pod it is asked to create and serves
logs), so the real `PipesK8sClient.run` builds the pod, and the Pipes messages the fake pod
"prints" reach the asset as they would from a real trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pydantic import ValidationError

from snowcoder_assets.config import ConfigError, load_config
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.tokens.manifest import TrainingConfig
from snowcoder_assets.training import assets as training_assets
from snowcoder_assets.training.launch import TrainingK8sConfig, pod_env, pod_spec
from tests.corpora import local_dir_source

SECRET_VALUE = "wJalrXUtnFEMI-not-a-real-secret-K7MDENG"
IMAGE = "registry.example/snowcoder:1"


def _config(tmp_path: Path, training_toml: str = "") -> Path:
    source = tmp_path / "corpus"
    source.mkdir(exist_ok=True)
    (source / "a.py").write_text("print(1)\n")
    path = tmp_path / "snowcoder.toml"
    path.write_text(
        f'[paths]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n'
        + local_dir_source("local", source)
        + training_toml
    )
    return path


K8S_TOML = """
[training]
launcher = "k8s"

[training.k8s]
gpus = 4
cpu = "16"
memory = "128Gi"
"""


@pytest.fixture(autouse=True)
def _cluster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a run pod has: the image and namespace, and storage credentials in its env."""
    for name in ("SNOWCODER_DATA_DIR", "KUBERNETES_SERVICE_HOST", "DAGSTER_CURRENT_IMAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SNOWCODER_IMAGE", IMAGE)
    monkeypatch.setenv("SNOWCODER_K8S_NAMESPACE", "snowcoder")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-not-a-real-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_VALUE)


# -- configuration -------------------------------------------------------------------------


def test_subprocess_is_the_default(tmp_path):
    config = load_config(_config(tmp_path))
    assert config.training.launcher == "subprocess"
    assert config.training.k8s.gpus == 1
    assert config.training.k8s.env_vars == ["SNOWCODER_CONFIG", "SNOWCODER_DATA_DIR"]
    assert config.training.k8s.env_secrets == ["snowcoder-storage-credentials"]


def test_unknown_launcher_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"training\.launcher"):
        load_config(_config(tmp_path, '[training]\nlauncher = "slurm"\n'))
    with pytest.raises(ValidationError):
        TrainingConfig(launcher="ray")  # type: ignore[arg-type]


def test_unknown_and_bad_k8s_settings_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"training\.k8s\.replicas: unknown key"):
        load_config(_config(tmp_path, "[training.k8s]\nreplicas = 2\n"))
    with pytest.raises(ConfigError, match=r"training\.k8s\.gpus"):
        load_config(_config(tmp_path, "[training.k8s]\ngpus = 0\n"))
    with pytest.raises(ValidationError, match="not a Kubernetes secret name"):
        TrainingK8sConfig(env_secrets=["Storage_Credentials"])


@pytest.mark.parametrize(
    "name", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "HF_TOKEN", "OPENAI_API_KEY"]
)
def test_credentials_cannot_be_passed_as_values(name):
    with pytest.raises(ValidationError, match="env_secrets"):
        TrainingK8sConfig(env_vars=[name])
    TrainingK8sConfig(env_vars=["TOKENIZERS_PARALLELISM", "AWS_ENDPOINT_URL"])  # plain settings


def test_the_launcher_changes_no_code_version(tmp_path):
    """Where a phase runs is not what it trains: no asset goes stale when it moves to a pod."""
    from snowcoder_assets.tokens import assets as token_assets

    local = load_config(_config(tmp_path))
    pods = load_config(_config(tmp_path, K8S_TOML))
    assert pods.training.launcher == "k8s"
    assert (
        "launcher" not in pods.training.model_dump() and "k8s" not in pods.model_dump()["training"]
    )
    assert (
        pods.training.model_dump() == local.training.model_dump() == TrainingConfig().model_dump()
    )
    for module in (training_assets, token_assets):
        assert module.code_versions(pods) == module.code_versions(local)


# -- the pod -------------------------------------------------------------------------------


def test_pod_spec_builds_a_valid_pod_with_gpus_and_secrets_by_name():
    from dagster_k8s.pipes import build_pod_body

    settings = TrainingK8sConfig(gpus=4, data_volume_claim="")
    data_dir = "s3://bucket/snowcoder"
    command = training_assets.train_command(
        f"{data_dir}/phase_manifest.json", "phase1", 4, torchrun=True
    )
    pod = build_pod_body(
        pod_name="dagster-run-checkpoints",
        image=IMAGE,
        command=command,
        env_vars=pod_env(settings, data_dir),
        base_pod_spec=pod_spec(settings, data_dir),
        base_pod_meta=None,
    )
    (container,) = pod.spec.containers
    assert container.image == IMAGE
    assert container.command[:3] == ["torchrun", "--standalone", "--nproc_per_node=4"]
    assert container.command[3:7] == [
        "-m",
        "snowcoder_train",
        "--manifest",
        f"{data_dir}/phase_manifest.json",
    ]
    for quantities in (container.resources.requests, container.resources.limits):
        assert quantities["nvidia.com/gpu"] == "4"
    env = {e.name: e.value for e in container.env}
    assert env["SNOWCODER_DATA_DIR"] == data_dir
    assert [e.secret_ref.name for e in container.env_from] == ["snowcoder-storage-credentials"]
    assert {"/dev/shm"} <= {m.mount_path for m in container.volume_mounts}
    assert pod.spec.restart_policy == "Never"
    assert SECRET_VALUE not in json.dumps(pod.to_dict(), default=str)


def test_a_volume_claim_is_mounted_at_a_local_data_dir():
    settings = TrainingK8sConfig(data_volume_claim="snowcoder-data")
    spec = pod_spec(settings, "/mnt/data")
    (container,) = spec["containers"]
    assert {"name": "data", "mountPath": "/mnt/data"} in container["volumeMounts"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "snowcoder-data"}} in spec[
        "volumes"
    ]
    with pytest.raises(ValueError, match="data_volume_claim"):
        pod_spec(settings, "s3://bucket/snowcoder")


# -- the asset, through the real PipesK8sClient against a fake Kubernetes API ---------------


class FakeCoreApi:
    """The CoreV1Api calls PipesK8sClient (and the launcher) make; each created pod "trains"
    by writing its phase's final checkpoint and printing Pipes messages to its log."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.created: list[tuple[str, Any]] = []
        self.deleted: list[str] = []
        self.logs: list[bytes] = []

    def create_namespaced_pod(self, namespace, body):
        self.created.append((namespace, body))
        phase = body.metadata.labels["snowcoder/phase"]
        final = self.data_dir / "checkpoints" / phase / "final"
        final.mkdir(parents=True)
        (final / "model.safetensors").write_bytes(phase.encode())
        metrics = [{"step": step, "loss": 5.0 - step} for step in (1, 2, 3)]
        (final.parent / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
        messages = [
            {"method": "opened", "params": {}},
            {
                "method": "report_asset_materialization",
                "params": {
                    "asset_key": "checkpoints",
                    "metadata": {"steps": {"raw_value": 3, "type": "int"}},
                    "data_version": None,
                },
            },
            {"method": "closed", "params": {}},
        ]
        self.logs = [
            f"2026-01-01T00:00:0{i}.000000000Z ".encode()
            + json.dumps({"__dagster_pipes_version": "0.1", **m}).encode()
            + b"\n"
            for i, m in enumerate(messages)
        ]

    def read_namespaced_pod_log(self, name, namespace, **kwargs):
        return iter(self.logs)

    def delete_namespaced_pod(self, name, namespace):
        self.deleted.append(name)

    def read_namespaced_pod(self, name, namespace):
        import kubernetes

        raise kubernetes.client.ApiException(status=404, reason="Not Found")


@pytest.fixture
def fake_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeCoreApi:
    from unittest import mock

    import kubernetes
    from dagster_k8s.client import DagsterKubernetesClient

    core_api = FakeCoreApi(tmp_path / "data")
    client = mock.MagicMock(spec=DagsterKubernetesClient)
    client.core_api = core_api
    monkeypatch.setattr(
        DagsterKubernetesClient, "production_client", staticmethod(lambda *a, **k: client)
    )
    monkeypatch.setattr(kubernetes.config, "load_kube_config", lambda *a, **k: None)
    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda *a, **k: None)
    return core_api


def _materialize_checkpoints(config_path: Path) -> dg.ExecuteInProcessResult:
    data_dir = load_config(config_path).data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    phases = [{"name": "phase1"}, {"name": "phase2"}]
    (data_dir / "phase_manifest.json").write_text(json.dumps({"phases": phases}))
    return dg.materialize(
        [training_assets.checkpoints],
        resources={
            "snowcoder": SnowcoderConfigResource(config_path=str(config_path)),
            "pipes_subprocess_client": dg.PipesSubprocessClient(),
        },
    )


def test_checkpoints_runs_one_pod_per_phase(tmp_path, fake_cluster, monkeypatch):
    config_path = _config(tmp_path, K8S_TOML)
    monkeypatch.setenv("SNOWCODER_CONFIG", str(config_path))

    def no_local_training(*args, **kwargs):
        raise AssertionError("launcher = k8s must not train on the step's machine")

    monkeypatch.setattr(dg.PipesSubprocessClient, "run", no_local_training)
    result = _materialize_checkpoints(config_path)
    assert result.success

    assert [body.metadata.labels["snowcoder/phase"] for _, body in fake_cluster.created] == [
        "phase1",
        "phase2",
    ]
    data_dir = str(tmp_path / "data")
    for (namespace, pod), phase in zip(fake_cluster.created, ["phase1", "phase2"], strict=True):
        assert namespace == "snowcoder"
        (container,) = pod.spec.containers
        assert container.image == IMAGE
        assert container.command == [
            "torchrun", "--standalone", "--nproc_per_node=4", "-m", "snowcoder_train",
            "--manifest", f"{data_dir}/phase_manifest.json", "--phase", phase,
            "--asset-key", "checkpoints",
        ]  # fmt: skip
        assert container.resources.limits == {
            "cpu": "16",
            "memory": "128Gi",
            "nvidia.com/gpu": "4",
        }
        assert container.resources.requests == container.resources.limits
        env = {e.name: e.value for e in container.env}
        assert env["SNOWCODER_DATA_DIR"] == data_dir
        assert env["SNOWCODER_CONFIG"] == str(config_path)
        assert "DAGSTER_PIPES_CONTEXT" in env  # rank 0 reports through Pipes
        assert not {"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"} & set(env)
        assert [e.secret_ref.name for e in container.env_from] == ["snowcoder-storage-credentials"]
        assert SECRET_VALUE not in json.dumps(pod.to_dict(), default=str)
    assert len(fake_cluster.deleted) == 2

    (event,) = result.asset_materializations_for_node("checkpoints")
    assert event.metadata["phase1_steps"].value == 3
    assert event.metadata["phase2_steps"].value == 3
    assert "loss_curves" in event.metadata


def test_an_object_store_data_dir_is_passed_as_a_string(monkeypatch):
    """The data_dir may be an s3:// URL: the pod gets it verbatim, the manifest as a URL."""
    from unittest import mock

    from snowcoder_assets.training.launch import run_phase_pod

    client = mock.MagicMock()
    context = mock.MagicMock()
    monkeypatch.setattr("snowcoder_assets.training.launch._await_pod_deleted", lambda *a: None)
    settings = TrainingK8sConfig(gpus=2, image="img:2", namespace="ml")
    data_dir = "s3://bucket/snowcoder"
    command = training_assets.train_command(
        f"{data_dir}/phase_manifest.json", "phase2", 2, torchrun=True
    )
    run_phase_pod(context, client, settings, command, "phase2", data_dir)
    kwargs = client.run.call_args.kwargs
    assert kwargs["image"] == "img:2" and kwargs["namespace"] == "ml"
    assert kwargs["command"][2] == "--nproc_per_node=2"
    assert kwargs["command"][kwargs["command"].index("--manifest") + 1] == (
        "s3://bucket/snowcoder/phase_manifest.json"
    )
    assert kwargs["env"]["SNOWCODER_DATA_DIR"] == data_dir
    assert SECRET_VALUE not in json.dumps(kwargs["env"]) + json.dumps(kwargs["base_pod_spec"])


def test_the_subprocess_path_is_unchanged(monkeypatch, tmp_path):
    monkeypatch.setattr(training_assets.shutil, "which", lambda name: "/usr/bin/torchrun")
    manifest = tmp_path / "phase_manifest.json"
    assert training_assets.train_command(manifest, "phase1", 1)[1:3] == ["-m", "snowcoder_train"]
    assert training_assets.train_command(manifest, "phase1", 2)[:3] == [
        "torchrun",
        "--standalone",
        "--nproc_per_node=2",
    ]
