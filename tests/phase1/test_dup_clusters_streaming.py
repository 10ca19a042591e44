"""`dup_clusters` streams small keys partition by partition: its clusters equal a brute-force
pairwise reference, its LSH pairs equal `candidate_pairs` over one frame of every band row, and
it never reads a file's other columns unless the file is a member of a cluster."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import snowcoder_assets.phase1.dup_clusters as dup
from snowcoder_assets.config import SnowcoderConfig, load_config, split_partition_key
from snowcoder_assets.io import doc_id_for
from snowcoder_assets.layout import lineage_part_path
from snowcoder_assets.phase1.band_keys import BandBuckets
from snowcoder_assets.phase1.file_signals import MINHASH_SCHEMA, minhash_path
from snowcoder_assets.phase1.filtered_files import FILTERED_SCHEMA, filtered_path
from snowcoder_assets.phase1.minhash import (
    band_hashes,
    candidate_pairs,
    choose_representative,
    estimate_jaccard,
    signatures,
)
from snowcoder_assets.phase1.signals import exact_hash
from tests.corpora import local_dir_source, write_config

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SOURCE = "planted"
PARTITIONS = [f"{SOURCE}/0000{k}" for k in range(4)]
LONELY = PARTITIONS[3]  # files like no other: clustering never needs more than their keys


def _stdlib(name: str) -> str:
    return (STDLIB / name).read_text()


def _edit(text: str, k: int) -> str:
    """A light edit (J >= 0.85 with the text): a header and one renamed word per 40 lines."""
    lines = text.split("\n")
    lines = [line + f"  # r{k}" if n % 40 == k else line for n, line in enumerate(lines)]
    return f"# Vendored copy {k}; see LICENSE.\n" + "\n".join(lines)


def _words(seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(f"w{rng.randrange(10**9)}" for _ in range(400))


def _corpus() -> dict[str, list[tuple[str, str, int | None, list[str] | None]]]:
    """Partition -> (path, text, stars, licenses) of its filtered files."""
    textwrap, shlex, heapq = _stdlib("textwrap.py"), _stdlib("shlex.py"), _stdlib("heapq.py")
    fnmatch, colorsys = _stdlib("fnmatch.py"), _stdlib("colorsys.py")
    return {
        PARTITIONS[0]: [
            ("a/textwrap.py", textwrap, 10, ["MIT"]),
            ("a/shlex.py", shlex, None, None),
            ("a/heapq.py", heapq, 3, ["GPL-3.0"]),
            ("a/fnmatch.py", fnmatch, 1, None),
        ],
        PARTITIONS[1]: [
            ("b/textwrap.py", _edit(textwrap, 1), 50, ["GPL-3.0"]),  # most stars: survives
            ("b/fnmatch.py", fnmatch + "\n\n", 1, ["MIT"]),  # exact copy, better license
            ("b/heapq.py", _edit(heapq, 2), 3, ["Apache-2.0"]),
            ("b/colorsys.py", colorsys, None, None),
        ],
        PARTITIONS[2]: [
            ("c/textwrap.py", _edit(textwrap, 3), None, None),
            ("c/fnmatch.py", _edit(fnmatch, 4), 9, None),  # near copy of an exact group
            ("c/heapq.py", heapq, 3, ["GPL-3.0"]),  # exact copy of a/heapq.py
            ("c/shlex.py", _edit(shlex, 5), 2, None),
        ],
        LONELY: [(f"d/unique_{k}.txt", _words(k), k, None) for k in range(5)],
    }


def _config(tmp_path: Path) -> SnowcoderConfig:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    return load_config(
        write_config(
            tmp_path / "snowcoder.toml", tmp_path / "data", local_dir_source(SOURCE, corpus)
        )
    )


def _write_partitions(config: SnowcoderConfig, files: dict) -> list[dict]:
    """The filtered and minhash files of every partition; the docs the reference sees. Each
    minhash file also holds a file that filtering dropped: no cluster may contain it."""
    minhash, docs = config.dedup.minhash, []
    for key, rows in files.items():
        source, shard = split_partition_key(key)
        texts = [text for _, text, _, _ in rows] + [_edit(rows[0][1], 9)]
        sigs = signatures(texts, minhash)
        bands = band_hashes(sigs, minhash)
        ids = [doc_id_for(source, "repo", path) for path, *_ in rows]
        ids.append(doc_id_for(source, "repo", f"filtered_out/{shard}"))
        filtered = [
            {
                "doc_id": doc_id, "source": source, "partition": key, "repo": "repo",
                "path": path, "lang": "python", "bytes": len(text), "stars": stars,
                "licenses": licenses, "exact_hash": exact_hash(text),
            }
            for doc_id, (path, text, stars, licenses) in zip(ids, rows, strict=False)
        ]  # fmt: skip
        signals = [
            {"doc_id": i, "bands": b.tolist(), "signature": s.tolist()}
            for i, b, s in zip(ids, bands, sigs, strict=True)
        ]
        random.Random(shard).shuffle(signals)  # a minhash file's row order is its own
        outputs = {
            filtered_path(config.data_dir, source, shard): (filtered, FILTERED_SCHEMA),
            minhash_path(config.data_dir, source, shard): (signals, MINHASH_SCHEMA),
        }
        for path, (rows_of, schema) in outputs.items():
            table = pa.Table.from_pylist(rows_of, schema)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, row_group_size=2)  # several batches per file
        docs += [{**row, "signature": sig} for row, sig in zip(filtered, sigs, strict=False)]
    return docs


def _reference(config: SnowcoderConfig, docs: list[dict]) -> dict[str, tuple[str, str]]:
    """doc_id -> (reason, representative doc_id) of every dropped file, by brute force: exact
    groups of equal exact_hash, then the connected components of all survivor pairs whose
    signatures agree on >= threshold of positions."""
    order = {s.name: i for i, s in enumerate(config.sources)}
    docs = [{**d, "source_order": order[d["source"]]} for d in docs]
    dropped: dict[str, tuple[str, str]] = {}
    by_hash: dict[str, list[dict]] = {}
    for d in docs:
        by_hash.setdefault(d["exact_hash"], []).append(d)
    for group in by_hash.values():
        rep = choose_representative(group)
        dropped |= {m["doc_id"]: ("exact_duplicate", rep["doc_id"]) for m in group if m is not rep}
    survivors = [d for d in docs if d["doc_id"] not in dropped]
    parent = list(range(len(survivors)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    threshold = config.dedup.minhash.threshold
    for i, a in enumerate(survivors):
        for j in range(i + 1, len(survivors)):
            if estimate_jaccard(a["signature"], survivors[j]["signature"]) >= threshold:
                parent[root(j)] = root(i)
    components: dict[int, list[dict]] = {}
    for i, d in enumerate(survivors):
        components.setdefault(root(i), []).append(d)
    for members in components.values():
        rep = choose_representative(members)
        dropped |= {m["doc_id"]: ("near_duplicate", rep["doc_id"]) for m in members if m is not rep}
    return dropped


def _outcome(config: SnowcoderConfig) -> dict[str, tuple[str, str]]:
    """doc_id -> (reason, representative doc_id) of every file the run dropped."""
    found = {}
    for key in PARTITIONS:
        source, shard = split_partition_key(key)
        decisions = dup.load_partition_decisions(config, source, shard)
        clusters = pq.read_table(
            lineage_part_path(config.data_dir, "dup_clusters", "dedup", source, shard)
        ).to_pylist()
        method = {"exact_duplicate": "exact", "near_duplicate": "near"}
        for doc_id, (_, reason, _) in decisions.items():
            (row,) = [
                c for c in clusters if c["doc_id"] == doc_id and c["method"] == method[reason]
            ]
            found[doc_id] = (reason, row["representative_doc_id"])
    return found


@pytest.fixture
def planted(tmp_path: Path, monkeypatch) -> tuple[SnowcoderConfig, list[dict]]:
    monkeypatch.setattr(dup, "READ_BATCH_ROWS", 3)  # files of several batches
    config = _config(tmp_path)
    return config, _write_partitions(config, _corpus())


def test_streamed_clusters_equal_the_brute_force_reference(planted):
    config, docs = planted
    summary = dup.run_dup_clusters(config, PARTITIONS, {}, lambda _: None)
    expected = _reference(config, docs)
    assert summary.docs == len(docs)
    assert _outcome(config) == expected
    reasons = sorted(reason for reason, _ in expected.values())
    assert reasons == ["exact_duplicate"] * 2 + ["near_duplicate"] * 5  # the planted cases
    state = pq.read_table(dup.output_dir(config) / dup.STATE_FILE)["doc_id"].to_pylist()
    assert state == sorted(d["doc_id"] for d in docs if d["doc_id"] not in expected)


def test_clustering_reads_only_the_keys_of_files_in_no_cluster(planted, monkeypatch):
    """Every file's doc_id and exact_hash, every minhash file's doc_id and bands; signatures
    and the other columns only where a candidate or a cluster member lives."""
    config, _ = planted
    reads: list[tuple[str, str, tuple[str, ...]]] = []
    batches = dup._batches

    def recording(path, columns):
        stage = "minhash" if path.name.endswith(".minhash.parquet") else "filtered"
        reads.append((stage, path.name.split(".")[0], tuple(columns)))
        return batches(path, columns)

    monkeypatch.setattr(dup, "_batches", recording)
    monkeypatch.setattr(pl, "read_parquet", _refused)
    monkeypatch.setattr(pl, "scan_parquet", _refused)
    dup.run_dup_clusters(config, PARTITIONS, {}, lambda _: None)
    shards = [split_partition_key(key)[1] for key in PARTITIONS]
    lonely = split_partition_key(LONELY)[1]
    keys = ("doc_id", "exact_hash")
    assert [r for r in reads if r[2] == keys] == [("filtered", s, keys) for s in shards]
    bands = ("doc_id", "bands")
    assert [r for r in reads if r[2] == bands] == [("minhash", s, bands) for s in shards]
    assert {r[2] for r in reads} == {
        keys,
        bands,
        ("doc_id", "signature"),
        tuple(dup.MEMBER_COLUMNS),
    }
    assert not {"lang", "bytes"} & set(dup.MEMBER_COLUMNS)
    assert ("minhash", shards[0], ("doc_id", "signature")) in reads
    assert [r for r in reads if r[1] == lonely] == [
        ("filtered", lonely, keys),
        ("minhash", lonely, bands),
    ]


def _refused(*_args, **_kwargs):
    raise AssertionError("dup_clusters read a whole parquet file")


def test_incumbents_survive_a_better_newcomer(planted):
    """A second run with a new partition keeps the first run's survivors: the new copy of
    a/shlex.py, with more stars, is the one dropped."""
    config, _ = planted
    first = dup.run_dup_clusters(config, PARTITIONS, {}, lambda _: None)
    newcomer = {f"{SOURCE}/00009": [("e/shlex.py", _edit(_stdlib("shlex.py"), 6), 999, ["MIT"])]}
    _write_partitions(config, newcomer)
    second = dup.run_dup_clusters(config, [*PARTITIONS, *newcomer], first.digests, lambda _: None)
    assert {k: v for k, v in second.digests.items() if k in first.digests} == first.digests
    decisions = dup.load_partition_decisions(config, SOURCE, "00009")
    assert [reason for _, reason, _ in decisions.values()] == ["near_duplicate"]


def test_band_buckets_give_the_pairs_of_one_frame_of_every_band_row():
    """Random band keys from a small alphabet (many shared buckets), some rows with fewer
    bands, rows added in batches and in an order unlike the doc_id order."""
    rng = np.random.default_rng(3)
    num_docs, num_bands = 400, 5
    rank = rng.permutation(num_docs)  # doc index -> position in doc_id order
    lengths = np.where(rng.random(num_docs) < 0.1, rng.integers(0, num_bands, num_docs), num_bands)
    keys = [rng.integers(0, 60, size=n).astype(np.uint64) for n in lengths]
    owners = rng.permutation(num_docs)
    owners[rng.random(num_docs) < 0.05] = -1  # rows that take no part
    buckets = BandBuckets(num_docs)
    for start in range(0, num_docs, 64):
        chunk = owners[start : start + 64]
        buckets.add(chunk, pa.array([keys[i].tolist() for i in chunk], pa.list_(pa.uint64())))
    streamed = buckets.pairs(rank)
    frame = pl.DataFrame(
        {
            "doc_index": [int(rank[i]) for i in owners if i >= 0 for _ in keys[i]],
            "band": [b for i in owners if i >= 0 for b in range(len(keys[i]))],
            "hash": [int(h) for i in owners if i >= 0 for h in keys[i]],
        },
        schema={"doc_index": pl.Int64, "band": pl.Int32, "hash": pl.UInt64},
    )
    expected = {tuple(sorted(p)) for p in candidate_pairs(frame).tolist()}
    assert len(expected) > 100
    assert {tuple(sorted((int(rank[a]), int(rank[b])))) for a, b in streamed} == expected
    assert (streamed[:, 0] < streamed[:, 1]).all()
    assert len(np.unique(streamed, axis=0)) == len(streamed)
