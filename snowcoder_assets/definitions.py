"""The Dagster code location: the rooms' assets, checks and sensors, with policy applied once.

Policy from the configuration: every asset's code version (its code and the configuration
section it reads), the backfill policies that batch partitions per run, and the executor.
Automation conditions and pools are declared on the assets themselves.
"""

from __future__ import annotations

import os

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig, default_config_path, load_config
from snowcoder_assets.evaluation import assets as evaluation_assets
from snowcoder_assets.hub import assets as hub_assets
from snowcoder_assets.hub.resources import HubResource
from snowcoder_assets.orchestration.automation import automation_sensor
from snowcoder_assets.orchestration.kubernetes import KubernetesConfig, PodResources, k8s_executor
from snowcoder_assets.phase1 import assets as phase1_assets
from snowcoder_assets.phase1 import global_assets as phase1_global
from snowcoder_assets.phase2 import assets as phase2_assets
from snowcoder_assets.phase3 import assets as phase3_assets
from snowcoder_assets.phase3.resources import SyntheticGeneratorResource
from snowcoder_assets.raw import assets as raw_assets
from snowcoder_assets.raw.sensors import source_shard_sensor
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.tokens import assets as token_assets
from snowcoder_assets.training import assets as training_assets

ROOMS = (
    raw_assets,
    phase1_assets,
    phase1_global,
    phase2_assets,
    phase3_assets,
    token_assets,
    training_assets,
    evaluation_assets,
)
ASSETS = [
    raw_assets.raw_files,
    phase1_assets.file_signals,
    phase1_assets.filtered_files,
    phase1_global.dup_clusters,
    phase1_assets.deduped_files,
    phase1_assets.decontaminated_files,
    phase1_global.phase1_corpus,
    token_assets.tokenizer,
    phase2_assets.annotator_training_set,
    phase2_assets.quality_annotator,
    phase2_assets.quality_scores,
    phase2_assets.topk_corpus,
    phase3_assets.synthetic_seeds,
    phase3_assets.synthetic_generator,
    phase3_assets.synthetic_corpus,
    token_assets.packed_shards,
    token_assets.phase_manifest,
    training_assets.checkpoints,
    evaluation_assets.evaluation,
    hub_assets.hub_phase1_dataset,
    hub_assets.hub_phase2_dataset,
    hub_assets.hub_phase3_dataset,
    hub_assets.hub_model,
]
EXTERNAL = [raw_assets.source_files, phase1_assets.dedup_decisions]
GPU_PARTITIONED = {"quality_scores"}


def hub_resource() -> HubResource:
    """HF_ENDPOINT and HF_TOKEN from the environment, bound as EnvVar (never read in assets)."""
    settings = {
        name: dg.EnvVar(var)
        for name, var in (("endpoint", "HF_ENDPOINT"), ("token", "HF_TOKEN"))
        if os.environ.get(var)
    }
    return HubResource(**settings)


def generation_resource(config: SnowcoderConfig) -> SyntheticGeneratorResource:
    """The keys of OpenAI-compatible endpoints from the variables `[synthetic] api_key_env`
    and `[evaluation] api_key_env` name, bound as EnvVar (never read in assets)."""
    keys = {"api_key": config.synthetic.api_key_env}
    keys["evaluation_api_key"] = config.evaluation.api_key_env
    return SyntheticGeneratorResource(
        **{field: dg.EnvVar(var) for field, var in keys.items() if os.environ.get(var)}
    )


def code_versions(config: SnowcoderConfig) -> dict[str, str]:
    versions: dict[str, str] = {}
    for room in (*ROOMS, hub_assets):
        versions.update(room.code_versions(config))
    return versions


def with_policy(asset: dg.AssetsDefinition, config: SnowcoderConfig, versions: dict) -> object:
    """The asset with its code version and, when partitioned, its backfill policy."""
    name = asset.key.to_user_string()
    asset = asset.map_asset_specs(lambda spec: spec.replace_attributes(code_version=versions[name]))
    if asset.partitions_def is None:
        return asset
    per_run = (
        config.orchestration.gpu_partitions_per_run
        if name in GPU_PARTITIONED
        else config.orchestration.partitions_per_run
    )
    return asset.with_attributes(backfill_policy=dg.BackfillPolicy.multi_run(per_run))


def step_pods(config: SnowcoderConfig) -> KubernetesConfig:
    """`[kubernetes]`, plus a small pod for `checkpoints` when training runs in pods of its own
    (`[training] launcher = "k8s"`): its step only waits on them, so it should hold no GPU."""
    kube = config.kubernetes
    if config.training.launcher != "k8s" or "checkpoints" in kube.step_resources:
        return kube
    waiting = PodResources(cpu="1", memory="2Gi")
    return kube.model_copy(
        update={"step_resources": {**kube.step_resources, "checkpoints": waiting}}
    )


def build_defs(config: SnowcoderConfig) -> dg.Definitions:
    """The whole graph for one configuration (tests build it for several)."""
    versions = code_versions(config)
    executor = {
        "in_process": lambda: dg.in_process_executor,
        "multiprocess": lambda: dg.multiprocess_executor,
        "k8s": lambda: k8s_executor(step_pods(config)),
    }[config.orchestration.executor]()
    return dg.Definitions(
        assets=[with_policy(a, config, versions) for a in ASSETS] + EXTERNAL,
        sensors=[source_shard_sensor, automation_sensor],
        resources={
            "snowcoder": SnowcoderConfigResource(config_path=str(config.config_file)),
            "pipes_subprocess_client": dg.PipesSubprocessClient(),
            "hub": hub_resource(),
            "generation": generation_resource(config),
        },
        executor=executor,
    )


# Validate the configuration when the code location loads: a bad file fails here, before work.
CONFIG = load_config(default_config_path())
defs = build_defs(CONFIG)
