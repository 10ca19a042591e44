"""deploy/helm/values.yaml and deploy/Dockerfile against what they must agree with.

The Helm values are checked against the Dagster chart's schema (vendored in
`dagster_chart_schema.json`), both with jsonschema and with a walk of our own that fails on
any key the chart does not document, and against deploy/dagster.yaml, the same instance written
by hand: run launcher, queued coordinator, monitoring, retries and pools must not drift apart.
No value may look like a secret. The Dockerfile's COPY sources must exist and its pins must be
the Makefile's and pyproject's.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
SCHEMA = Path(__file__).with_name("dagster_chart_schema.json")
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

SECRET_NAME = re.compile(r"pass(word|wd)?|secret|token|credential|api_?key|access_?key", re.I)
REFERENCE_SUFFIXES = ("SecretName", "Secrets", "secrets", "SECRETS")  # names of secrets, not values
SECRET_VALUE = re.compile(r"AKIA[0-9A-Z]{16}|-----BEGIN|hf_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9]{20,}")


def _values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text())


def _instance() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(mapping: dict[str, Any]) -> dict[str, Any]:
    return {_snake(key): value for key, value in mapping.items()}


# ---- the schema walk -------------------------------------------------------------------------

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
    "null": type(None),
}


def _type_ok(value: Any, name: str) -> bool:
    """As JSON Schema types: a bool is not an integer."""
    return isinstance(value, _TYPES[name]) and not (name == "integer" and isinstance(value, bool))


def schema_errors(
    value: Any, node: dict[str, Any], root: dict[str, Any], path: str = "", complete: bool = False
) -> list[str]:
    """Where `value` leaves the chart's schema. Unlike jsonschema, an object with `properties`
    is closed (an unknown key is an error even where the chart allows extras), and a trimmed
    section rejects everything. `required` is enforced only inside lists (`complete`): Helm
    merges maps onto the chart's defaults but replaces lists whole."""
    if "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    if node.get("$comment", "").startswith("trimmed"):
        return [f"{path or '/'}: not in the vendored schema (trimmed section): vendor it first"]
    if "anyOf" in node:
        tries = [schema_errors(value, option, root, path, complete) for option in node["anyOf"]]
        if all(tries):
            return [f"{path}: matches no option: {min(tries, key=len)}"]
    errors = [  # if/then conditionals only add `required`: jsonschema checks those
        error
        for sub in node.get("allOf", [])
        if "if" not in sub
        for error in schema_errors(value, sub, root, path, complete)
    ]
    if "type" in node and not _type_ok(value, node["type"]):
        return [f"{path}: {type(value).__name__} where the chart wants {node['type']}"]
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{path}: {value!r} not one of {node['enum']}")
    if isinstance(value, dict):
        errors += _object_errors(value, node, root, path, complete)
    if isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            errors += schema_errors(item, node["items"], root, f"{path}[{i}]", complete=True)
    return errors


def _object_errors(
    value: dict[str, Any], node: dict[str, Any], root: dict[str, Any], path: str, complete: bool
) -> list[str]:
    props, extra = node.get("properties"), node.get("additionalProperties")
    errors = []
    if complete:
        errors += [f"{path}: lacks {k!r}" for k in node.get("required", []) if k not in value]
    for key, item in value.items():
        where = f"{path}/{key}"
        if props is not None and key in props:
            errors += schema_errors(item, props[key], root, where, complete)
        elif props is not None:
            errors.append(f"{where}: not a key of the chart's schema")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, root, where, complete)
    return errors


def _without_required(node: Any) -> Any:
    """An override file names only what it changes: `required` is for the merged values."""
    if isinstance(node, dict):
        return {k: _without_required(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_without_required(v) for v in node]
    return node


def test_values_validate_against_the_chart_schema() -> None:
    schema = _schema()
    assert schema["x-vendored"]["chartVersion"] == _pin("dagster")
    validator = jsonschema.Draft202012Validator(_without_required(schema))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_values())] == []


def test_every_key_is_one_the_chart_documents() -> None:
    assert schema_errors(_values(), _schema(), _schema()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].update(envSecret=[]), "envSecret"),
        (lambda v: v.update(dagsterWebserver={"replicaCount": 2}), "trimmed"),
        (lambda v: v["dagster-user-deployments"]["deployments"][0].pop("port"), "lacks 'port'"),
        (lambda v: v["dagsterDaemon"]["runRetries"].update(maxRetries="2"), "maxRetries"),
        (lambda v: v["concurrency"]["pools"].update(limit=1), "limit"),
    ],
)
def test_schema_walk_rejects_what_the_chart_would_not_take(change, expected: str) -> None:
    values = _values()
    change(values)
    errors = schema_errors(values, _schema(), _schema())
    assert any(expected in error for error in errors), errors


