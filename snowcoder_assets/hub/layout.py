"""`dataset_layout`: the exact folder a dataset publication uploads, written atomically.

    README.md                                  card + YAML front matter (configs, license, ...)
    data/default/train-00000-of-00002.parquet  every document, languages in name order
    data/python/train-00000-of-00001.parquet   one config per language

Rows are ordered by (lang, document_id) and shards are cut by row count and payload bytes, so the
same corpus always gives byte-identical files (and hence no new Hub commit).

The corpus streams through: DuckDB sorts it (spilling to disk beside the output when it does not
fit in memory) and hands over batches; the default config and the current language's config
each hold at most one row group, so a corpus of any size publishes in bounded memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from snowcoder_assets.hub.cards import CardInfo, LangStats, render_card
from snowcoder_assets.io import open_parquet
from snowcoder_assets.storage import connect_duckdb, data_path, is_remote, replace_folder

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


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every visible `*.parquet` under `corpus_dir`, in path order."""
    files = sorted(
        p for p in data_path(corpus_dir).rglob("*.parquet") if not p.name.startswith((".", "_"))
    )
    if not files:
        raise FileNotFoundError(f"no parquet files under {corpus_dir}")
    return files


def sorted_batches(files: Sequence[Path], spill_dir: Path) -> tuple[pa.Schema, Iterator[pa.Table]]:
    """The corpus rows ordered by (lang, document_id), in tables of `ROW_GROUP_ROWS` rows,
    with the parquet files' own (unified) schema."""
    schema = pa.unify_schemas(
        [open_parquet(f).schema_arrow for f in files], promote_options="default"
    )
    columns = ", ".join('"' + name.replace('"', '""') + '"' for name in schema.names)
    con = connect_duckdb()
    con.execute("SET temp_directory = ?", [str(spill_dir)])
    con.execute("SET preserve_insertion_order = true")
    reader = con.execute(
        f"SELECT {columns} FROM read_parquet(?, union_by_name = true) ORDER BY lang, document_id",
        [[str(f) for f in files]],
    ).fetch_record_batch(ROW_GROUP_ROWS)

    def tables() -> Iterator[pa.Table]:
        try:
            for batch in reader:
                yield pa.Table.from_batches([batch]).cast(schema)
        finally:
            con.close()

    return schema, tables()


def shard_cuts(
    sizes: Sequence[int], max_rows: int, max_bytes: int, rows: int = 0, nbytes: int = 0
) -> tuple[list[int], int, int]:
    """Where shards close among rows of `sizes` bytes: a shard closes at `max_rows` rows or once
    it holds `max_bytes` (the row that crosses stays in it). `rows`/`nbytes` are what the open
    shard already holds; returns the cut positions and what the open shard holds after."""
    cuts = []
    for i, size in enumerate(sizes):
        rows, nbytes = rows + 1, nbytes + size
        if rows >= max_rows or nbytes >= max_bytes:
            cuts.append(i + 1)
            rows = nbytes = 0
    return cuts, rows, nbytes


def shard_bounds(sizes: Sequence[int], max_rows: int, max_bytes: int) -> list[tuple[int, int]]:
    """[start, stop) row ranges of a whole corpus's shards (`shard_cuts` from an empty shard)."""
    cuts, _, _ = shard_cuts(sizes, max_rows, max_bytes)
    starts = [0, *cuts]
    bounds = list(zip(starts, cuts, strict=False))
    if starts[-1] < len(sizes) or not bounds:
        bounds.append((starts[-1], len(sizes)))
    return bounds


