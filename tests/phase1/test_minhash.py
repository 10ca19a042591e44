"""MinHash near-dedup: planted near-duplicates cluster, different code does not, runs repeat."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import keyword
import os
import random
import re
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xxhash
from pydantic import ValidationError
from rensa import RMinHash

import snowcoder_assets.phase1.minhash as minhash
from snowcoder_assets.phase1.minhash import (
    MinhashConfig,
    band_hashes,
    candidate_pairs,
    choose_representative,
    cluster,
    estimate_jaccard,
    estimate_jaccard_pairs,
    license_rank,
    shingle_sets,
    signatures,
    verify_pairs,
)

CONFIG = MinhashConfig()
MODULES = [
    "argparse", "ast", "calendar", "cmd", "codecs", "configparser", "csv", "dataclasses",
    "difflib", "email.message", "enum", "fractions", "ftplib", "gettext", "heapq", "imaplib",
    "inspect", "json.decoder", "json.encoder", "locale", "logging", "optparse", "pdb",
    "pickletools", "pprint", "pydoc", "shlex", "smtplib", "statistics", "string", "tarfile",
    "textwrap", "tokenize", "typing", "zipfile",
]  # fmt: skip
HEADERS = [
    "# Copyright (c) 2021 Example Corp.\n# SPDX-License-Identifier: MIT\n",
    '# Licensed under the Apache License, Version 2.0 (the "License");\n'
    "# you may not use this file except in compliance with the License.\n",
    "# This file is part of a project released under the GNU GPL v3 or later.\n",
]
IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{2,}\b")
GOLDEN_TEXT = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"
# Stored signatures must not change silently: a changed value here needs a new config tag.
GOLDEN_SIGNATURE_HEAD = [
    3400000817, 3447583485, 3235985436, 3555956706, 1561699533, 3415385769, 3457211474, 3361659241,
]  # fmt: skip
GOLDEN_BAND_HASH_HEAD = [14232687236877283104, 8087714325052267197]


@cache
def stdlib_functions(min_words: int = 150) -> tuple[str, ...]:
    """Distinct functions and methods of real stdlib modules with at least `min_words` words."""
    found: dict[str, None] = {}
    for name in MODULES:
        source = inspect.getsource(importlib.import_module(name))
        lines = source.splitlines(keepends=True)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                text = textwrap.dedent("".join(lines[node.lineno - 1 : node.end_lineno]))
                if len(re.findall(r"\w+", text)) >= min_words:
                    found[text] = None
    return tuple(found)


def exact_jaccard(a: str, b: str) -> float:
    sa, sb = (set(s) for s in shingle_sets([a, b], CONFIG.ngram))
    return len(sa & sb) / len(sa | sb)


def reformat(text: str) -> str:
    """Two-space indents, trailing spaces, doubled blank lines: no word changes."""
    lines = [
        re.sub(r"^( {4})+", lambda m: "  " * (len(m.group()) // 4), x) for x in text.split("\n")
    ]
    return "\n".join(line + "  " if line else "\n" for line in lines)


def rename(text: str, rng: random.Random, count: int) -> str:
    names = sorted({n for n in IDENTIFIER.findall(text) if not keyword.iskeyword(n)})
    for name in rng.sample(names, min(count, len(names))):
        text = re.sub(rf"\b{name}\b", f"{name}_{rng.randrange(100)}x", text)
    return text


def light_edit(text: str, rng: random.Random) -> str:
    """A near-duplicate: 1-3 renamed identifiers, maybe reformatted, maybe a new license header
    (replacing the leading comment block, if any)."""
    text = rename(text, rng, rng.randint(1, 3))
    if rng.random() < 0.5:
        text = reformat(text)
    if rng.random() < 0.5:
        text = re.sub(r"\A(#.*\n)*", lambda _: rng.choice(HEADERS), text)
    return text


def heavy_edit(text: str, rng: random.Random) -> str:
    """A heavily edited copy: most identifiers renamed and a third of the lines dropped."""
    lines = [x for x in text.split("\n") if rng.random() > 0.33]
    return rename("\n".join(lines), rng, 1000)


NOTES = ["note", "see", "issue", "todo", "fix", "later", "here", "check"]


def medium_edit(text: str, rng: random.Random) -> str:
    """A fork: a new license header, 2-4 renamed identifiers, up to 6% of the lines deleted and
    about half as many comment lines added; 5-gram Jaccard with the original ~0.6-0.9."""
    drop, out = rng.uniform(0.0, 0.06), []
    for line in text.split("\n"):
        chance = rng.random()
        if chance < drop:
            continue
        out.append(line)
        if chance > 1 - drop / 2:
            out.append("    # " + " ".join(rng.sample(NOTES, 3)))
    return rng.choice(HEADERS) + rename("\n".join(out), rng, rng.randint(2, 4))


def band_table(keys: np.ndarray) -> pl.DataFrame:
    n, bands = keys.shape
    return pl.DataFrame(
        {
            "doc_index": np.repeat(np.arange(n, dtype=np.int64), bands),
            "band": np.tile(np.arange(bands, dtype=np.int32), n),
            "hash": keys.ravel(),
        }
    )


def dedup_roots(texts: list[str]) -> np.ndarray:
    sigs = signatures(texts, CONFIG)
    pairs = candidate_pairs(band_table(band_hashes(sigs, CONFIG)))
    return cluster(len(texts), pairs, sigs, CONFIG)


@pytest.fixture(scope="module")
def planted() -> tuple[list[tuple[int, int]], list[tuple[int, int]], np.ndarray]:
    """(near pairs, far pairs, cluster roots) over one corpus of originals and edited copies.

    Originals are stdlib functions, some under a license header. Near pairs (original, light
    edit; two per original) have true word-5-gram Jaccard >= 0.85; far pairs (original, heavy
    edit) and (original, another original) have <= 0.4.
    """
    rng = random.Random(0)
    originals = [rng.choice(["", *HEADERS]) + text for text in stdlib_functions()]
    texts = list(originals)
    near, far = [], []
    for i, original in enumerate(originals):
        copies = [(light_edit(original, rng), near) for _ in range(2)]
        for copy, kept in [*copies, (heavy_edit(original, rng), far)]:
            j = exact_jaccard(original, copy)
            if (j >= 0.85) if kept is near else (j <= 0.4):
                texts.append(copy)
                kept.append((i, len(texts) - 1))
    for _ in range(200):
        i, k = rng.sample(range(len(originals)), 2)
        if exact_jaccard(originals[i], originals[k]) <= 0.4:
            far.append((i, k))
    return near, far, dedup_roots(texts)


def test_cluster_recalls_near_duplicates(planted) -> None:
    near, _, roots = planted
    assert len(near) >= 100
    found = sum(roots[a] == roots[b] for a, b in near)
    assert found / len(near) >= 0.95, f"recall {found}/{len(near)}"


def test_cluster_keeps_different_code_apart(planted) -> None:
    _, far, roots = planted
    assert len(far) >= 200
    merged = sum(roots[a] == roots[b] for a, b in far)
    assert merged / len(far) <= 0.01, f"false positives {merged}/{len(far)}"


@pytest.fixture(scope="module")
def forks() -> tuple[list[list[int]], list[tuple[int, int]], np.ndarray]:
    """(groups, control pairs, cluster roots): each group is an original and two `medium_edit`
    forks, each at true 5-gram Jaccard 0.75-0.80 with it; each control pair is the original and
    a `heavy_edit` at <= 0.4, in the same corpus."""
    rng = random.Random(7)
    texts: list[str] = []
    groups, controls = [], []
    for original in stdlib_functions():
        tries = (medium_edit(original, rng) for _ in range(20))
        copies = [c for c in tries if 0.75 <= exact_jaccard(original, c) <= 0.80][:2]
        control = heavy_edit(original, rng)
        if len(copies) < 2 or exact_jaccard(original, control) > 0.4:
            continue
        start = len(texts)
        texts += [original, *copies, control]
        groups.append([start, start + 1, start + 2])
        controls.append((start, start + 3))
    return groups, controls, dedup_roots(texts)


def test_cluster_collapses_forks_just_above_the_threshold(forks) -> None:
    """The S-curve's steep part must sit below J = 0.75: 16 x 8 collapsed only ~88% of these
    groups (a pair at 0.75 is a candidate with P = 0.82), 20 x 6 collapses ~99% (P = 0.98)."""
    groups, _, roots = forks
    assert len(groups) >= 150
    collapsed = sum(len({roots[i] for i in group}) == 1 for group in groups)
    assert collapsed / len(groups) >= 0.95, f"collapsed {collapsed}/{len(groups)}"


def test_cluster_keeps_heavy_edits_beside_forks_apart(forks) -> None:
    _, controls, roots = forks
    merged = sum(roots[a] == roots[b] for a, b in controls)
    assert merged / len(controls) <= 0.01, f"false positives {merged}/{len(controls)}"


def test_pipeline_is_deterministic() -> None:
    texts = list(stdlib_functions()[:60]) + [
        light_edit(t, random.Random(1)) for t in stdlib_functions()[:60]
    ]
    first, second = signatures(texts, CONFIG), signatures(texts, CONFIG)
    assert first.dtype == np.uint32 and first.shape == (120, CONFIG.num_perm)
    assert np.array_equal(first, second)
    assert np.array_equal(band_hashes(first, CONFIG), band_hashes(second, CONFIG))
    assert np.array_equal(dedup_roots(texts), dedup_roots(texts))


def test_signatures_ignore_batching_and_order(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = list(stdlib_functions()[:40])
    whole = signatures(texts, CONFIG)
    assert np.array_equal(signatures(texts[::-1], CONFIG), whole[::-1])
    monkeypatch.setattr(minhash, "BATCH_BYTES", 2000)
    assert np.array_equal(signatures(pl.Series(texts), CONFIG), whole)


def test_signatures_match_across_processes() -> None:
    texts = [GOLDEN_TEXT, *stdlib_functions()[:3]]
    code = (
        "import json, sys\n"
        "from snowcoder_assets.phase1.minhash import MinhashConfig, signatures\n"
        "print(json.dumps(signatures(json.load(sys.stdin), MinhashConfig()).tolist()))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    assert json.loads(result.stdout) == signatures(texts, CONFIG).tolist()


def test_signatures_match_golden_values() -> None:
    sig = signatures([GOLDEN_TEXT], CONFIG)
    assert sig[0, :8].tolist() == GOLDEN_SIGNATURE_HEAD
    assert band_hashes(sig, CONFIG)[0, :2].tolist() == GOLDEN_BAND_HASH_HEAD


def _reference_token_hash(shingle: str, ngram: int) -> int:
    """The documented shingle hash, one Python int at a time."""
    multipliers = minhash._shingle_multipliers(ngram).tolist()
    words = shingle.split(" ") if shingle else []
    total = sum(
        xxhash.xxh3_64_intdigest(w.encode()) * c for w, c in zip(words, multipliers, strict=False)
    )
    return int(minhash._fmix64(np.array([total % 2**64], dtype=np.uint64))[0])


@pytest.mark.parametrize("ngram", [1, 3, 5])
def test_signatures_follow_the_documented_hash(ngram: int) -> None:
    texts = ["", "?!", "one", "Two words", "a b a b a b c", *stdlib_functions()[:5]]
    config = MinhashConfig(ngram=ngram)
    tokens = [[_reference_token_hash(s, ngram) for s in sh] for sh in shingle_sets(texts, ngram)]
    matrix = RMinHash.digest_matrix_from_token_hash_sets(tokens, config.num_perm, config.seed)
    assert np.array_equal(signatures(texts, config), np.array(matrix.to_rows(), dtype=np.uint32))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [""]),
        ("  !! ;; ", [""]),
        ("Hello World", ["hello world"]),
        ("a b c d e f", ["a b c d e", "b c d e f"]),
        ("x = f(a,b)  # c\n\td", ["x f a b c", "f a b c d"]),
        ("A b C d E a B c D e", ["a b c d e", "b c d e a", "c d e a b", "d e a b c", "e a b c d"]),
        ("café_1 Über straße x y", ["café_1 über straße x y"]),
    ],
)
def test_shingle_sets_normalize_case_spacing_and_punctuation(text: str, expected) -> None:
    assert shingle_sets([text], 5) == [expected]


def test_shingle_sets_accept_a_series_with_nulls() -> None:
    assert shingle_sets(pl.Series(["a b", None]), 2) == [["a b"], [""]]
    assert signatures(pl.Series(["a b", None]), CONFIG).shape == (2, CONFIG.num_perm)
    assert signatures([], CONFIG).shape == (0, CONFIG.num_perm)


def test_estimate_jaccard_tracks_true_jaccard() -> None:
    rng = random.Random(3)
    pairs = [(t, rename(t, rng, 8)) for t in stdlib_functions()[:50]]
    sigs = signatures([t for pair in pairs for t in pair], CONFIG)
    estimates = estimate_jaccard_pairs(sigs[0::2], sigs[1::2])
    true = np.array([exact_jaccard(a, b) for a, b in pairs])
    assert np.abs(estimates - true).mean() < 0.05
    assert estimate_jaccard(sigs[0], sigs[1]) == estimates[0]
    assert estimate_jaccard(sigs[0], sigs[0]) == 1.0


def test_band_hashes_equal_exactly_for_equal_bands() -> None:
    perms, bands, rows = CONFIG.num_perm, CONFIG.bands, CONFIG.rows
    sigs = np.arange(3 * perms, dtype=np.uint32).reshape(3, perms)
    sigs[1] = sigs[0]
    sigs[2, :rows] = sigs[0, :rows]  # shares band 0 only
    keys = band_hashes(sigs, CONFIG)
    assert keys.shape == (3, bands) and keys.dtype == np.uint64
    assert np.array_equal(keys[0], keys[1])
    assert (keys[0] == keys[2]).tolist() == [True] + [False] * (bands - 1)
    with pytest.raises(ValueError, match="signatures must be"):
        band_hashes(sigs[:, :64], CONFIG)


def test_candidate_pairs_link_a_bucket_by_star_and_chain() -> None:
    table = pl.DataFrame(
        {"doc_index": [12, 3, 9, 5, 7, 5], "band": [0, 0, 0, 0, 0, 1], "hash": [1, 1, 1, 1, 2, 1]},
        schema={"doc_index": pl.Int64, "band": pl.Int32, "hash": pl.UInt64},
    )
    pairs = candidate_pairs(table.lazy())
    assert pairs.dtype == np.int64
    assert pairs.tolist() == [[3, 5], [3, 9], [3, 12], [5, 9], [9, 12]]
    assert candidate_pairs(table.head(0)).shape == (0, 2)


def test_candidate_pairs_stay_linear_in_a_huge_bucket() -> None:
    n = 1000
    sigs = signatures(["def f(x):\n    return x + 1\n"] * n, CONFIG)
    pairs = candidate_pairs(band_table(band_hashes(sigs, CONFIG)))
    assert len(pairs) <= 2 * n
    assert set(cluster(n, pairs, sigs, CONFIG).tolist()) == {0}


def test_cluster_verifies_candidates_and_is_transitive() -> None:
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, size=(5, 128), dtype=np.uint32)
    sigs[1] = sigs[0]
    sigs[2, :100] = sigs[1, :100]  # estimate 100/128 = 0.78 with doc 1
    pairs = np.array([[0, 1], [1, 2], [3, 4]])  # 3-4 is a band collision that fails verification
    assert cluster(5, pairs, sigs, CONFIG).tolist() == [0, 0, 0, 3, 4]
    assert verify_pairs(pairs, lambda idx: sigs[idx], 0.7).tolist() == [[0, 1], [1, 2]]
    assert cluster(3, np.empty((0, 2), dtype=np.int64), sigs, CONFIG).tolist() == [0, 1, 2]


def test_cluster_roots_are_the_smallest_member() -> None:
    sigs = np.zeros((8, 128), dtype=np.uint32)
    pairs = np.array([[6, 7], [5, 6], [2, 7], [1, 3], [3, 4]])
    assert cluster(8, pairs, sigs, CONFIG).tolist() == [0, 1, 2, 1, 1, 2, 2, 2]


@pytest.mark.parametrize(
    ("licenses", "rank"),
    [
        (["CC0-1.0"], 0),
        (["Unlicense"], 0),
        (["MIT"], 1),
        (["BSD-3-Clause"], 1),
        (["Apache-2.0"], 1),
        (["ISC"], 1),
        (["MPL-2.0"], 2),
        (["LGPL-2.1-or-later"], 2),
        (["GPL-3.0-only"], 3),
        (["AGPL-3.0"], 3),
        (["GPL-2.0", "MIT"], 1),
        (["NOASSERTION"], 4),
        (["BUSL-1.1"], 4),
        ([], 4),
        (None, 4),
    ],
)
def test_license_rank_table(licenses, rank: int) -> None:
    assert license_rank(licenses) == rank


def _member(doc_id: str, **fields) -> dict:
    base = {
        "stars": 0,
        "licenses": None,
        "source_order": 0,
        "source": "s",
        "repo": "r",
        "path": "p",
    }
    return {"doc_id": doc_id, **base, **fields}


@pytest.mark.parametrize(
    ("members", "winner"),
    [
        ([_member("a", stars=3), _member("b", stars=10)], "b"),
        ([_member("a", stars=None), _member("b", stars=1)], "b"),
        (
            [_member("a", stars=5, licenses=["GPL-3.0"]), _member("b", stars=5, licenses=["MIT"])],
            "b",
        ),
        ([_member("a", licenses=["MIT"]), _member("b", licenses=["Unlicense"])], "b"),
        ([_member("a", licenses=None), _member("b", licenses=["AGPL-3.0"])], "b"),
        ([_member("a", licenses=["MIT"]), _member("b", stars=1, licenses=None)], "b"),
        ([_member("a", source_order=2), _member("b", source_order=1)], "b"),
        ([_member("a", source="z"), _member("b", source="y")], "b"),
        ([_member("a", repo="z/z"), _member("b", repo="a/a")], "b"),
        ([_member("a", path="src/z.py"), _member("b", path="src/a.py")], "b"),
        ([_member("b"), _member("a")], "a"),
    ],
)
def test_choose_representative_order(members: list[dict], winner: str) -> None:
    assert choose_representative(members)["doc_id"] == winner
    assert choose_representative(members[::-1])["doc_id"] == winner


def test_choose_representative_rejects_an_empty_cluster() -> None:
    with pytest.raises(ValueError, match="at least one"):
        choose_representative([])


def test_config_tag_and_validation() -> None:
    assert str(CONFIG) == "w5-p120-b20x6-t0.70-s42"
    assert str(MinhashConfig(ngram=3, num_perm=112, bands=14, rows=8, threshold=0.8, seed=1)) == (
        "w3-p112-b14x8-t0.80-s1"
    )
    with pytest.raises(ValidationError, match="bands \\* rows"):
        MinhashConfig(bands=14)  # 14 * 6 != 120
    with pytest.raises(ValidationError):
        MinhashConfig(threshold=1.5)
    with pytest.raises(ValidationError):
        MinhashConfig(shingle=5)
