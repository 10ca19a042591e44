"""Invariants of `topk_corpus` and the pictures phase 2 shows in the UI (plain functions)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from snowcoder_assets.config import SnowcoderConfig
from snowcoder_assets.metadata import figure_png, png_markdown
from snowcoder_assets.storage import connect_duckdb

BUDGET_MET = "budget_met"
LANGUAGE_MIX_KEPT = "language_mix_kept"
SELECTED_IN_PHASE1 = "selected_in_phase1"
TOPK_CHECKS = (BUDGET_MET, LANGUAGE_MIX_KEPT, SELECTED_IN_PHASE1)
BUDGET_TOLERANCE = 0.01  # selected tokens within 1% of the budget
MIX_TOLERANCE = 0.02  # each language's share within 2 points of its phase-1 share


def topk_checks(config: SnowcoderConfig, report: dict[str, Any], frame) -> list:
    return [
        budget_met(report, frame),
        language_mix_kept(report),
        selected_in_phase1(config, frame),
    ]


def unfilled_languages(report: dict[str, Any], frame) -> dict[str, int]:
    """Languages where an unselected file would still fit the remaining budget (tokens left)."""
    import polars as pl

    left = {
        lang: v["budget"] - v["selected_tokens"]
        for lang, v in report["languages"]["languages"].items()
    }
    smallest = (
        frame.filter(~pl.col("selected")).group_by("lang").agg(pl.col("tokens").min()).to_dicts()
    )
    return {r["lang"]: left[r["lang"]] for r in smallest if r["tokens"] <= left.get(r["lang"], 0)}


def budget_met(report: dict[str, Any], frame) -> dg.AssetCheckResult:
    """Within 1% of the budget, never over it; on a corpus too small for 1% (files are never
    split), no unselected file may still fit its language's remaining budget."""
    budget, selected = report["budget_tokens"], report["selected_tokens"]
    error = abs(selected - budget) / budget if budget else 0.0
    unfilled = unfilled_languages(report, frame)
    passed = selected <= budget and (error <= BUDGET_TOLERANCE or not unfilled)
    return dg.AssetCheckResult(
        check_name=BUDGET_MET,
        asset_key="topk_corpus",
        passed=passed,
        metadata={
            "budget_tokens": budget,
            "selected_tokens": selected,
            "relative_error": round(error, 5),
            "unfilled_languages": unfilled or "none",
        },
    )


def language_mix_kept(report: dict[str, Any]) -> dg.AssetCheckResult:
    langs = report["languages"]["languages"]
    off = {
        lang: round(v["share_selected"] - v["share_phase1"], 4)
        for lang, v in langs.items()
        if abs(v["share_selected"] - v["share_phase1"]) > MIX_TOLERANCE
    }
    return dg.AssetCheckResult(
        check_name=LANGUAGE_MIX_KEPT,
        asset_key="topk_corpus",
        passed=not off,
        metadata={"languages_off_by_more_than_2_points": off or "none"},
    )


def selected_in_phase1(config: SnowcoderConfig, frame) -> dg.AssetCheckResult:
    """Every selected file is a member of a phase-1 document (its `phase1` decision exists)."""
    import polars as pl

    from snowcoder_assets.layout import lineage_db_path

    selected = frame.filter(pl.col("selected")).select("doc_id").to_arrow()
    with connect_duckdb(str(lineage_db_path(config.data_dir)), read_only=True) as con:
        con.register("selected_files", selected)
        missing = [
            r[0]
            for r in con.execute(
                "SELECT doc_id FROM selected_files ANTI JOIN "
                "(SELECT doc_id FROM decisions WHERE stage = 'phase1' AND kept) USING (doc_id)"
            ).fetchall()
        ]
    return dg.AssetCheckResult(
        check_name=SELECTED_IN_PHASE1,
        asset_key="topk_corpus",
        passed=not missing,
        metadata={"num_missing": len(missing), "first_doc_ids": missing[:10]},
    )


def loss_curve(losses: list[float]) -> dg.MarkdownMetadataValue:
    """Training loss per step, as a picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_xlabel("step")
    ax.set_ylabel("BCE loss")
    ax.set_title("quality annotator training loss")
    return png_markdown(figure_png(fig), "loss curve")


__all__ = ["TOPK_CHECKS", "loss_curve", "png_markdown", "topk_checks"]
