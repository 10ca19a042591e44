"""Hub assets (group `hub`): publish a corpus or the final checkpoint. Never automatic: launch
them with run config (repo_id, ...) from the UI, `dg launch`, or `snowcoder publish`."""

import dagster as dg

from snowcoder_assets.hub.resources import HubResource
from snowcoder_assets.resources import SnowcoderConfigResource


class PublishConfig(dg.Config):
    repo_id: str  # NAMESPACE/NAME
    private: bool = False
    revision: str | None = None  # a branch; created when missing
    dry_run_dir: str | None = None  # write the repository here and upload nothing


def _publish(context, config: PublishConfig, snowcoder, hub, artifact: str):
    from pathlib import Path

    from snowcoder_assets.hub.artifacts import publish_artifact

    summary = publish_artifact(
        snowcoder.load(),
        artifact,
        config.repo_id,
        hub,
        private=config.private,
        revision=config.revision,
        dry_run_dir=Path(config.dry_run_dir) if config.dry_run_dir else None,
        log=context.log.info,
    )
    return dg.MaterializeResult(metadata={"repo_id": config.repo_id, **summary})


@dg.asset(group_name="hub", deps=["phase1_corpus"], kinds={"huggingface"})
def hub_phase1_dataset(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    snowcoder: SnowcoderConfigResource,
    hub: HubResource,
) -> dg.MaterializeResult:
    """The phase-1 corpus as a Hugging Face dataset: one config per language plus `default`,
    with a card generated from the lineage store."""
    return _publish(context, config, snowcoder, hub, "phase1")


@dg.asset(group_name="hub", deps=["topk_corpus"], kinds={"huggingface"})
def hub_phase2_dataset(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    snowcoder: SnowcoderConfigResource,
    hub: HubResource,
) -> dg.MaterializeResult:
    """The phase-2 (top-k) corpus as a Hugging Face dataset."""
    return _publish(context, config, snowcoder, hub, "phase2")


@dg.asset(group_name="hub", deps=["checkpoints"], kinds={"huggingface"})
def hub_model(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    snowcoder: SnowcoderConfigResource,
    hub: HubResource,
) -> dg.MaterializeResult:
    """The last phase's final checkpoint as a Hugging Face model repository with a model card."""
    return _publish(context, config, snowcoder, hub, "model")
