"""Phase-2 assets (group `phase2`) and the tokenizer (group `tokens`)."""

import dagster as dg

from snowcoder_assets.freshness import mark_global_done
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.metadata import counts_table
from snowcoder_assets.phase2 import checks
from snowcoder_assets.resources import SnowcoderConfigResource


@dg.asset(group_name="tokens", deps=["phase1_corpus"], kinds={"huggingface"})
def tokenizer(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Byte-level BPE trained on a seeded sample of `phase1_corpus` (or a configured tokenizer),
    saved as a Hugging Face tokenizer folder with `<|endoftext|>` and `<|file_sep|>` specials.
    Every token budget downstream is counted with it."""
    from snowcoder_assets.phase2.stages import build_tokenizer, tokenizer_dir

    config = snowcoder.load()
    report = build_tokenizer(config, context.log.info)
    mark_global_done(config, "tokenizer")
    return dg.MaterializeResult(
        metadata={
            "vocab_size": report["vocab_size"],
            "origin": report["origin"],
            "path": dg.MetadataValue.path(str(tokenizer_dir(config))),
        }
    )


@dg.asset(group_name="phase2", deps=["phase1_corpus"], kinds={"parquet"})
def annotator_training_set(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Positives (configured high-quality code and instruction data, or the offline heuristic
    proxy) and negatives (random phase-1 files), split by repository."""
    from snowcoder_assets.phase2.stages import build_training_set, training_set_dir

    config = snowcoder.load()
    report = build_training_set(config, context.log.info)
    mark_global_done(config, "annotator_training_set")
    return dg.MaterializeResult(
        metadata={
            "num_rows": report["train"] + report["validation"],
            **{k: v for k, v in report.items()},
            "path": dg.MetadataValue.path(str(training_set_dir(config))),
        }
    )


@dg.asset(group_name="phase2", deps=["annotator_training_set"], kinds={"pytorch"})
def quality_annotator(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """A BERT-style encoder with a linear head, fine-tuned to tell positives from negatives;
    saved as a Hugging Face model folder (safetensors) with a model card."""
    from snowcoder_assets.phase2.stages import annotator_dir, train_quality_annotator

    config = snowcoder.load()
    report = train_quality_annotator(config, context.log.info)
    mark_global_done(config, "quality_annotator")
    return dg.MaterializeResult(
        metadata={
            "validation_roc_auc": report.get("roc_auc"),
            "validation_loss": report.get("validation_loss"),
            "num_train": report.get("num_train"),
            "num_validation": report.get("num_validation"),
            "seconds": report.get("seconds"),
            "loss_curve": checks.loss_curve(report.get("train_losses", [])),
            "path": dg.MetadataValue.path(str(annotator_dir(config))),
        }
    )


@dg.asset(
    group_name="phase2",
    deps=["quality_annotator", "tokenizer", "decontaminated_files"],
    kinds={"pytorch", "parquet"},
)
def quality_scores(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Every phase-1 file's quality score (mean of its top, middle and bottom chunks) and its
    token count; shards whose inputs are unchanged keep their scores."""
    from snowcoder_assets.phase2.stages import score_partitions

    config = snowcoder.load()
    report = score_partitions(config, context.log.info)
    mark_global_done(config, "quality_scores")
    return dg.MaterializeResult(metadata={"num_rows": report["files"], **report})


@dg.asset(
    group_name="phase2",
    deps=["quality_scores"],
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(name, asset="topk_corpus", blocking=True) for name in checks.TOPK_CHECKS
    ],
)
def topk_corpus(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Per language, the highest-scored phase-1 files up to the phase-2 token budget (keeping
    the phase-1 language mix), grouped into repository documents; the repeat count is recorded
    for the training manifest, never copied."""
    from snowcoder_assets.phase2.stages import build_topk_corpus, topk_dir
    from snowcoder_assets.phase2.topk import score_histograms_png

    config = snowcoder.load()
    report = build_topk_corpus(config, context.log.info)
    refresh_views(config.data_dir)
    frame = report.pop("frame")
    languages = report["languages"]["languages"]
    results = checks.topk_checks(config, report, frame)
    if all(r.passed for r in results):  # a failed check leaves the stage stale for the next run
        mark_global_done(config, "topk_corpus")
    return dg.MaterializeResult(
        metadata={
            "num_rows": report["documents"],
            "num_tokens": report["selected_tokens"],
            "budget_tokens": report["budget_tokens"],
            "repeats": report["repeats"],
            "selected_files": report["selected_files"],
            "tokens_by_language": counts_table(
                {k: v["selected_tokens"] for k, v in languages.items()}, "lang", "tokens"
            ),
            "available_tokens_by_language": counts_table(
                {k: v["available_tokens"] for k, v in languages.items()}, "lang", "tokens"
            ),
            "score_histograms": checks.png_markdown(
                score_histograms_png(frame, report["cutoffs"]), "score histograms"
            ),
            "path": dg.MetadataValue.path(str(topk_dir(config))),
        },
        check_results=results,
    )
