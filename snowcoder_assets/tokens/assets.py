"""Token assets (group `tokens`): packed shards of every phase corpus and the phase manifest."""

import dagster as dg

from snowcoder_assets.freshness import mark_global_done
from snowcoder_assets.metadata import counts_table
from snowcoder_assets.resources import SnowcoderConfigResource


@dg.asset(group_name="tokens", deps=["tokenizer", "phase1_corpus", "topk_corpus"], kinds={"numpy"})
def packed_shards(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Each phase corpus tokenized (parallel batch encoding), end-of-document tokens appended,
    packed into fixed-length sequences and written as shuffled memmap shards with an index."""
    from snowcoder_assets.tokens.stages import pack_phases

    config = snowcoder.load()
    indexes = pack_phases(config, context.log.info)
    mark_global_done(config, "packed_shards")
    metadata: dict = {"num_tokens": sum(i["num_tokens"] for i in indexes.values())}
    for phase, index in indexes.items():
        metadata[f"{phase}_tokens"] = index["num_tokens"]
        metadata[f"{phase}_sequences"] = index["num_sequences"]
        metadata[f"{phase}_tokens_by_language"] = counts_table(
            index["tokens_by_lang"], "lang", "tokens"
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="tokens", deps=["packed_shards"], kinds={"json"})
def phase_manifest(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """The one file training reads: model shape, and per phase its shards, token budget,
    repeats, batch, sequence length, learning-rate schedule and starting checkpoint. A phase
    that asks for more tokens than its shards hold fails here, before any training."""
    from snowcoder_assets.tokens.stages import manifest_path, write_phase_manifest

    config = snowcoder.load()
    manifest = write_phase_manifest(config, context.log.info)
    mark_global_done(config, "phase_manifest")
    phases = {
        p["name"]: p.get("skip_reason") or f"{p['token_budget']} tokens x{p['repeats']}"
        for p in manifest["phases"]
    }
    return dg.MaterializeResult(
        metadata={
            "preset": manifest["preset"],
            "model": dg.MetadataValue.json(manifest["model"]),
            **{f"{name}": value for name, value in phases.items()},
            "path": dg.MetadataValue.path(str(manifest_path(config))),
        }
    )
