"""Batch decontamination: a columnar prefilter in front of `BenchmarkIndex.find`.

Profiled on 3,000 stdlib files (43 MB): `find` costs 6.9 s, a third in the regex tokenizer and
two thirds in building and hashing one Python tuple per 10-gram. Nearly every file shares no
10-gram with any benchmark, so `find_many` first asks, for a whole batch at once, which files
can match, and runs the exact `find` only on those:

- tokens come from polars' (Rust) regex, with classes chosen so that every n-gram of
  benchmark-vocabulary tokens Python's `tokenize` finds is found too (`_token_lists`); when the
  vocabulary has non-ASCII word tokens, non-ASCII files go through `tokenize` itself;
- each token becomes its code in the benchmarks' vocabulary (0 when no task has it), each
  window of n codes one uint64 key (a weighted sum), and a window with an unknown token or
  crossing into the next file is no key at all;
- a file is a candidate when it holds `needed` distinct keys of one task (the n-gram rule's
  count) or every key of one substring needle of >= n tokens, or when a shorter needle's tokens
  occur with only whitespace between them (`short_needle_pattern`).

A file that is not a candidate shares too few n-grams with every task and contains no needle,
so `find` would return nothing for it: the result equals `[index.find(t) for t in texts]`
exactly. Key collisions with non-benchmark n-grams only add candidates, which `find` then
clears; collisions among benchmark n-grams are refused when the prefilter is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from snowcoder_assets.phase1.decontaminate import BenchmarkIndex, Match, tokenize

# On ASCII text these are exactly Python's `\w` and `\s` (which adds \x1c-\x1f to C's set).
ASCII_TOKEN_PATTERN = r"[0-9A-Za-z_]+|[^0-9A-Za-z_\t\n\x0b\x0c\r \x1c-\x1f\x80-\x{10ffff}]"
_SEED = 20261203
# Any text: ASCII word runs, and every other character that is not Python-whitespace alone.
SPLIT_TOKEN_PATTERN = r"[0-9A-Za-z_]+|[^0-9A-Za-z_\s\x1c-\x1f\x{180e}]"
# Python's str.isspace() set: Unicode White_Space (Rust's `\s`) plus \x1c-\x1f and U+180E.
_SPACE = r"[\s\x1c-\x1f\x{180e}]*"


def _lone_symbol(token: str) -> bool:
    """A one-character token that is not a word character: both tokenizers keep it alone."""
    return len(token) == 1 and not (token.isalnum() or token == "_")


def short_needle_pattern(padded: str) -> str:
    """A regex for a needle's tokens with any whitespace between them: it matches wherever the
    token-normalized text contains the needle (and sometimes where it does not)."""
    escaped = (
        "".join(c if c.isalnum() or c == "_" else f"\\x{{{ord(c):x}}}" for c in token)
        for token in padded.split()
    )
    return _SPACE.join(escaped)


class BenchmarkPrefilter:
    """The benchmarks' token vocabulary and n-gram keys, to rule files out in bulk."""

    def __init__(self, index: BenchmarkIndex) -> None:
        self.index, self.n = index, index.config.ngram
        texts = {t for task in index.tasks for t in (*task.texts, *task.needles)}
        texts |= {needle.padded for needle in index.needles}
        self._tokens = {text: tokenize(text) for text in texts}  # benchmark text: tokenized once
        vocab = sorted({token for tokens in self._tokens.values() for token in tokens})
        self._one_regex = all(token.isascii() or _lone_symbol(token) for token in vocab)
        self._vocab = pl.Series(vocab, dtype=pl.String)
        self._codes = pl.Series(np.arange(1, len(vocab) + 1, dtype=np.uint64))
        rng = np.random.default_rng(_SEED)
        self._weights = rng.integers(1, 2**63, size=self.n, dtype=np.uint64) * 2 + 1
        short = [n.padded for n in index.needles if n.first is None]
        self._short = sorted(set(map(short_needle_pattern, short)))
        self._build_keys(index)

    def _build_keys(self, index: BenchmarkIndex) -> None:
        """Sorted keys, and per key the groups owning it (CSR). A group is a task (it needs
        `needed` of its n-grams) or a needle of >= n tokens (it needs every one of its own)."""
        needles = [n for n in index.needles if n.first is not None]
        texts = [(i, t) for i, task in enumerate(index.tasks) for t in task.texts]
        texts += [(len(index.tasks) + i, n.padded) for i, n in enumerate(needles)]
        docs = pl.Series([self._tokens[t] for _, t in texts], dtype=pl.List(pl.String))
        keys, doc_of = self._keys(docs)
        group_of = np.array([g for g, _ in texts], dtype=np.int64)[doc_of]
        pairs = np.unique(np.rec.fromarrays([group_of, keys]))
        groups, owner_keys = pairs["f0"], pairs["f1"]
        sizes = np.bincount(groups, minlength=len(index.tasks) + len(needles))
        self._check_no_collision(index, owner_keys[groups < len(index.tasks)], sizes)
        needed = [*index.needed_counts, *sizes[len(index.tasks) :]]
        self._needed = np.array([min(x, 2**62) for x in needed], dtype=np.int64)
        self._sorted = np.unique(np.append(owner_keys, np.uint64(0)))
        key_ids = np.searchsorted(self._sorted, owner_keys)
        order = np.argsort(key_ids, kind="stable")
        self._owners = groups[order]
        self._owner_start = np.searchsorted(key_ids[order], np.arange(len(self._sorted) + 1))

    def _check_no_collision(self, index: BenchmarkIndex, keys: np.ndarray, sizes) -> None:
        """Two benchmark n-grams on one key would undercount a file's shared n-grams."""
        grams = {
            tuple(tokens[i : i + self.n])
            for task in index.tasks
            for tokens in map(self._tokens.__getitem__, task.texts)
            for i in range(len(tokens) - self.n + 1)
        }
        per_task = list(sizes[: len(index.tasks)])
        if per_task != index.ngram_totals or len(np.unique(keys)) != len(grams):
            raise ValueError("benchmark n-gram keys collide: change _SEED")

    def find_many(self, texts: Sequence[str]) -> list[list[Match]]:
        """`index.find` of every text, computed only for the texts that can match."""
        hits = self.candidates(texts)
        return [self.index.find(text) if hit else [] for text, hit in zip(texts, hits, strict=True)]

    def candidates(self, texts: Sequence[str]) -> np.ndarray:
        """A bool per text: True where `find` may return a match."""
        return self._hits(pl.Series(list(texts), dtype=pl.String).fill_null(""))

    def _hits(self, series: pl.Series) -> np.ndarray:
        found = np.zeros(len(series), dtype=bool)
        for part, docs in self._token_lists(series):
            keys, doc_of_key = self._keys(docs)
            at = np.searchsorted(self._sorted, keys).clip(max=len(self._sorted) - 1)
            known = self._sorted[at] == keys
            found[part[self._may_match(doc_of_key[known], at[known])]] = True
        for pattern in self._short:
            found |= series.str.contains(pattern).to_numpy()
        return found

    def _token_lists(self, series: pl.Series) -> list[tuple[np.ndarray, pl.Series]]:
        """(doc indexes, their token lists) covering every doc.

        When every vocabulary token is ASCII or a lone symbol (HumanEval's `≤`, `➞`), one Rust
        regex serves every doc: its ASCII word runs and punctuation are Python's wherever
        Python's token is ASCII, each other non-space character stands alone, and whitespace is
        Python's, so every n-gram of vocabulary tokens survives. Otherwise a doc with non-ASCII
        text is tokenized by Python's `tokenize`.
        """
        if self._one_regex:
            return [(np.arange(len(series)), series.str.extract_all(SPLIT_TOKEN_PATTERN))]
        ascii_only = (series.str.len_bytes() == series.str.len_chars()).to_numpy()
        ascii_docs, other_docs = np.flatnonzero(ascii_only), np.flatnonzero(~ascii_only)
        other = [tokenize(series[int(i)]) for i in other_docs]
        return [
            (ascii_docs, series.gather(ascii_docs).str.extract_all(ASCII_TOKEN_PATTERN)),
            (other_docs, pl.Series(other, dtype=pl.List(pl.String))),
        ]

    def _may_match(self, docs: np.ndarray, key_ids: np.ndarray) -> np.ndarray:
        """Docs holding `needed` distinct keys of some group."""
        width, groups = len(self._sorted), len(self._needed)
        pairs = np.unique(docs * width + key_ids)
        docs, key_ids = pairs // width, pairs % width
        starts, stops = self._owner_start[key_ids], self._owner_start[key_ids + 1]
        owned = stops - starts
        flat = np.repeat(stops - owned.cumsum(), owned) + np.arange(owned.sum())
        doc_groups, counts = np.unique(
            np.repeat(docs, owned) * groups + self._owners[flat], return_counts=True
        )
        return np.unique(doc_groups[counts >= self._needed[doc_groups % groups]] // groups)

    def _keys(self, docs: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """(uint64 key of every window of n known tokens inside one doc, that doc's index)."""
        n, counts = self.n, docs.list.len().fill_null(0).to_numpy().astype(np.int64)
        flat = docs.explode(empty_as_null=False, keep_nulls=False)
        codes = flat.replace_strict(
            self._vocab, self._codes, default=0, return_dtype=pl.UInt64
        ).to_numpy()
        windows = len(codes) - n + 1
        if windows <= 0:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        unknown = np.zeros(len(codes) + 1, dtype=np.int64)
        np.cumsum(codes == 0, out=unknown[1:])
        complete = unknown[n : windows + n] == unknown[:windows]
        ends = np.cumsum(counts)
        starts = np.flatnonzero(complete)
        doc_of = np.searchsorted(ends, starts, side="right")
        valid = starts[starts + n <= ends[doc_of]]
        keys = codes[valid] * self._weights[0]
        for k in range(1, n):
            keys += codes[valid + k] * self._weights[k]
        return keys, np.searchsorted(ends, valid, side="right")
