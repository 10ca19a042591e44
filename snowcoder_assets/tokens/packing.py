"""Packed shards: a corpus tokenized, cut into fixed-length sequences and globally shuffled.

Every document (parquet column `text`, in file and row order) is encoded by
`tokenizer.encode_documents` (the Rust backend, parallel over the batch; a file's literal
`<|endoftext|>` stays text) and followed by the EOD id, so a sequence may hold the end of one
document and the start of the next, as in the paper's packed pretraining. The stream is cut
into sequences of exactly `seq_len` tokens; the last partial sequence is dropped and its
length recorded. Nothing pads.

On disk, a folder of raw C-order arrays `shard-NNNNN.bin` of shape (n, seq_len), uint16 when
the vocabulary fits (`len(tokenizer) <= 65535`) and uint32 otherwise, each at most ~64 MiB, and
`index.json` (written last) listing them with the counts. `np.memmap` reads a shard directly.

The shuffle is one seeded permutation of all sequences across shards (`shuffle_order`): the
tokens are first written unshuffled, then each output shard gathers its rows from memory maps
of the unshuffled shards, which are deleted at the end. Memory holds the permutation (4 bytes a
sequence) and one output shard; the disk briefly holds the data twice. `seed=None` keeps the
packing order, so concatenating the shards gives back the token stream.

The whole folder is built in a hidden sibling and renamed onto `out_dir`: a killed run leaves
the previous complete folder (or none), never a half-written one.

transformers is imported inside the functions: the Dagster definitions import this module.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pyarrow.parquet as pq

from snowcoder_assets.io import read_json, write_json
from snowcoder_assets.tokens.tokenizer import (
    EOD_TOKEN,
    _replace_dir,
    encode_documents,
    load_tokenizer,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

INDEX_NAME = "index.json"
SHARD_BYTES = 64 << 20  # at most this much per shard (at least one sequence, however long)
READ_BATCH_ROWS = 256  # at most this many documents per encode_batch call...
# ...and about this much text: encoding holds ~100-150 bytes a character while it runs
BATCH_CHARS = 8 << 20
MAX_OPEN_SHARDS = 256  # memory maps kept open while shuffling
UINT16_MAX_VOCAB = 65535
UNKNOWN_LANG = "unknown"  # for a corpus without a `lang` column
Log = Callable[[str], None]


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (`vocab_size <= 65535`), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= UINT16_MAX_VOCAB else np.uint32)


def shuffle_order(num_sequences: int, seed: int) -> np.ndarray:
    """Sequence `j` of the shuffled shards is sequence `order[j]` of the packing order."""
    order = np.arange(num_sequences, dtype=np.uint32 if num_sequences < 2**32 else np.int64)
    np.random.default_rng(seed).shuffle(order)
    return order


def corpus_paths(corpus_glob: str | Sequence[str]) -> list[Path]:
    """The files each pattern matches (sorted per pattern, patterns in order, no repeats)."""
    patterns = [corpus_glob] if isinstance(corpus_glob, str | os.PathLike) else corpus_glob
    seen: dict[Path, None] = {}
    for pattern in patterns:
        for name in sorted(glob.glob(str(pattern), recursive=True)):
            if Path(name).is_file():
                seen.setdefault(Path(name), None)
    return list(seen)


def pack_corpus(
    corpus_glob: str | list[str],
    tokenizer_dir: Path,
    out_dir: Path,
    seq_len: int,
    seed: int | None,
    log: Log = print,
    *,
    batch_rows: int = READ_BATCH_ROWS,
    batch_chars: int = BATCH_CHARS,
    shard_bytes: int = SHARD_BYTES,
) -> dict[str, Any]:
    """Tokenize, pack and shuffle the corpus into `out_dir`; return the index (see the module)."""
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    paths = corpus_paths(corpus_glob)
    if not paths:
        log(f"no corpus files match {corpus_glob!r}: the shards will be empty")
    tokenizer = load_tokenizer(str(tokenizer_dir))
    dtype, eod_id = token_dtype(len(tokenizer)), eod_token_id(tokenizer)
    rows_per_shard = max(1, shard_bytes // (seq_len * dtype.itemsize))
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        prefix = "shard" if seed is None else "unshuffled"
        packer = _Packer(_ShardWriter(tmp, prefix, rows_per_shard, seq_len), dtype, eod_id)
        start = time.perf_counter()
        for i, path in enumerate(paths, start=1):
            for texts, langs in _read_documents(path, batch_rows, batch_chars):
                packer.add(encode_documents(tokenizer, texts), langs)
            elapsed = time.perf_counter() - start
            log(
                f"packed {path} ({i}/{len(paths)} files, {packer.num_documents} documents, "
                f"elapsed {elapsed:.0f}s, eta {elapsed / i * (len(paths) - i):.0f}s)"
            )
        shards = packer.writer.close()
        if seed is not None:
            shards = _shuffle_shards(tmp, shards, seq_len, dtype, rows_per_shard, seed)
        index = _index(packer, shards, dtype, seq_len, eod_id, seed, tokenizer_dir)
        write_json(tmp / INDEX_NAME, index)  # last: a folder with an index is complete
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # already gone after a successful rename
    log(
        f"{index['num_sequences']} sequences of {seq_len} tokens in {len(shards)} shards "
        f"({index['dropped_tail_tokens']} tail tokens dropped)"
    )
    return index


def eod_token_id(tokenizer: PreTrainedTokenizerFast) -> int:
    """The id that ends every document (0 in a tokenizer trained here)."""
    eod = tokenizer.convert_tokens_to_ids(EOD_TOKEN)
    if eod is None or eod == tokenizer.unk_token_id:
        eod = tokenizer.eos_token_id
    if eod is None:
        raise ValueError(f"the tokenizer has neither {EOD_TOKEN} nor an eos token")
    return int(eod)


def _read_documents(
    path: Path, batch_rows: int, batch_chars: int
) -> Iterator[tuple[list[str], list[str]]]:
    """(texts, langs) in file order, in batches of at most `batch_rows` and ~`batch_chars`."""
    parquet = pq.ParquetFile(path)
    has_lang = "lang" in parquet.schema_arrow.names
    columns = ["text", "lang"] if has_lang else ["text"]
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
        texts = batch.column("text").to_pylist()
        if any(text is None for text in texts):
            raise ValueError(f"{path} has a document without text")
        langs = batch.column("lang").to_pylist() if has_lang else [UNKNOWN_LANG] * len(texts)
        langs = [lang or UNKNOWN_LANG for lang in langs]
        start, chars = 0, 0
        for i, text in enumerate(texts):
            if i > start and chars + len(text) > batch_chars:
                yield texts[start:i], langs[start:i]
                start, chars = i, 0
            chars += len(text)
        if start < len(texts):
            yield texts[start:], langs[start:]


class _Packer:
    """Appends documents (then EOD) to the token stream and hands full sequences to the writer."""

    def __init__(self, writer: _ShardWriter, dtype: np.dtype, eod_id: int) -> None:
        self.writer, self.dtype, self.eod_id = writer, dtype, eod_id
        self.num_documents = 0
        self.tokens_by_lang: Counter[str] = Counter()
        self.tail = np.empty(0, dtype=dtype)  # tokens not yet in a full sequence

    def add(self, documents: list[list[int]], langs: list[str]) -> None:
        """Documents' token ids (and their languages), each followed by EOD."""
        lengths = np.array([len(ids) + 1 for ids in documents], dtype=np.int64)
        ends = np.cumsum(lengths)
        stream = np.empty(len(self.tail) + int(ends[-1] if len(ends) else 0), dtype=self.dtype)
        stream[: len(self.tail)] = self.tail
        offset = len(self.tail)
        for ids, end, length in zip(documents, ends, lengths, strict=True):
            stream[offset + end - length : offset + end - 1] = ids  # overflow raises
        stream[offset + ends - 1] = self.eod_id
        for lang, length in zip(langs, lengths, strict=True):
            self.tokens_by_lang[lang] += int(length)
        self.num_documents += len(documents)
        full = len(stream) // self.writer.seq_len * self.writer.seq_len
        self.writer.write(stream[:full].reshape(-1, self.writer.seq_len))
        self.tail = stream[full:].copy()