class ConfigWriter:
    """One config's shards, written as rows arrive, cut by `shard_cuts` with the open shard's
    rows and bytes carried from batch to batch; row groups of `ROW_GROUP_ROWS` from each
    shard's start."""

    def __init__(self, out: Path, config: str, spec: LayoutSpec, schema: pa.Schema) -> None:
        self.folder, self.spec, self.schema = out / "data" / config, spec, schema
        self.folder.mkdir(parents=True)
        self.stats = LangStats(shards=0, documents=0, files=0, bytes=0)
        self._writer: pq.ParquetWriter | None = None
        self._group: list[pa.Table] = []
        self._group_rows = self._shard_rows = self._shard_bytes = 0

    def write(self, table: pa.Table) -> None:
        sizes = table.column("bytes").to_pylist()
        self.stats.documents += table.num_rows
        self.stats.files += int(pc.sum(table.column("num_files")).as_py() or 0)
        self.stats.bytes += sum(sizes)
        cuts, self._shard_rows, self._shard_bytes = shard_cuts(
            sizes, self.spec.shard_rows, self.spec.shard_bytes, self._shard_rows, self._shard_bytes
        )
        start = 0
        for cut in cuts:
            self._append(table.slice(start, cut - start))
            self._flush_group()
            self._close_shard()
            start = cut
        self._append(table.slice(start))

    def close(self) -> LangStats:
        """Finish the last shard and give every shard its final `-of-N` name."""
        if self._group or self._writer is not None or self.stats.shards == 0:
            self._flush_group()
            self._close_shard()
        total = self.stats.shards
        for i in range(total):
            os.replace(self._part(i), self.folder / f"train-{i:05d}-of-{total:05d}.parquet")
        return self.stats

    def _append(self, piece: pa.Table) -> None:
        """Rows of the open shard, flushed a full row group at a time."""
        while piece.num_rows:
            take = min(piece.num_rows, ROW_GROUP_ROWS - self._group_rows)
            self._group.append(piece.slice(0, take))
            self._group_rows += take
            piece = piece.slice(take)
            if self._group_rows == ROW_GROUP_ROWS:
                self._flush_group()

    def _flush_group(self) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self._part(self.stats.shards), self.schema, compression="zstd"
            )
        if self._group:
            self._writer.write_table(pa.concat_tables(self._group), row_group_size=ROW_GROUP_ROWS)
        self._group, self._group_rows = [], 0

    def _close_shard(self) -> None:
        if self._writer is None:  # an empty corpus still gets one (empty) shard
            self._flush_group()
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        self.stats.shards += 1

    def _part(self, i: int) -> Path:
        return self.folder / f".train-{i:05d}.parquet.part"


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
    files = corpus_files(corpus_dir)
    out_dir = data_path(out_dir)
    scratch = None if is_remote(out_dir) else out_dir.parent  # built locally, then uploaded
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=scratch))
    spill = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.sort.", dir=scratch))
    try:
        info = CardInfo(spec.name, spec.recipe_step, spec.license)
        info.configs = _write_configs(files, tmp, spec, spill)
        _add_tokens(info, tokens_by_lang)
        info.extra.update(extra or {})
        info.tables.update(tables or {})
        (tmp / "README.md").write_text(render_card(info, spec.repo_id), encoding="utf-8")
        replace_folder(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(spill, ignore_errors=True)
    return info


def _write_configs(
    files: Sequence[Path], out: Path, spec: LayoutSpec, spill: Path
) -> dict[str, LangStats]:
    """The default config and one per language, from one sorted pass over the corpus."""
    schema, tables = sorted_batches(files, spill)
    everything = ConfigWriter(out, DEFAULT_CONFIG, spec, schema)
    configs: dict[str, LangStats] = {}
    current: tuple[str, ConfigWriter] | None = None
    for table in tables:
        everything.write(table)
        langs = table.column("lang").to_pylist()
        start = 0
        for i in range(1, len(langs) + 1):
            if i < len(langs) and langs[i] == langs[start]:
                continue
            if current is None or current[0] != langs[start]:
                if current is not None:
                    configs[current[0]] = current[1].close()
                current = (langs[start], ConfigWriter(out, langs[start], spec, schema))
            current[1].write(table.slice(start, i - start))
            start = i
    if current is not None:
        configs[current[0]] = current[1].close()
    return {DEFAULT_CONFIG: everything.close(), **dict(sorted(configs.items()))}


def _add_tokens(info: CardInfo, tokens_by_lang: Mapping[str, int] | None) -> None:
    if not tokens_by_lang:
        return
    for lang, stats in info.configs.items():
        if lang != DEFAULT_CONFIG:
            stats.tokens = tokens_by_lang.get(lang)
    info.configs[DEFAULT_CONFIG].tokens = sum(tokens_by_lang.values())
