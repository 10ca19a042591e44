"""`synthetic_seeds`: the phase-2 files phase 3's prompts are written from.

Arctic-SnowCoder's phase 3 prompts a strong instruction model with the best phase-2 files and
raises Python to about half of the mix. Here, per language, seeds are drawn from the files
`topk_corpus` selected, in a seeded order (`md5(seed || doc_id)`): Python gets
`python_share` of `max_prompts`, every other language its share of the phase-2 tokens
(largest-remainder rounding, as the phase-2 budgets). A language with fewer files than its
share gives the rest to the languages that have more, largest share first.

A seed is the whole file when it fits `seed_max_tokens` (tokenizer tokens), else a snippet of
consecutive whole units: top-level statements of a Python file (from `ast`: a function or
class with its decorators and the comments above it), or for other languages blocks that
start at column 0 after a blank line. A snippet never starts or ends mid-statement; only a
file whose every unit is longer than the cap is cut at a line boundary (`cut = "lines"`).
"""

from __future__ import annotations

import ast
import hashlib
import random
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from snowcoder_assets.config import SnowcoderConfig, split_partition_key
from snowcoder_assets.io import digest, write_table
from snowcoder_assets.phase1.decontaminated_files import decontaminated_path
from snowcoder_assets.phase2.topk import language_budgets
from snowcoder_assets.phase2.topk_corpus import quality_path, read_selection

