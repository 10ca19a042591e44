"""Is a stage up to date? One registry of what every stage consumes, for the runner and assets.

Per-partition stages compare their completion marker with the digest of their inputs now
(`stages.is_current`); global stages do the same with one marker each. `snowcoder materialize`
runs, per partition and for the global waves, only from the first stale stage on.
"""

from __future__ import annotations

from collections.abc import Callable

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.stages import (
    digest,
    global_is_current,
    global_output_digest,
    write_global_marker,
)


def _global_digests(config: SnowcoderConfig) -> dict[str, Callable[[], str]]:
    from snowcoder_assets.phase1.corpus import phase1_corpus_input_digest
    from snowcoder_assets.phase1.dedup import dup_clusters_input_digest
    from snowcoder_assets.phase2.stages import global_input_digests

    def upstream(*stages: str) -> list[str | None]:
        return [global_output_digest(config.data_dir, stage) for stage in stages]

    training = config.training.model_dump(mode="json")
    return {
        "dup_clusters": lambda: dup_clusters_input_digest(config),
        "phase1_corpus": lambda: phase1_corpus_input_digest(config),
        **global_input_digests(config),
        "packed_shards": lambda: digest(
            "packed_shards",
            training,
            config.corpus.seed,
            upstream("tokenizer", "phase1_corpus", "topk_corpus"),
        ),
        "phase_manifest": lambda: digest(
            "phase_manifest", training, config.topk.repeats, upstream("packed_shards")
        ),
        "checkpoints": lambda: digest("checkpoints", upstream("phase_manifest")),
    }


def global_stage_is_current(config: SnowcoderConfig, stage: str) -> bool:
    """False for stages without a registered digest: they always run."""
    digests = _global_digests(config)
    if stage not in digests:
        return False
    try:
        return global_is_current(config.data_dir, stage, digests[stage]())
    except (FileNotFoundError, KeyError):  # an upstream output is missing: run it
        return False


def mark_global_done(config: SnowcoderConfig, stage: str, **stats: object) -> None:
    """Called last by a global asset: record the inputs it consumed."""
    write_global_marker(config.data_dir, stage, _global_digests(config)[stage](), **stats)
