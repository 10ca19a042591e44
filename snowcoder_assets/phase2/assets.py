"""Phase-2 assets (group `phase2`): annotator training set, annotator, scores, top-k corpus."""

import dagster as dg

from snowcoder_assets.io import files_under
from snowcoder_assets.layout import (
    annotator_dir,
    annotator_eval_path,
    topk_dir,
    topk_selection_path,
    training_set_dir,
)
from snowcoder_assets.lineage.store import refresh_views
from snowcoder_assets.metadata import counts_table, markdown_table
from snowcoder_assets.orchestration.automation import CPU_EAGER, ON_MISSING
from snowcoder_assets.orchestration.pools import GLOBAL_POD, GLOBAL_WRITERS, GPU, GPU_POD
from snowcoder_assets.phase2 import checks
from snowcoder_assets.raw.discovery import materialized_config_partitions
from snowcoder_assets.raw.partitions import SOURCE_SHARDS
from snowcoder_assets.resources import SnowcoderConfigResource
from snowcoder_assets.results import PartitionResult, materialize_files, materialize_partitions


@dg.asset(
    group_name="phase2",
    deps=["phase1_corpus"],
    kinds={"parquet"},
    pool=GLOBAL_WRITERS,
    op_tags=GLOBAL_POD,
    automation_condition=CPU_EAGER,
)
def annotator_training_set(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Positives (configured high-quality code and instruction data, or the offline heuristic
    proxy) and negatives (random phase-1 files), split by repository."""
    from snowcoder_assets.phase2.annotator_training_set import (
        build_training_set,
        training_set_outputs,
    )

    config = snowcoder.load()
    partitions = materialized_config_partitions(context.instance, config, "decontaminated_files")
    report = build_training_set(config, partitions, context.log.info)
    metadata = {
        "num_rows": report["train"] + report["validation"],
        **report,
        "path": dg.MetadataValue.path(str(training_set_dir(config.data_dir))),
    }
    return materialize_files(context, config, training_set_outputs(config.data_dir), metadata)


def eval_metadata(quality: dict) -> dict:
    """The eval-set figures of `quality_annotator`: float AUCs the UI plots, and two tables."""
    from snowcoder_assets.phase2.quality_annotator import quality_tables

    if "skipped" in quality:
        return {"eval_skipped": quality["skipped"]}
    best = quality["best_baseline"]
    return {
        "eval_roc_auc": quality["annotator"]["roc_auc"],
        "best_baseline": best,
        "best_baseline_roc_auc": quality["baselines"][best]["roc_auc"],
        **{
            f"baseline_roc_auc_{name.replace(':', '_')}": value["roc_auc"]
            for name, value in quality["baselines"].items()
        },
        "eval_rows": quality["eval_rows"],
        **{k: dg.MetadataValue.md(v) for k, v in quality_tables(quality).items()},
    }


@dg.asset(
    group_name="phase2",
    deps=["annotator_training_set"],
    kinds={"pytorch"},
    pool=GPU,
    op_tags=GPU_POD,
    automation_condition=ON_MISSING,
)
def quality_annotator(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """A BERT-style encoder with a linear head, fine-tuned to tell positives from negatives;
    saved as a Hugging Face model folder (safetensors) with a model card."""
    from snowcoder_assets.phase2.quality_annotator import measure_quality, train_quality_annotator

    config = snowcoder.load()
    report = train_quality_annotator(config, context.log.info)
    quality = measure_quality(config, context.log.info)
    out = annotator_dir(config.data_dir)
    metadata = {
        "validation_roc_auc": report.get("roc_auc"),
        **eval_metadata(quality),
        "validation_loss": report.get("validation_loss"),
        "num_train": report.get("num_train"),
        "num_validation": report.get("num_validation"),
        "seconds": report.get("seconds"),
        "loss_curve": checks.loss_curve(report.get("train_losses", [])),
        "path": dg.MetadataValue.path(str(out)),
    }
    outputs = [*files_under(out), annotator_eval_path(config.data_dir)]
    return materialize_files(context, config, outputs, metadata)


@dg.asset(
    partitions_def=SOURCE_SHARDS,
    group_name="phase2",
    deps=["quality_annotator", "tokenizer", "decontaminated_files"],
    kinds={"pytorch", "parquet"},
    pool=GPU,
    op_tags=GPU_POD,
    automation_condition=ON_MISSING,
)
def quality_scores(
    context: dg.AssetExecutionContext, snowcoder: SnowcoderConfigResource
) -> dg.MaterializeResult:
    """Every phase-1 file's quality score (mean of its top, middle and bottom chunks) and its
    token count, per source shard; the annotator loads once per run."""
    from snowcoder_assets.phase2.quality_scores import PartitionScorer

    config = snowcoder.load()
    scorer = PartitionScorer(config, context.log.info)

    def score(source: str, shard: str) -> PartitionResult:
        stats, path = scorer.score(source, shard)
        return PartitionResult(stats, [path])

    return materialize_partitions(context, config, score)


@dg.asset(
    group_name="phase2",
    deps=["quality_scores"],
    kinds={"parquet"},
    pool=GLOBAL_WRITERS,
    op_tags=GLOBAL_POD,
    automation_condition=CPU_EAGER,
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
    from snowcoder_assets.phase2.topk import score_histograms_png
    from snowcoder_assets.phase2.topk_corpus import build_topk_corpus, quality_path

    config = snowcoder.load()
    data_dir = config.data_dir
    partitions = materialized_config_partitions(context.instance, config, "quality_scores")
    report = build_topk_corpus(config, partitions, context.log.info)
    refresh_views(data_dir)
    frame, languages = report.pop("frame"), report["languages"]["languages"]
    metadata = {
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
        "selected_vs_left": dg.MetadataValue.md(markdown_table(report["profile"])),
        "score_histograms": checks.png_markdown(
            score_histograms_png(frame, report["cutoffs"]), "score histograms"
        ),
        "path": dg.MetadataValue.path(str(topk_dir(data_dir))),
    }
    outputs = [
        *files_under(topk_dir(data_dir)),
        topk_selection_path(data_dir),
        quality_path(data_dir),
    ]
    return materialize_files(
        context, config, outputs, metadata, checks.topk_checks(config, report, frame)
    )


def code_versions(config) -> dict[str, str]:
    from snowcoder_assets.versions import code_version

    def room(*names: str) -> list[str]:
        return [f"snowcoder_assets.phase2.{n}" for n in names]

    return {
        "annotator_training_set": code_version(
            room("annotator_training_set", "training_set", "hard_negatives"),
            config.annotator_data,
            config.decontamination,
        ),
        "quality_annotator": code_version(
            room("quality_annotator", "annotator", "scoring", "quality_eval", "quality_yardstick"),
            config.annotator,
        ),
        "quality_scores": code_version(
            room("quality_scores", "scoring"), config.scoring, config.annotator.max_length
        ),
        "topk_corpus": code_version(
            [*room("topk_corpus", "topk"), "snowcoder_assets.phase1.corpus"],
            config.topk,
            config.corpus,
        ),
    }
