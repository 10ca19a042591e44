"""How the files phase 2 selected differ from the ones it left: the `topk_corpus` profile.

Per language and side (selected or not): files, the share with documentation (Python: a def
that opens a docstring; other languages: at least 10% comment lines), the share with tests
(test functions, test classes or doctests), and the mean line length. One streaming pass over
the phase-1 files; only these three small features are kept per file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from snowcoder_assets.io import iter_rows
from snowcoder_assets.phase2.quality_yardstick import DOCSTRING

TESTS = re.compile(
    r"^[ \t]*(?:(?:async[ \t]+)?def[ \t]+test_?\w*[ \t]*\(|class[ \t]+Test\w*|>>>[ \t]"
    r"|@Test\b|#\[test\]|TEST(?:_F)?\(|(?:it|describe|test)\([\"'`])",
    re.MULTILINE,
)
COMMENTED_SHARE = 0.1


def features(content: str, lang: str, comment_fraction: float | None) -> dict[str, Any]:
    """(documented, with_tests, mean_line_length) of one file."""
    lines = content.splitlines() or [""]
    if lang == "python":
        documented = DOCSTRING.search(content) is not None
    else:
        documented = (comment_fraction or 0.0) >= COMMENTED_SHARE
    return {
        "documented": documented,
        "with_tests": TESTS.search(content) is not None,
        "mean_line_length": sum(map(len, lines)) / len(lines),
    }


def profile(shards: Iterable[tuple[Path, Path]], selection) -> list[dict[str, Any]]:
    """Rows of (lang, side, files, documented, with_tests, mean_line_length) for the files of
    `selection` (doc_id, lang, selected), from (phase-1 files, their signals) parquet pairs."""
    import polars as pl

    rows = []
    for files, signals in shards:
        shares = pl.read_parquet(signals, columns=["doc_id", "comment_fraction"])
        comment = dict(zip(shares["doc_id"], shares["comment_fraction"], strict=True))
        for batch in iter_rows(files, ["doc_id", "lang", "content"]):
            for row in batch:
                share = comment.get(row["doc_id"])
                rows.append(
                    {"doc_id": row["doc_id"], **features(row["content"], row["lang"], share)}
                )
    if not rows:
        return []
    frame = selection.select("doc_id", "lang", "selected").join(
        pl.DataFrame(rows), on="doc_id", how="inner"
    )
    table = frame.group_by("lang", "selected").agg(
        pl.len().alias("files"),
        pl.col("documented").mean().round(3),
        pl.col("with_tests").mean().round(3),
        pl.col("mean_line_length").mean().round(1),
    )
    counts = frame.group_by("lang").len()
    order = counts.sort(["len", "lang"], descending=[True, False])["lang"].to_list()  # ties by name
    table = table.with_columns(
        pl.col("lang").replace_strict({k: i for i, k in enumerate(order)}).alias("_order")
    ).sort(["_order", "selected"], descending=[False, True])
    return [
        {**r, "selected": "selected" if r["selected"] else "left"}
        for r in table.drop("_order").to_dicts()
    ]