# ---- the same instance as deploy/dagster.yaml ------------------------------------------------


def test_run_launcher_matches_deploy_instance() -> None:
    values, launcher = _values(), _instance()["run_launcher"]
    assert values["runLauncher"]["type"] == launcher["class"] == "K8sRunLauncher"
    k8s, config = values["runLauncher"]["config"]["k8sRunLauncher"], launcher["config"]
    assert [secret["name"] for secret in k8s["envSecrets"]] == config["env_secrets"]
    assert k8s["envVars"] == config["env_vars"]
    assert k8s["imagePullPolicy"] == config["image_pull_policy"]
    assert k8s["loadInclusterConfig"] == config["load_incluster_config"]
    assert _snake_keys(k8s["runK8sConfig"]) == config["run_k8s_config"]
    assert values["global"]["dagsterHome"] == config["dagster_home"]
    assert values["serviceAccount"]["name"] == config["service_account_name"]
    # the chart names its instance ConfigMap <release>-dagster-instance
    assert config["instance_config_map"] == "snowcoder-dagster-instance"


def test_queued_coordinator_limits_match_deploy_instance() -> None:
    daemon, coordinator = _values()["dagsterDaemon"], _instance()["run_coordinator"]
    assert daemon["runCoordinator"]["type"] == coordinator["class"] == "QueuedRunCoordinator"
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert _snake_keys(queued) == coordinator["config"]
    assert queued["tagConcurrencyLimits"] == coordinator["config"]["tag_concurrency_limits"]
    assert queued["maxConcurrentRuns"] == coordinator["config"]["max_concurrent_runs"] == 64


def test_monitoring_retries_pools_and_telemetry_match_deploy_instance() -> None:
    values, instance = _values(), _instance()
    daemon = values["dagsterDaemon"]
    assert _snake_keys(daemon["runMonitoring"]) == instance["run_monitoring"]
    assert _snake_keys(daemon["runRetries"]) == instance["run_retries"]
    assert values["concurrency"]["enabled"] is True
    assert _snake_keys(values["concurrency"]["pools"]) == instance["concurrency"]["pools"]
    assert values["telemetry"] == instance["telemetry"]
    scheme = instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert values["postgresql"]["postgresqlScheme"] == scheme


def test_postgres_is_external_and_its_password_comes_from_a_secret() -> None:
    values = _values()
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in values["postgresql"]
    assert (
        values["global"]["postgresqlSecretName"]
        in _instance()["run_launcher"]["config"]["env_secrets"]
    )


def test_user_deployment_serves_the_project_code_location() -> None:
    (deployment,) = _values()["dagster-user-deployments"]["deployments"]
    module = _pyproject()["tool"]["dg"]["project"]["code_location_target_module"]
    assert deployment["name"] == "snowcoder"
    assert deployment["codeServerArgs"] == ["-m", module]
    assert deployment["port"] == _dockerfile_expose()
    assert set(deployment["env"]) == {"SNOWCODER_CONFIG", "SNOWCODER_DATA_DIR"}
    assert deployment["env"]["SNOWCODER_DATA_DIR"].startswith("s3://")
    assert [s["name"] for s in deployment["envSecrets"]] == ["snowcoder-storage-credentials"]
    config = deployment["env"]["SNOWCODER_CONFIG"].removeprefix("/opt/snowcoder/")
    assert (ROOT / config).is_file(), config  # the image's copy of a file in the repo
    # the daemon launches the runs: runLauncher.envVars pass its env on to the run pods
    assert _values()["dagsterDaemon"]["env"] == deployment["env"]


# ---- no secret values ------------------------------------------------------------------------


