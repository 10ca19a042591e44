"""Hub assets (group `hub`): publish a corpus or the final checkpoint. Never automatic.

They need no run config: the repository is `<[hub] namespace>/snowcoder-<artifact>` (or the
run config's `repo_id`); with neither, they write the repository a publication would upload to
`<data_dir>/hub_dry_run/<artifact>/` and say so in their metadata, so "Materialize all" in the
UI works on a fresh checkout.
"""

from pathlib import Path

import dagster as dg

from snowcoder_assets.hub.resources import HubResource
from snowcoder_assets.io import files_under
from snowcoder_assets.layout import hub_dry_run_dir
from snowcoder_assets.orchestration.pools import GLOBAL_WRITERS, SHARD_POD
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.results import materialize_files
from snowcoder_assets.storage import data_path

PLACEHOLDER_NAMESPACE = "YOUR_NAMESPACE"


class PublishConfig(dg.Config):
    repo_id: str | None = None  # NAMESPACE/NAME; default: [hub] namespace + snowcoder-<artifact>
    private: bool | None = None  # default: [hub] private
    revision: str | None = None  # a branch, created when missing; default: [hub] revision
    dry_run_dir: str | None = None  # write the repository here and upload nothing


def publish_target(settings, artifact: str, run_config: PublishConfig) -> tuple[str, Path | None]:
    """(repo_id, dry-run folder or None): the run config first, then `[hub]`, else a dry run."""
    placeholder = f"{PLACEHOLDER_NAMESPACE}/snowcoder-{artifact}"
    repo_id = run_config.repo_id or (
        f"{settings.hub.namespace}/snowcoder-{artifact}" if settings.hub.namespace else None
    )
    if run_config.dry_run_dir:
        return repo_id or placeholder, data_path(run_config.dry_run_dir)
    if repo_id is None:
        return placeholder, hub_dry_run_dir(settings.data_dir, artifact)
    return repo_id, None


def _publish(context, run_config: PublishConfig, snowcoder, hub, artifact: str):
    from snowcoder_assets.hub.artifacts import nothing_to_publish, publish_artifact

    settings = snowcoder.load()
    repo_id, dry_run = publish_target(settings, artifact, run_config)
    if empty := nothing_to_publish(settings, artifact):
        context.log.warning(empty)
        return materialize_files(context, settings, [], {"repo_id": repo_id, "note": empty})
    summary = publish_artifact(
        settings,
        artifact,
        repo_id,
        hub,
        private=settings.hub.private if run_config.private is None else run_config.private,
        revision=run_config.revision or settings.hub.revision,
        dry_run_dir=dry_run,
        log=context.log.info,
    )
    metadata = {"repo_id": repo_id, "dry_run": dry_run is not None, **summary}
    if dry_run is not None:
        why = (
            "asked for (run config dry_run_dir)"
            if run_config.dry_run_dir
            else "no repository configured ([hub] namespace or run config repo_id)"
        )
        message = f"dry run: {why}; the repository was written to {dry_run}, nothing uploaded"
        context.log.info(message)
        metadata["note"] = message
    local = dry_run or settings.data_dir / "hub" / artifact
    return materialize_files(context, settings, files_under(local), metadata)


@dg.asset(
    group_name="hub",
    deps=["phase1_corpus"],
    kinds={"huggingface"},
    pool=GLOBAL_WRITERS,
    op_tags=SHARD_POD,
)
def hub_phase1_dataset(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    snowcoder: SnowcoderConfigResource,
    hub: HubResource,
) -> dg.MaterializeResult:
    """The phase-1 corpus as a Hugging Face dataset: one config per language plus `default`,
    with a card generated from the lineage store."""
    return _publish(context, config, snowcoder, hub, "phase1")


@dg.asset(
    group_name="hub",
    deps=["topk_corpus"],
    kinds={"huggingface"},
    pool=GLOBAL_WRITERS,
    op_tags=SHARD_POD,
)
def hub_phase2_dataset(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    snowcoder: SnowcoderConfigResource,
    hub: HubResource,
) -> dg.MaterializeResult:
    """The phase-2 (top-k) corpus as a Hugging Face dataset."""
    return _publish(context, config, snowcoder, hub, "phase2")


@dg.asset(
    group_name="hub",
    deps=["synthetic_corpus"],
    kinds={"huggingface"},
    pool=GLOBAL_WRITERS,
    op_tags=SHARD_POD,
)
def hub_phase3_dataset(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    snowcoder: SnowcoderConfigResource,
    hub: HubResource,
) -> dg.MaterializeResult:
    """The phase-3 synthetic corpus as a Hugging Face dataset, provenance in every row (seed
    ids, generator, prompt and template id) and a card that says how it was made."""
    return _publish(context, config, snowcoder, hub, "phase3")


@dg.asset(
    group_name="hub",
    deps=["checkpoints", "evaluation"],
    kinds={"huggingface"},
    pool=GLOBAL_WRITERS,
    op_tags=SHARD_POD,
)
def hub_model(
    context: dg.AssetExecutionContext,
    config: PublishConfig,
    snowcoder: SnowcoderConfigResource,
    hub: HubResource,
) -> dg.MaterializeResult:
    """The last phase's final checkpoint as a Hugging Face model repository with a model card
    that carries every phase's pass@1."""
    return _publish(context, config, snowcoder, hub, "model")


def code_versions(config) -> dict[str, str]:
    from snowcoder_assets.versions import code_version

    modules = [f"snowcoder_assets.hub.{m}" for m in ("artifacts", "cards", "layout", "publish")]
    modules.append("snowcoder_assets.evaluation.report")  # the model card's evaluation table
    version = code_version(modules, config.hub)
    names = ("hub_phase1_dataset", "hub_phase2_dataset", "hub_phase3_dataset", "hub_model")
    return {name: version for name in names}