SEEDS_SCHEMA = pa.schema(
    [
        ("seed_id", pa.string()),
        ("doc_id", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("lang", pa.string()),
        ("start_line", pa.int32()),  # 1-based, inclusive
        ("end_line", pa.int32()),
        ("cut", pa.string()),  # file | units | lines
        ("tokens", pa.int64()),
        ("text", pa.large_string()),
    ]
)
Units = list[tuple[int, int]]  # (first line, last line), 0-based inclusive
CountTokens = Callable[[list[str]], list[int]]
Log = Callable[[str], None]


def seeds_path(data_dir: Path) -> Path:
    return data_dir / "synthetic_seeds" / "seeds.parquet"


def prompt_counts(
    tokens_by_lang: dict[str, int], files_by_lang: dict[str, int], total: int, python_share: float
) -> dict[str, int]:
    """Prompts per language: Python its share, the others their phase-2 token shares."""
    others = {lang: t for lang, t in tokens_by_lang.items() if lang != "python"}
    python = round(total * python_share) if "python" in tokens_by_lang else 0
    if not others:
        python = total if "python" in tokens_by_lang else 0
    counts = {"python": python} if "python" in tokens_by_lang else {}
    if others and sum(others.values()) > 0:
        counts.update(language_budgets(others, total - python))
    elif others:
        counts.update({lang: 0 for lang in others})
    short = 0
    for lang in counts:
        short += max(0, counts[lang] - files_by_lang.get(lang, 0))
        counts[lang] = min(counts[lang], files_by_lang.get(lang, 0))
    for lang in sorted(counts, key=lambda k: (-tokens_by_lang[k], k)):
        extra = min(short, files_by_lang.get(lang, 0) - counts[lang])
        counts[lang] += extra
        short -= extra
    return dict(sorted(counts.items()))


def seeded_rank(seed: int, doc_id: str) -> str:
    return hashlib.md5(f"{seed}\0{doc_id}".encode()).hexdigest()


def python_units(text: str) -> Units | None:
    """Top-level statements of a Python file, comments above each joined to it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    units, previous_end = [], -1
    for node in tree.body:
        end = (node.end_lineno or node.lineno) - 1
        units.append((previous_end + 1, end))
        previous_end = end
    return units or None


def block_units(lines: Sequence[str]) -> Units:
    """Blocks that start at column 0 after a blank line (closing braces stay with a block)."""
    starts = [0]
    for i in range(1, len(lines)):
        line = lines[i]
        if (
            not lines[i - 1].strip()
            and line[:1] not in ("", " ", "\t", "}", ")", "]")
            and not line.startswith(("end", "else", "elif", "fi", "done", "esac"))
        ):
            starts.append(i)
    return [(s, e - 1) for s, e in zip(starts, [*starts[1:], len(lines)], strict=True)]


def cut_seed(
    text: str,
    lang: str,
    max_tokens: int,
    count: CountTokens,
    rng: random.Random,
) -> tuple[int, int, str, int]:
    """(start line, end line, cut, tokens) of the seed taken from one file (0-based lines)."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return 0, 0, "file", 0
    whole = count([text])[0]
    if whole <= max_tokens:
        return 0, len(lines) - 1, "file", whole
    units = (python_units(text) if lang == "python" else None) or block_units(lines)
    sizes = count(["".join(lines[a : b + 1]) for a, b in units])
    order = list(range(len(units)))
    rng.shuffle(order)
    for start in order:
        if sizes[start] > max_tokens:
            continue
        end, total = start, sizes[start]
        while end + 1 < len(units) and total + sizes[end + 1] <= max_tokens:
            end += 1
            total += sizes[end]
        return units[start][0], units[end][1], "units", total
    return _cut_lines(lines, units[order[0]], max_tokens, count)


def _cut_lines(
    lines: list[str],
    unit: tuple[int, int],
    max_tokens: int,
    count: CountTokens,
) -> tuple[int, int, str, int]:
    first, last = unit
    sizes = count(lines[first : last + 1])
    end, total = first, sizes[0]
    while end < last and total + sizes[end - first + 1] <= max_tokens:
        end += 1
        total += sizes[end - first]
    return first, end, "lines", total


def select_seeds(
    files: pl.DataFrame, counts: dict[str, int], config: SnowcoderConfig, count: CountTokens
) -> list[dict[str, Any]]:
    """The first `counts[lang]` files of each language in seeded order, cut to seeds."""
    settings = config.synthetic
    seeds = []
    ranked = files.with_columns(
        rank=pl.col("doc_id").map_elements(
            lambda d: seeded_rank(settings.seed, d), return_dtype=pl.String
        )
    ).sort("lang", "rank")
    for lang, n in counts.items():
        for row in ranked.filter(pl.col("lang") == lang).head(n).iter_rows(named=True):
            rng = random.Random(seeded_rank(settings.seed, row["doc_id"]))
            first, last, cut, tokens = cut_seed(
                row["content"], lang, settings.seed_max_tokens, count, rng
            )
            lines = row["content"].splitlines(keepends=True)
            seeds.append(
                {
                    "seed_id": digest(row["doc_id"], first, last),
                    **{k: row[k] for k in ("doc_id", "repo", "path", "lang")},
                    "start_line": first + 1,
                    "end_line": last + 1,
                    "cut": cut,
                    "tokens": tokens,
                    "text": "".join(lines[first : last + 1]),
                }
            )
    return seeds


def build_seeds(config: SnowcoderConfig, partitions: list[str], log: Log) -> dict[str, Any]:
    """Sample and cut the seeds, write them; a report for the asset's metadata."""
    from snowcoder_assets.layout import tokenizer_dir
    from snowcoder_assets.tokens.tokenizer import load_tokenizer

    data_dir, settings = config.data_dir, config.synthetic
    selected = pl.read_parquet(quality_path(data_dir)).filter(pl.col("selected"))
    paths = [str(decontaminated_path(data_dir, *split_partition_key(p))) for p in partitions]
    files = (
        pl.scan_parquet(paths)
        .select("doc_id", "repo", "path", "lang", "content")
        .join(selected.lazy().select("doc_id"), on="doc_id", how="semi")
        .collect()
        if paths
        else pl.DataFrame()
    )
    languages = read_selection(data_dir)["languages"]["languages"]
    files_by_lang = dict(files.group_by("lang").len().iter_rows()) if files.height else {}
    tokens_by_lang = {
        lang: int(languages.get(lang, {}).get("selected_tokens", 0)) for lang in files_by_lang
    }
    counts = prompt_counts(
        tokens_by_lang, files_by_lang, settings.max_prompts, settings.python_share
    )
    tokenizer = load_tokenizer(str(tokenizer_dir(data_dir)))

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    seeds = select_seeds(files, counts, config, count)
    table = pa.Table.from_pylist(seeds, schema=SEEDS_SCHEMA)
    write_table(seeds_path(data_dir), table)
    by_lang = {lang: n for lang in counts if (n := sum(1 for s in seeds if s["lang"] == lang))}
    log(f"{len(seeds)} seeds from {files.height} top-k files: {by_lang}")
    return {
        "seeds": len(seeds),
        "seeds_by_language": by_lang,
        "cuts": {c: sum(1 for s in seeds if s["cut"] == c) for c in ("file", "units", "lines")},
        "seed_tokens": sum(s["tokens"] for s in seeds),
    }
