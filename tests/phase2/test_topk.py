"""Top-k selection: budgets met, language mix kept, the greedy rule exact, runs repeatable."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from snowcoder_assets.phase2.topk import (
    TopkConfig,
    budget_for,
    cutoffs,
    language_budgets,
    score_histograms_png,
    select_topk,
    summary,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCHEMA = {"doc_id": pl.String, "lang": pl.String, "tokens": pl.Int64, "score": pl.Float64}


def realistic_frame(n: int = 5000, seed: int = 0, decimals: int | None = None) -> pl.DataFrame:
    """Three languages (60/30/10 of files), lognormal token counts, scores in [0, 1]."""
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 5, n)
    return pl.DataFrame(
        {
            "doc_id": [f"doc-{i:06d}" for i in range(n)],
            "lang": rng.choice(["python", "java", "rust"], n, p=[0.6, 0.3, 0.1]),
            "tokens": np.maximum(1, rng.lognormal(6.0, 1.2, n)).astype(np.int64),
            "score": score if decimals is None else np.round(score, decimals),
        },
        schema=SCHEMA,
    )


def frame_of(rows: list[tuple[str, str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def reference_greedy(frame: pl.DataFrame, budget: int) -> set[str]:
    """The rule spelled out in plain Python: per language, walk by rank, take what still fits."""
    by_lang: dict[str, list[tuple[float, str, int]]] = {}
    for doc_id, lang, tokens, score in frame.select(list(SCHEMA)).iter_rows():
        by_lang.setdefault(lang, []).append((-score, doc_id, tokens))
    totals = {lang: sum(t for *_, t in files) for lang, files in by_lang.items()}
    taken = set()
    for lang, remaining in language_budgets(totals, budget).items():
        for _, doc_id, tokens in sorted(by_lang[lang]):
            if tokens <= remaining:
                taken.add(doc_id)
                remaining -= tokens
    return taken


@pytest.mark.parametrize(
    ("total", "config", "expected"),
    [
        (1000, TopkConfig(), 250),
        (1001, TopkConfig(budget_fraction=0.5), 500),
        (1000, TopkConfig(budget_tokens=300), 300),
        (1000, TopkConfig(budget_tokens=5000), 1000),
        (1000, TopkConfig(budget_tokens=0), 0),
        (0, TopkConfig(), 0),
        (400 * 10**9, TopkConfig(budget_fraction=0.03125), 12_500_000_000),
    ],
)
def test_budget_for_fraction_or_absolute(total: int, config: TopkConfig, expected: int) -> None:
    assert budget_for(total, config) == expected


@pytest.mark.parametrize(
    "kwargs", [{"budget_fraction": 0.0}, {"budget_fraction": 1.5}, {"repeats": 0}, {"x": 1}]
)
def test_topk_config_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValidationError):
        TopkConfig(**kwargs)


@pytest.mark.parametrize(
    ("tokens", "budget", "expected"),
    [
        ({"a": 1, "b": 1, "c": 1}, 10, {"a": 4, "b": 3, "c": 3}),
        ({"c": 1, "b": 1, "a": 1}, 10, {"a": 4, "b": 3, "c": 3}),
        ({"a": 500, "b": 300, "c": 200}, 100, {"a": 50, "b": 30, "c": 20}),
        ({"a": 2, "b": 1}, 1, {"a": 1, "b": 0}),
        ({"a": 0, "b": 7}, 5, {"a": 0, "b": 5}),
        ({"a": 0, "b": 0}, 5, {"a": 0, "b": 0}),
        ({}, 5, {}),
    ],
)
def test_language_budgets_largest_remainder(
    tokens: dict[str, int], budget: int, expected: dict[str, int]
) -> None:
    assert language_budgets(tokens, budget) == expected


def test_language_budgets_sum_exactly() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        tokens = {
            f"l{i}": int(t) for i, t in enumerate(rng.integers(0, 10**9, rng.integers(1, 40)))
        }
        budget = int(rng.integers(0, sum(tokens.values()) + 1))
        parts = language_budgets(tokens, budget)
        assert sum(parts.values()) == budget
        assert all(parts[lang] <= tokens[lang] for lang in tokens)


def test_select_topk_meets_budget_and_keeps_language_mix() -> None:
    frame = realistic_frame()
    budget = budget_for(int(frame["tokens"].sum()), TopkConfig())
    out = select_topk(frame, budget)
    report = summary(out, budget)
    assert 0.99 * budget <= report["selected_tokens"] <= budget
    for lang, row in report["languages"].items():
        assert row["selected_tokens"] <= row["budget"], lang
        assert abs(row["share_selected"] - row["share_phase1"]) < 0.02, lang
    assert sum(row["budget"] for row in report["languages"].values()) == budget


def test_select_topk_follows_the_greedy_rule_exactly() -> None:
    frame = realistic_frame()
    budget = int(frame["tokens"].sum()) // 4
    out = select_topk(frame, budget)
    assert set(out.filter("selected")["doc_id"]) == reference_greedy(frame, budget)
    budgets = language_budgets(
        dict(out.group_by("lang").agg(pl.col("tokens").sum()).iter_rows()), budget
    )
    checked = out.with_columns(
        before=(pl.col("tokens") * pl.col("selected")).cum_sum().over("lang")
        - pl.col("tokens") * pl.col("selected"),
        budget=pl.col("lang").replace_strict(budgets, return_dtype=pl.Int64),
        first_miss=pl.col("rank").filter(~pl.col("selected")).min().over("lang"),
        best_miss=pl.col("score").filter(~pl.col("selected")).max().over("lang"),
    )
    # A file is selected exactly when it fits into what its better-ranked selections left.
    fits = pl.col("before") + pl.col("tokens") <= pl.col("budget")
    assert checked.filter(pl.col("selected") != fits).is_empty()
    # Selected files scoring below an unselected one are fill files, ranked after the first miss.
    below = checked.filter(pl.col("selected") & (pl.col("score") < pl.col("best_miss")))
    assert (below["rank"] > below["first_miss"]).all()
    assert below.height > 0  # the fill pass did something on this frame
    prefix = checked.filter(pl.col("selected") & (pl.col("rank") < pl.col("first_miss")))
    assert (prefix["score"] >= prefix["best_miss"]).all()


def test_select_topk_ranks_by_score_then_doc_id() -> None:
    frame = frame_of([("b", "py", 1, 0.5), ("a", "py", 1, 0.5), ("c", "py", 1, 0.9)])
    out = select_topk(frame, 2)
    assert out["doc_id"].to_list() == ["c", "a", "b"]
    assert out["rank"].to_list() == [1, 2, 3]
    assert out["selected"].to_list() == [True, True, False]
    assert cutoffs(out) == {"py": 0.5}


def test_select_topk_is_independent_of_row_order_with_ties() -> None:
    frame = realistic_frame(decimals=1)  # ~10 distinct scores: ties everywhere
    budget = int(frame["tokens"].sum()) // 5
    expected = select_topk(frame, budget)
    for seed in range(3):
        shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
        assert select_topk(shuffled, budget).equals(expected)


def test_select_topk_never_splits_a_huge_file() -> None:
    frame = frame_of(
        [
            ("huge", "go", 10_000, 0.99),
            ("s1", "go", 100, 0.5),
            ("s2", "go", 100, 0.4),
            ("solo", "c", 50_000, 0.9),
        ]
    )
    out = select_topk(frame, 6_000)  # go gets 1017 tokens, c 4983
    assert set(out.filter("selected")["doc_id"]) == {"s1", "s2"}
    assert cutoffs(out) == {"go": 0.4}
    report = summary(out, 6_000)
    assert report["languages"]["c"]["selected_files"] == 0
    assert report["languages"]["c"]["cutoff"] is None


@pytest.mark.parametrize(("budget", "expected"), [(0, 0), (10**12, 5000)])
def test_select_topk_budget_extremes(budget: int, expected: int) -> None:
    out = select_topk(realistic_frame(), budget)
    assert int(out["selected"].sum()) == expected


def test_select_topk_empty_frame() -> None:
    out = select_topk(pl.DataFrame(schema=SCHEMA), 100)
    assert out.is_empty()
    assert out.columns == [*SCHEMA, "rank", "selected"]
    assert cutoffs(out) == {}
    report = summary(out, 100)
    assert report["selected_tokens"] == 0
    assert report["languages"] == {}
    assert score_histograms_png(out, {}).startswith(PNG_MAGIC)


def test_select_topk_keeps_extra_columns() -> None:
    frame = realistic_frame(n=50).with_columns(path=pl.col("doc_id") + ".py")
    out = select_topk(frame, 1000)
    assert out.columns == [*SCHEMA, "path", "rank", "selected"]
    assert (out["path"] == out["doc_id"] + ".py").all()


@pytest.mark.parametrize(
    "rows",
    [
        [("a", "py", 1, float("nan"))],
        [("a", "py", 1, None)],
        [("a", "py", -1, 0.5)],
    ],
)
def test_select_topk_rejects_bad_input(rows: list) -> None:
    with pytest.raises(ValueError):
        select_topk(frame_of(rows), 10)


def test_select_topk_rejects_missing_columns() -> None:
    with pytest.raises(ValueError, match="score"):
        select_topk(realistic_frame(n=5).drop("score"), 10)


def test_score_histograms_png_is_a_png() -> None:
    out = select_topk(realistic_frame(), 100_000)
    png = score_histograms_png(out, cutoffs(out), max_languages=2)
    assert png.startswith(PNG_MAGIC)