class _ShardWriter:
    """Writes rows of `seq_len` tokens into `<prefix>-NNNNN.bin` files of `rows_per_shard` rows."""

    def __init__(self, folder: Path, prefix: str, rows_per_shard: int, seq_len: int) -> None:
        self.folder, self.prefix = folder, prefix
        self.rows_per_shard, self.seq_len = rows_per_shard, seq_len
        self.shards: list[dict[str, Any]] = []
        self._file: BinaryIO | None = None
        self._rows = 0

    def write(self, rows: np.ndarray) -> None:
        while len(rows):
            if self._file is None:
                name = f"{self.prefix}-{len(self.shards):05d}.bin"
                self._file = open(self.folder / name, "wb")  # noqa: SIM115 (closed in _finish)
                self.shards.append({"path": name, "num_sequences": 0})
            take = min(self.rows_per_shard - self._rows, len(rows))
            self._file.write(np.ascontiguousarray(rows[:take]).tobytes())
            self._rows += take
            self.shards[-1]["num_sequences"] = self._rows
            rows = rows[take:]
            if self._rows == self.rows_per_shard:
                self._finish()

    def _finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._rows = None, 0

    def close(self) -> list[dict[str, Any]]:
        self._finish()
        return self.shards


def _shuffle_shards(
    folder: Path,
    sources: list[dict[str, Any]],
    seq_len: int,
    dtype: np.dtype,
    rows_per_shard: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Write `shard-*` in `shuffle_order`, gathering rows from the unshuffled shards."""

    @lru_cache(maxsize=MAX_OPEN_SHARDS)
    def source(i: int) -> np.ndarray:
        shape = (sources[i]["num_sequences"], seq_len)
        return np.memmap(folder / sources[i]["path"], dtype=dtype, mode="r", shape=shape)

    total = sum(s["num_sequences"] for s in sources)
    order = shuffle_order(total, seed)
    writer = _ShardWriter(folder, "shard", rows_per_shard, seq_len)
    for start in range(0, total, rows_per_shard):
        wanted = order[start : start + rows_per_shard].astype(np.int64)
        shard, row = np.divmod(
            wanted, rows_per_shard
        )  # every unshuffled shard but the last is full
        out = np.empty((len(wanted), seq_len), dtype=dtype)
        by_source = np.lexsort((row, shard))  # read each source once, in file order
        bounds = np.flatnonzero(np.diff(shard[by_source])) + 1
        for group in np.split(by_source, bounds):
            out[group] = source(int(shard[group[0]]))[row[group]]
        writer.write(out)
    source.cache_clear()
    for s in sources:
        (folder / s["path"]).unlink()
    return writer.close()


def _index(
    packer: _Packer,
    shards: list[dict[str, Any]],
    dtype: np.dtype,
    seq_len: int,
    eod_id: int,
    seed: int | None,
    tokenizer_dir: Path,
) -> dict[str, Any]:
    num_sequences = sum(s["num_sequences"] for s in shards)
    return {
        "dtype": dtype.name,
        "seq_len": seq_len,
        "eod_id": eod_id,
        "num_sequences": num_sequences,
        "num_tokens": num_sequences * seq_len,
        "dropped_tail_tokens": len(packer.tail),
        "num_documents": packer.num_documents,
        # every document's tokens (EOD included) by its language, the dropped tail too
        "tokens_by_lang": dict(sorted(packer.tokens_by_lang.items())),
        "seed": seed,
        "tokenizer": str(tokenizer_dir),
        "shards": shards,
    }


def read_sequences(index_path: Path) -> Iterator[np.ndarray]:
    """Each shard as a read-only memory map of shape (num_sequences, seq_len), in index order."""
    index_path = Path(index_path)
    index = read_json(index_path)
    dtype, seq_len = np.dtype(index["dtype"]), index["seq_len"]
    for shard in index["shards"]:
        path = index_path.parent / shard["path"]
        expected = shard["num_sequences"] * seq_len * dtype.itemsize
        if path.stat().st_size != expected:
            raise ValueError(f"{path} holds {path.stat().st_size} bytes, expected {expected}")
        yield np.memmap(path, dtype=dtype, mode="r", shape=(shard["num_sequences"], seq_len))


def detokenize_sequence(tokens: Sequence[int] | np.ndarray, tokenizer: Any) -> str:
    """The text of a run of token ids, markers (EOD, file separator) kept as text."""
    ids = [int(t) for t in tokens]
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def pack_phases(
    corpora: dict[str, Path], tokenizer_dir: Path, out_dir_of, seq_len: int, seed: int, log: Log
) -> dict[str, dict[str, Any]]:
    """The `packed_shards` stage: pack every phase corpus folder that holds documents into
    `out_dir_of(phase)`; a phase without a corpus yet (phase 3 today) is left out."""
    indexes = {}
    for phase, folder in corpora.items():
        files = sorted(p for p in Path(folder).rglob("*.parquet") if not p.name.startswith("."))
        if not files:
            log(f"{phase}: no corpus in {folder} yet, nothing to pack")
            continue
        indexes[phase] = pack_corpus(
            [str(p) for p in files], tokenizer_dir, out_dir_of(phase), seq_len, seed, log
        )
    return indexes
