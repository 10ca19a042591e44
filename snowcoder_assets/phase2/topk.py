"""Top-k selection of the phase-2 corpus: per language, the highest-scored files up to a budget.

Arctic-SnowCoder phase 2 trains on the top 12.5B tokens of the phase-1 corpus by quality score,
repeated 4 times (4 x 12.5B beat 1/2/3/5 repeats), ranking per language so that the phase-2
corpus keeps the phase-1 language mix. Budgets are counted in tokenizer tokens.

Selection, per language:

1. the global budget is split by each language's share of phase-1 tokens
   (`language_budgets`, largest-remainder rounding: the parts sum exactly to the budget);
2. files are ranked by score descending, then doc_id ascending (a deterministic tie-break);
3. the *prefix*: files are taken in rank order while the running total fits the budget;
4. the *fill* (greedy knapsack): after the first file that does not fit, the walk goes on in
   rank order and takes every file that still fits in what is left, so smaller lower-ranked
   files fill the remainder; it stops once what is left is below the smallest file left.

Files are never split, so a file larger than its language's budget is never selected. Every
prefix file scores at least as high as every unselected file; a fill file may score lower
than an unselected file that was too large to fit.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping

import numpy as np
import polars as pl
from pydantic import Field

from snowcoder_assets.strict import StrictModel

INPUT_COLUMNS = ("doc_id", "lang", "tokens", "score")


class TopkConfig(StrictModel):
    """How much of the phase-1 corpus goes into phase 2.

    At paper scale the budget is 12.5B tokens out of roughly 400B unique phase-1 tokens, a
    fraction of about 0.03; the default 0.25 keeps a small demo corpus non-trivial.
    """

    budget_tokens: int | None = Field(default=None, ge=0)  # absolute budget; wins over fraction
    budget_fraction: float = Field(default=0.25, gt=0.0, le=1.0)  # of phase-1 tokens
    repeats: int = Field(default=4, ge=1)  # epochs over the selection, for the training manifest


def budget_for(total_tokens: int, config: TopkConfig) -> int:
    """The phase-2 token budget for a phase-1 corpus of `total_tokens`, at most `total_tokens`."""
    if total_tokens < 0:
        raise ValueError(f"total_tokens must be >= 0, got {total_tokens}")
    if config.budget_tokens is not None:
        return min(config.budget_tokens, total_tokens)
    return min(math.floor(total_tokens * config.budget_fraction), total_tokens)


def language_budgets(tokens_by_lang: Mapping[str, int], budget: int) -> dict[str, int]:
    """Split `budget` by each language's share of tokens; the parts sum exactly to `budget`.

    Largest-remainder (Hamilton) rounding in exact integer arithmetic: every language gets the
    floor of its quota, and the leftover tokens go one each to the largest remainders, ties
    broken by language name. A corpus without tokens gets all-zero budgets.
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if any(t < 0 for t in tokens_by_lang.values()):
        raise ValueError("token counts must be >= 0")
    total = sum(tokens_by_lang.values())
    if total == 0:
        return {lang: 0 for lang in sorted(tokens_by_lang)}
    parts = {lang: divmod(budget * tokens, total) for lang, tokens in tokens_by_lang.items()}
    leftover = budget - sum(q for q, _ in parts.values())
    by_remainder = sorted(parts, key=lambda lang: (-parts[lang][1], lang))
    bonus = set(by_remainder[:leftover])
    return {lang: parts[lang][0] + (lang in bonus) for lang in sorted(parts)}


def select_topk(frame: pl.DataFrame, budget: int) -> pl.DataFrame:
    """Rank files per language and mark the selected ones (see the module docstring).

    `frame` has doc_id, lang, tokens and score (other columns pass through). The result adds
    `rank` (1-based within language) and `selected`, sorted by lang then rank, so it does not
    depend on the input row order. Scores must not be null or NaN, tokens not negative.
    """
    _validate(frame)
    ordered = frame.sort(
        ["lang", "score", "doc_id", "tokens"], descending=[False, True, False, False]
    )
    per_lang = ordered.group_by("lang", maintain_order=True).agg(
        n=pl.len(), tokens=pl.col("tokens").cast(pl.Int64).sum()
    )
    budgets = language_budgets(dict(zip(per_lang["lang"], per_lang["tokens"], strict=True)), budget)
    lang_budget = pl.col("lang").replace_strict(budgets, return_dtype=pl.Int64, default=0)
    ordered = ordered.with_columns(
        rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("lang"),
        _prefix=pl.col("tokens").cast(pl.Int64).cum_sum().over("lang") <= lang_budget,
    )
    selected = ordered["_prefix"].to_numpy().copy()
    tokens = ordered["tokens"].cast(pl.Int64).to_numpy()
    starts = np.concatenate([[0], np.cumsum(per_lang["n"].to_numpy())])
    for i, lang in enumerate(per_lang["lang"]):
        start, end = int(starts[i]), int(starts[i + 1])
        n_prefix = int(selected[start:end].sum())
        remaining = budgets[lang] - int(tokens[start : start + n_prefix].sum())
        if start + n_prefix + 1 < end and remaining > 0:
            first = start + n_prefix + 1  # the file at start + n_prefix did not fit
            selected[first + _fill(tokens[first:end], remaining)] = True
    return ordered.drop("_prefix").with_columns(selected=pl.Series(selected, dtype=pl.Boolean))