def secret_findings(node: Any, path: str = "") -> list[str]:
    """Paths whose key names a secret and carries a literal, or whose value looks like one."""
    found: list[str] = []
    if isinstance(node, dict):
        if set(node) >= {"name", "value"} and SECRET_NAME.search(str(node["name"])):
            found.append(f"{path}/{node['name']}")  # env list form: {name: ..., value: ...}
        for key, value in node.items():
            named = SECRET_NAME.search(str(key)) and not str(key).endswith(REFERENCE_SUFFIXES)
            literal = isinstance(value, str | int | float) and not isinstance(value, bool)
            if named and literal and value != "":
                found.append(f"{path}/{key}")
            found += secret_findings(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += secret_findings(item, f"{path}[{i}]")
    elif isinstance(node, str) and SECRET_VALUE.search(node):
        found.append(path)
    return found


def test_no_value_looks_like_a_secret() -> None:
    assert secret_findings(_values()) == []
    assert not SECRET_VALUE.search(VALUES.read_text())


@pytest.mark.parametrize(
    "planted",
    [
        {"postgresql": {"postgresqlPassword": "hunter2"}},
        {"env": {"AWS_SECRET_ACCESS_KEY": "abc"}},
        {"env": [{"name": "HF_TOKEN", "value": "abc"}]},
        {"image": {"tag": "AKIAABCDEFGHIJKLMNOP"}},
    ],
)
def test_secret_scan_finds_a_planted_secret(planted: dict[str, Any]) -> None:
    assert secret_findings(planted)


# ---- the Dockerfile --------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _dockerfile_args() -> dict[str, str]:
    args = {}
    for op, rest in dockerfile_instructions():
        if op == "ARG" and "=" in rest:
            name, default = rest.split("=", 1)
            assert args.setdefault(name, default) == default, f"ARG {name} has two defaults"
    return args


def _dockerfile_expose() -> int:
    (port,) = [int(rest) for op, rest in dockerfile_instructions() if op == "EXPOSE"]
    return port


def _makefile() -> str:
    return (ROOT / "Makefile").read_text()


def _makefile_pins(package: str) -> set[str]:
    return set(re.findall(rf"(?<![\w-]){re.escape(package)}==([\w.+]+)", _makefile()))


def _pin(package: str) -> str:
    (pin,) = [
        dep.split("==")[1].split()[0]
        for dep in _pyproject()["project"]["dependencies"]
        if re.split(r"[=<>~! ]", dep, maxsplit=1)[0] == package
    ]
    return pin


def _dockerignore() -> list[str]:
    text = (ROOT / ".dockerignore").read_text()
    return [line.strip().strip("/") for line in text.splitlines() if line.strip()[:1] not in "#"]


def test_dockerfile_copies_only_paths_that_exist_and_are_not_ignored() -> None:
    copies = [shlex.split(rest) for op, rest in dockerfile_instructions() if op == "COPY"]
    sources = [src for args in copies if not args[0].startswith("--from")
               for src in [a for a in args[:-1] if not a.startswith("--")]]  # fmt: skip
    assert "deploy/dagster.yaml" in sources
    ignored = [p for p in _dockerignore() if not p.startswith("!")]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repo"
        hits = [p for p in ignored if fnmatch.fnmatch(source.rstrip("/"), p)]
        assert not hits, f"COPY {source} is excluded by .dockerignore {hits}"


def test_dockerfile_pins_are_the_makefile_and_pyproject_pins() -> None:
    args = _dockerfile_args()
    assert {args["TORCH_VERSION"]} == _makefile_pins("torch") == {_pin("torch")}
    (vllm,) = set(re.findall(r"\$\(VLLM_VENV\)/bin/pip install -q (vllm[\w-]*)==", _makefile()))
    assert args["VLLM_PACKAGE"] == vllm
    assert {args["VLLM_VERSION"]} == _makefile_pins(vllm)
    assert {args["DAGSTER_PIPES_VERSION"]} == _makefile_pins("dagster-pipes")
    assert args["DAGSTER_PIPES_VERSION"] == _pin("dagster-pipes")
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert _pyproject()["project"]["requires-python"].startswith(">=3.11")


def test_dockerfile_installs_torch_alone_before_the_project() -> None:
    runs = [rest for op, rest in dockerfile_instructions() if op == "RUN"]
    torch = [i for i, run in enumerate(runs) if '"torch==${TORCH_VERSION}"' in run]
    project = [i for i, run in enumerate(runs) if re.search(r"pip install .*-e \.(\s|$)", run)]
    assert torch and project and torch[0] < project[0]
    assert "vllm" not in runs[torch[0]] and " -e " not in runs[torch[0]]


def test_dockerfile_runs_the_code_server_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    env = " ".join(rest for op, rest in instructions if op == "ENV")
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in env
    assert any(
        op == "COPY" and rest.endswith("deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml")
        for op, rest in instructions
    )
    users = [rest for op, rest in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    (cmd,) = [json.loads(rest) for op, rest in instructions if op == "CMD"]
    module = _pyproject()["tool"]["dg"]["project"]["code_location_target_module"]
    assert cmd == ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "3030", "-m", module]
