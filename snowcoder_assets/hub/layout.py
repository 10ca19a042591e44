"""`dataset_layout`: the exact folder a dataset publication uploads, written atomically.

    README.md                                  card + YAML front matter (configs, license, ...)
    data/default/train-00000-of-00002.parquet  every document, languages in name order
    data/python/train-00000-of-00001.parquet   one config per language

Rows are ordered by (lang, document_id) and shards are cut by row count and payload bytes, so the
same corpus always gives byte-identical files (and hence no new Hub commit).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from snowcoder_assets.hub.cards import CardInfo, LangStats, render_card

DEFAULT_CONFIG = "default"
SHARD_ROWS = 1_000_000
SHARD_BYTES = 400 << 20  # ~250-500 MB shards stream well
ROW_GROUP_ROWS = 1_000


@dataclass(frozen=True)
class LayoutSpec:
    name: str
    recipe_step: str = "phase1_corpus"
    repo_id: str = "NAMESPACE/NAME"
    license: str = "other"
    shard_rows: int = SHARD_ROWS
    shard_bytes: int = SHARD_BYTES


def read_corpus(corpus_dir: Path) -> pa.Table:
    """Every visible `*.parquet` under `corpus_dir`, sorted by (lang, document_id)."""
    files = sorted(
        p for p in Path(corpus_dir).rglob("*.parquet") if not p.name.startswith((".", "_"))
    )
    if not files:
        raise FileNotFoundError(f"no parquet files under {corpus_dir}")
    table = pa.concat_tables([pq.read_table(p) for p in files], promote_options="default")
    return table.sort_by([("lang", "ascending"), ("document_id", "ascending")])


def shard_bounds(sizes: Sequence[int], max_rows: int, max_bytes: int) -> list[tuple[int, int]]:
    """[start, stop) row ranges; a shard closes at `max_rows` rows or at `max_bytes` bytes."""
    bounds, start, acc = [], 0, 0
    for i, size in enumerate(sizes):
        acc += size
        if i + 1 - start >= max_rows or acc >= max_bytes:
            bounds.append((start, i + 1))
            start, acc = i + 1, 0
    if start < len(sizes) or not bounds:
        bounds.append((start, len(sizes)))
    return bounds


def write_config(table: pa.Table, out: Path, config: str, spec: LayoutSpec) -> LangStats:
    sizes = table.column("bytes").to_pylist() if table.num_rows else []
    bounds = shard_bounds(sizes, spec.shard_rows, spec.shard_bytes)
    folder = out / "data" / config
    folder.mkdir(parents=True)
    for i, (start, stop) in enumerate(bounds):
        name = f"train-{i:05d}-of-{len(bounds):05d}.parquet"
        pq.write_table(
            table.slice(start, stop - start),
            folder / name,
            compression="zstd",
            row_group_size=ROW_GROUP_ROWS,
        )
    return LangStats(
        shards=len(bounds),
        documents=table.num_rows,
        files=int(pc.sum(table.column("num_files")).as_py() or 0),
        bytes=int(pc.sum(table.column("bytes")).as_py() or 0),
    )


def dataset_layout(
    corpus_dir: Path,
    out_dir: Path,
    spec: LayoutSpec,
    *,
    tokens_by_lang: Mapping[str, int] | None = None,
    extra: Mapping[str, Any] | None = None,
    tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> CardInfo:
    """Write the repository for `corpus_dir` into `out_dir` (replaced whole, atomically)."""
    table = read_corpus(corpus_dir)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        info = CardInfo(spec.name, spec.recipe_step, spec.license)
        info.configs[DEFAULT_CONFIG] = write_config(table, tmp, DEFAULT_CONFIG, spec)
        for lang in sorted(set(table.column("lang").to_pylist())):
            subset = table.filter(pc.equal(table.column("lang"), lang))
            info.configs[lang] = write_config(subset, tmp, lang, spec)
        _add_tokens(info, tokens_by_lang)
        info.extra.update(extra or {})
        info.tables.update(tables or {})
        (tmp / "README.md").write_text(render_card(info, spec.repo_id), encoding="utf-8")
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def _add_tokens(info: CardInfo, tokens_by_lang: Mapping[str, int] | None) -> None:
    if not tokens_by_lang:
        return
    for lang, stats in info.configs.items():
        if lang != DEFAULT_CONFIG:
            stats.tokens = tokens_by_lang.get(lang)
    info.configs[DEFAULT_CONFIG].tokens = sum(tokens_by_lang.values())


def _replace_dir(tmp: Path, target: Path) -> None:
    """Swap `tmp` into `target`; an old `target` is moved aside first and removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