def _validate(frame: pl.DataFrame) -> None:
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"select_topk needs columns {missing}")
    score = frame["score"].cast(pl.Float64)
    if score.null_count() or score.is_nan().any():
        raise ValueError("every file needs a score (found null or NaN)")
    if frame["tokens"].null_count() or (frame["tokens"] < 0).any():
        raise ValueError("token counts must be non-null and >= 0")


def _fill(tokens: np.ndarray, remaining: int) -> np.ndarray:
    """Positions taken by walking `tokens` in order and taking each file that still fits."""
    candidates = np.flatnonzero(tokens <= remaining)  # larger files can never fit
    sizes = tokens[candidates].tolist()
    smallest_left = np.minimum.accumulate(tokens[candidates][::-1])[::-1].tolist()
    taken = []
    for k, (size, smallest) in enumerate(zip(sizes, smallest_left, strict=True)):
        if remaining < smallest:
            break
        if size <= remaining:
            taken.append(k)
            remaining -= size
    return candidates[np.asarray(taken, dtype=np.int64)]


def cutoffs(selected_frame: pl.DataFrame) -> dict[str, float]:
    """The lowest selected score per language (languages with no selected file are absent)."""
    lowest = (
        selected_frame.filter("selected").group_by("lang").agg(pl.col("score").min()).sort("lang")
    )
    return dict(zip(lowest["lang"], lowest["score"].cast(pl.Float64), strict=True))


def summary(frame: pl.DataFrame, budget: int) -> dict:
    """Totals and per-language available/selected tokens and files, budgets and shares.

    `frame` is a `select_topk` result and `budget` the global budget it was selected with.
    Languages are listed by available tokens, largest first; shares are fractions of tokens.
    """
    per_lang = _per_language(frame)
    available, chosen = int(per_lang["tokens"].sum()), int(per_lang["selected_tokens"].sum())
    budgets = language_budgets(dict(zip(per_lang["lang"], per_lang["tokens"], strict=True)), budget)
    lowest = cutoffs(frame)
    languages = {
        row["lang"]: {
            "available_tokens": row["tokens"],
            "available_files": row["files"],
            "selected_tokens": row["selected_tokens"],
            "selected_files": row["selected_files"],
            "budget": budgets[row["lang"]],
            "cutoff": lowest.get(row["lang"]),
            "share_phase1": row["tokens"] / available if available else 0.0,
            "share_selected": row["selected_tokens"] / chosen if chosen else 0.0,
        }
        for row in per_lang.iter_rows(named=True)
    }
    return {
        "budget": budget,
        "available_tokens": available,
        "available_files": frame.height,
        "selected_tokens": chosen,
        "selected_files": int(frame["selected"].sum()),
        "languages": languages,
    }


def _per_language(frame: pl.DataFrame) -> pl.DataFrame:
    tokens = pl.col("tokens").cast(pl.Int64)
    return (
        frame.group_by("lang")
        .agg(
            tokens=tokens.sum(),
            files=pl.len(),
            selected_tokens=tokens.filter("selected").sum(),
            selected_files=pl.col("selected").sum(),
        )
        .sort(["tokens", "lang"], descending=[True, False])
    )


def score_histograms_png(
    frame: pl.DataFrame, cutoffs: Mapping[str, float], max_languages: int = 8
) -> bytes:
    """Score histograms of the largest languages, selected files stacked, cut-off marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = _per_language(frame).head(max_languages)
    ncols = max(1, min(4, langs.height))
    nrows = max(1, math.ceil(langs.height / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 2.4 * nrows), squeeze=False)
    for ax in axes.flat[langs.height :]:
        ax.axis("off")
    if langs.height == 0:
        axes[0, 0].text(0.5, 0.5, "no scored files", ha="center", va="center")
    for ax, row in zip(axes.flat, langs.iter_rows(named=True), strict=False):
        rows = frame.filter(pl.col("lang") == row["lang"])
        scores = rows["score"].cast(pl.Float64).to_numpy()
        kept = rows.filter("selected")["score"].cast(pl.Float64).to_numpy()
        bins = np.histogram_bin_edges(scores, bins=30)
        ax.hist(scores, bins=bins, color="lightgray", label="all")
        ax.hist(kept, bins=bins, color="tab:blue", label="selected")
        if row["lang"] in cutoffs:
            ax.axvline(cutoffs[row["lang"]], color="tab:red", linestyle="--", linewidth=1)
        ax.set_title(
            f"{row['lang']}: selected {row['selected_files']} of {row['files']}", fontsize=9
        )
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()
