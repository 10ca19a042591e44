"""The Dagster code location: assets, checks, sensors and resources of the whole graph."""

from __future__ import annotations

import os

import dagster as dg

from snowcoder_assets.config import default_config_path, load_config
from snowcoder_assets.hub.assets import hub_model, hub_phase1_dataset, hub_phase2_dataset
from snowcoder_assets.hub.resources import HubResource
from snowcoder_assets.phase1.assets import (
    decontaminated_files,
    deduped_files,
    dup_clusters,
    file_signals,
    filtered_files,
    phase1_corpus,
)
from snowcoder_assets.phase2.assets import (
    annotator_training_set,
    quality_annotator,
    quality_scores,
    tokenizer,
    topk_corpus,
)
from snowcoder_assets.raw.assets import raw_files
from snowcoder_assets.raw.sensors import source_shard_sensor
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.tokens.assets import packed_shards, phase_manifest
from snowcoder_assets.training.assets import checkpoints

# Validate the configuration when the code location loads: a bad file fails here, before work.
CONFIG = load_config(default_config_path())


def hub_resource() -> HubResource:
    """HF_ENDPOINT and HF_TOKEN from the environment, bound as EnvVar (never read in assets)."""
    settings = {
        name: dg.EnvVar(var)
        for name, var in (("endpoint", "HF_ENDPOINT"), ("token", "HF_TOKEN"))
        if os.environ.get(var)
    }
    return HubResource(**settings)


defs = dg.Definitions(
    assets=[
        raw_files,
        file_signals,
        filtered_files,
        dup_clusters,
        deduped_files,
        decontaminated_files,
        phase1_corpus,
        tokenizer,
        annotator_training_set,
        quality_annotator,
        quality_scores,
        topk_corpus,
        packed_shards,
        phase_manifest,
        checkpoints,
        hub_phase1_dataset,
        hub_phase2_dataset,
        hub_model,
    ],
    sensors=[source_shard_sensor],
    resources={
        "snowcoder": SnowcoderConfigResource(config_path=str(CONFIG.config_file)),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
        "hub": hub_resource(),
    },
)
