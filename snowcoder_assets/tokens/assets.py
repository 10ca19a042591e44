"""Token assets (group `tokens`): the tokenizer, packed shards of every phase corpus, and the
phase manifest training reads."""

import dagster as dg

from snowcoder_assets.io import files_under
from snowcoder_assets.layout import (
    checkpoints_dir,
    corpus_dir,
    manifest_path,
    packed_dir,
    tokenizer_dir,
    topk_dir,
)
from snowcoder_assets.metadata import counts_table
from snowcoder_assets.orchestration.automation import CPU_EAGER, ON_MISSING
from snowcoder_assets.orchestration.pools import GLOBAL_POD, GLOBAL_WRITERS
from snowcoder_assets.phase3.corpus import corpus_dir as synthetic_corpus_dir
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.results import materialize_files

PHASES = ("phase1", "phase2", "phase3")


def phase_corpora(data_dir) -> dict:
    return {
        "phase1": corpus_dir(data_dir),
        "phase2": topk_dir(data_dir),
        "phase3": synthetic_corpus_dir(data_dir),
    }


@dg.asset(
    group_name="tokens",
    deps=["phase1_corpus"],
    kinds={"huggingface"},
    pool=GLOBAL_WRITERS,
    op_tags=GLOBAL_POD,
    automation_condition=ON_MISSING,
)
def tokenizer(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Byte-level BPE trained on a seeded sample of `phase1_corpus` (or a configured tokenizer),
    saved as a Hugging Face tokenizer folder with `<|endoftext|>` and `<|file_sep|>` specials.
    Every token budget downstream is counted with it, so it is trained once, not on every new
    shard (automation: on missing only; re-materialize it to retrain)."""
    from snowcoder_assets.tokens.tokenizer import build_tokenizer, documents_in_seeded_order

    config = snowcoder.load()
    settings, out = config.tokenizer, tokenizer_dir(config.data_dir)
    documents = documents_in_seeded_order(files_under(corpus_dir(config.data_dir)), settings.seed)
    report = build_tokenizer(settings, documents, out, context.log.info)
    metadata = {**report, "path": dg.MetadataValue.path(str(out))}
    return materialize_files(context, config, files_under(out), metadata)


@dg.asset(
    group_name="tokens",
    deps=["tokenizer", "phase1_corpus", "topk_corpus", "synthetic_corpus"],
    kinds={"numpy"},
    pool=GLOBAL_WRITERS,
    op_tags=GLOBAL_POD,
    automation_condition=CPU_EAGER,
)
def packed_shards(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Each phase corpus tokenized (parallel batch encoding), end-of-document tokens appended,
    packed into fixed-length sequences and written as shuffled memmap shards with an index."""
    from snowcoder_assets.tokens.manifest import seq_len_for
    from snowcoder_assets.tokens.packing import pack_phases

    config = snowcoder.load()
    data_dir = config.data_dir
    indexes = pack_phases(
        phase_corpora(data_dir),
        tokenizer_dir(data_dir),
        lambda phase: packed_dir(data_dir, phase),
        seq_len_for(config.training),
        config.corpus.seed,
        context.log.info,
    )
    metadata: dict = {"num_tokens": sum(i["num_tokens"] for i in indexes.values())}
    for phase, index in indexes.items():
        metadata[f"{phase}_tokens"] = index["num_tokens"]
        metadata[f"{phase}_sequences"] = index["num_sequences"]
        metadata[f"{phase}_tokens_by_language"] = counts_table(
            index["tokens_by_lang"], "lang", "tokens"
        )
    outputs = [p for phase in indexes for p in files_under(packed_dir(data_dir, phase))]
    return materialize_files(context, config, outputs, metadata)


@dg.asset(
    group_name="tokens",
    deps=["packed_shards"],
    kinds={"json"},
    pool=GLOBAL_WRITERS,
    op_tags=GLOBAL_POD,
    automation_condition=CPU_EAGER,
)
def phase_manifest(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """The one file training reads: model shape, and per phase its shards, token budget,
    repeats, batch, sequence length, learning-rate schedule and starting checkpoint. A phase
    that asks for more tokens than its shards hold fails here, before any training."""
    from snowcoder_assets.tokens.manifest import write_phase_manifest

    config = snowcoder.load()
    data_dir = config.data_dir
    indexes = {
        phase: (index if (index := packed_dir(data_dir, phase) / "index.json").is_file() else None)
        for phase in PHASES
    }
    manifest = write_phase_manifest(
        config.training,
        tokenizer_dir(data_dir),
        checkpoints_dir(data_dir),
        indexes,
        {"phase1": 1, "phase2": config.topk.repeats, "phase3": 1},
        config.corpus.seed,
        manifest_path(data_dir),
        context.log.info,
    )
    phases = {
        p["name"]: p.get("skip_reason") or f"{p['token_budget']} tokens x{p['repeats']}"
        for p in manifest["phases"]
    }
    metadata = {
        "preset": manifest["preset"],
        "model": dg.MetadataValue.json(manifest["model"]),
        **phases,
        "path": dg.MetadataValue.path(str(manifest_path(data_dir))),
    }
    return materialize_files(context, config, [manifest_path(data_dir)], metadata)


def code_versions(config) -> dict[str, str]:
    from snowcoder_assets.versions import code_version

    tokenizer_module = "snowcoder_assets.tokens.tokenizer"
    return {
        "tokenizer": code_version([tokenizer_module], config.tokenizer),
        "packed_shards": code_version(
            ["snowcoder_assets.tokens.packing", tokenizer_module],
            config.training,
            config.corpus.seed,
        ),
        "phase_manifest": code_version(
            ["snowcoder_assets.tokens.manifest"], config.training, config.topk.repeats
        ),
    }
