"""Packed shards: exact round trips, a seeded global shuffle, the dtype rule, atomic folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snowcoder_assets.io import read_json
from snowcoder_assets.tokens.packing import (
    INDEX_NAME,
    detokenize_sequence,
    pack_corpus,
    read_sequences,
    shuffle_order,
    token_dtype,
)
from snowcoder_assets.tokens.tokenizer import (
    EOD_TOKEN,
    FILE_SEP_TOKEN,
    TokenizerConfig,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)

SEQ_LEN = 16
DOCUMENTS = [
    (f"{FILE_SEP_TOKEN}src/app.py\nprint('héllo wörld')\n{FILE_SEP_TOKEN}util.py\nx = 1\n", "py"),
    ("int main() {\r\n  return 0;\r\n}\r\n", "c"),
    ("unicode: 日本語 Ελληνικά русский, emoji 🤗🐍 and a family 👩‍👩‍👧\n", "md"),
    ("", "py"),  # an empty document is just its EOD
    (f'{FILE_SEP_TOKEN}lib.rs\nfn main() {{ println!("hi"); }}\n', "rust"),
    ("def last():\n    return 'plain ascii so the dropped tail decodes cleanly'\n" * 5, "py"),
]


def _silent(_: str) -> None:
    pass


def _write_corpus(folder: Path, documents: list[tuple[str, str]], per_file: int = 2) -> str:
    """Parquet part files of the corpus shape (text and lang matter here); returns a glob."""
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(documents), per_file):
        part = documents[start : start + per_file]
        table = pa.table(
            {"text": [text for text, _ in part], "lang": [lang for _, lang in part]},
            schema=pa.schema([("text", pa.large_string()), ("lang", pa.string())]),
        )
        pq.write_table(table, folder / f"part-{start // per_file:05d}.parquet")
    return str(folder / "*.parquet")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [text for text, _ in DOCUMENTS] * 20
    tokenizer = train_tokenizer(texts, TokenizerConfig(vocab_size=400, min_frequency=1))
    return save_tokenizer(tokenizer, tmp_path_factory.mktemp("tok") / "tokenizer")


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path):
    return load_tokenizer(str(tokenizer_dir))


def _stream(tokenizer, documents: list[tuple[str, str]]) -> list[int]:
    ids: list[int] = []
    for text, _ in documents:
        ids += [*tokenizer.encode(text, add_special_tokens=False), 0]
    return ids


def _all_rows(index_path: Path) -> np.ndarray:
    index = read_json(index_path)
    shards = list(read_sequences(index_path))
    return np.concatenate(shards) if shards else np.empty((0, index["seq_len"]), np.uint16)


def _pack(corpus: str, tokenizer_dir: Path, out: Path, seed: int | None, **kw) -> dict:
    return pack_corpus(corpus, tokenizer_dir, out, SEQ_LEN, seed, log=_silent, **kw)


@pytest.mark.parametrize(
    "batching", [{}, {"batch_rows": 1}, {"batch_chars": 40}], ids=["default", "rows", "chars"]
)
def test_packing_unshuffled_round_trip_is_exact(
    tmp_path: Path, tokenizer_dir, tokenizer, batching: dict
) -> None:
    corpus = _write_corpus(tmp_path / "corpus", DOCUMENTS)
    index = _pack(corpus, tokenizer_dir, tmp_path / "packed", None, shard_bytes=96, **batching)
    expected = _stream(tokenizer, DOCUMENTS)
    kept = len(expected) // SEQ_LEN * SEQ_LEN
    rows = _all_rows(tmp_path / "packed" / INDEX_NAME)

    assert rows.shape == (kept // SEQ_LEN, SEQ_LEN)
    assert rows.ravel().tolist() == expected[:kept]
    assert index["dropped_tail_tokens"] == len(expected) - kept > 0
    joined = "".join(text + EOD_TOKEN for text, _ in DOCUMENTS)
    packed_text = detokenize_sequence(rows.ravel(), tokenizer)
    assert packed_text + detokenize_sequence(expected[kept:], tokenizer) == joined
    assert joined.startswith(packed_text)
    assert [s["num_sequences"] for s in index["shards"]] == [3] * (len(rows) // 3) + (
        [len(rows) % 3] if len(rows) % 3 else []
    )


def test_packing_index_counts(tmp_path: Path, tokenizer_dir, tokenizer) -> None:
    corpus = _write_corpus(tmp_path / "corpus", DOCUMENTS)
    index = _pack(corpus, tokenizer_dir, tmp_path / "packed", 3)
    on_disk = read_json(tmp_path / "packed" / INDEX_NAME)

    assert on_disk == index
    assert index["dtype"] == "uint16"
    assert index["seq_len"] == SEQ_LEN
    assert index["eod_id"] == 0
    assert index["seed"] == 3
    assert index["tokenizer"] == str(tokenizer_dir)
    assert index["num_documents"] == len(DOCUMENTS)
    assert index["num_tokens"] == index["num_sequences"] * SEQ_LEN
    assert index["num_sequences"] == sum(s["num_sequences"] for s in index["shards"])
    expected_by_lang: dict[str, int] = {}
    for text, lang in DOCUMENTS:
        count = len(tokenizer.encode(text, add_special_tokens=False)) + 1
        expected_by_lang[lang] = expected_by_lang.get(lang, 0) + count
    assert index["tokens_by_lang"] == expected_by_lang
    assert sum(expected_by_lang.values()) == index["num_tokens"] + index["dropped_tail_tokens"]
    assert sorted(p.name for p in (tmp_path / "packed").iterdir()) == [
        INDEX_NAME,
        *[s["path"] for s in index["shards"]],
    ]


def test_packing_shuffle_is_the_recorded_permutation(tmp_path: Path, tokenizer_dir) -> None:
    corpus = _write_corpus(tmp_path / "corpus", DOCUMENTS * 4)
    _pack(corpus, tokenizer_dir, tmp_path / "plain", None)
    _pack(corpus, tokenizer_dir, tmp_path / "seven", 7, shard_bytes=160)
    plain = _all_rows(tmp_path / "plain" / INDEX_NAME)
    shuffled = _all_rows(tmp_path / "seven" / INDEX_NAME)

    assert len(plain) >= 20
    assert np.array_equal(shuffled, plain[shuffle_order(len(plain), 7)])
    assert sorted(map(bytes, shuffled)) == sorted(map(bytes, plain))  # the same multiset
    assert not np.array_equal(shuffled, plain)
    assert not any(p.name.startswith("unshuffled") for p in (tmp_path / "seven").iterdir())


def test_packing_shuffle_is_deterministic_per_seed(tmp_path: Path, tokenizer_dir) -> None:
    corpus = _write_corpus(tmp_path / "corpus", DOCUMENTS * 4)
    runs = {name: tmp_path / name for name in ("a", "b", "c")}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        _pack(corpus, tokenizer_dir, runs[name], seed)
    a, b, c = (_all_rows(runs[name] / INDEX_NAME) for name in ("a", "b", "c"))

    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shuffle_order_is_a_seeded_permutation() -> None:
    order = shuffle_order(1000, 5)
    assert sorted(order.tolist()) == list(range(1000))
    assert np.array_equal(order, shuffle_order(1000, 5))
    assert not np.array_equal(order, shuffle_order(1000, 6))


@pytest.mark.parametrize(
    ("vocab_size", "dtype"),
    [
        (258, np.uint16),
        (64000, np.uint16),
        (65535, np.uint16),
        (65536, np.uint32),
        (10**6, np.uint32),
    ],
)
def test_token_dtype_fits_the_vocabulary(vocab_size: int, dtype: type) -> None:
    assert token_dtype(vocab_size) == np.dtype(dtype)


def test_packing_large_vocabulary_uses_uint32(tmp_path: Path, tokenizer) -> None:
    big = load_tokenizer(str(save_tokenizer(tokenizer, tmp_path / "small")))
    big.add_tokens([f"<extra_{i}>" for i in range(65536)])
    big_dir = save_tokenizer(big, tmp_path / "big")
    corpus = _write_corpus(tmp_path / "corpus", [("say <extra_65535> twice <extra_65535>", "py")])
    index = pack_corpus(corpus, big_dir, tmp_path / "packed", 4, None, log=_silent)

    rows = _all_rows(tmp_path / "packed" / INDEX_NAME)
    assert index["dtype"] == "uint32"
    assert rows.dtype == np.uint32
    high = big.convert_tokens_to_ids("<extra_65535>")
    assert high > 65535
    assert (rows == high).sum() == 2


def test_packing_replaces_the_folder_only_on_success(tmp_path: Path, tokenizer_dir) -> None:
    out = tmp_path / "packed"
    first = _pack(_write_corpus(tmp_path / "corpus", DOCUMENTS), tokenizer_dir, out, 1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = tmp_path / "broken"
    _write_corpus(broken, DOCUMENTS)
    (broken / "part-99999.parquet").write_bytes(b"not parquet")

    with pytest.raises(Exception, match=r"(?i)parquet|magic"):
        _pack(str(broken / "*.parquet"), tokenizer_dir, out, 1)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert read_json(out / INDEX_NAME) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "corpus", "packed"]

    second = _pack(_write_corpus(tmp_path / "more", DOCUMENTS * 3), tokenizer_dir, out, 1)
    assert second["num_sequences"] > first["num_sequences"]
    assert read_json(out / INDEX_NAME) == second
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_packing_a_failed_first_run_leaves_no_folder(tmp_path: Path, tokenizer_dir) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(Exception, match=r"(?i)parquet|magic"):
        _pack(str(tmp_path / "bad.parquet"), tokenizer_dir, tmp_path / "packed", 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]


def test_packing_no_files_gives_an_empty_index(tmp_path: Path, tokenizer_dir) -> None:
    index = _pack(str(tmp_path / "nothing" / "*.parquet"), tokenizer_dir, tmp_path / "packed", 0)
    assert (index["num_sequences"], index["num_documents"], index["shards"]) == (0, 0, [])
    assert list(read_sequences(tmp_path / "packed" / INDEX_NAME)) == []


def test_packing_corpus_without_lang_counts_unknown(tmp_path: Path, tokenizer_dir) -> None:
    (tmp_path / "corpus").mkdir()
    pq.write_table(pa.table({"text": ["x = 1\n", "y = 2\n"]}), tmp_path / "corpus" / "a.parquet")
    index = _pack(str(tmp_path / "corpus" / "*.parquet"), tokenizer_dir, tmp_path / "packed", 0)
    assert list(index["tokens_by_lang"]) == ["unknown"]
    assert index["num_documents"] == 2


def test_read_sequences_rejects_a_truncated_shard(tmp_path: Path, tokenizer_dir) -> None:
    corpus = _write_corpus(tmp_path / "corpus", DOCUMENTS)
    index = _pack(corpus, tokenizer_dir, tmp_path / "packed", None)
    shard = tmp_path / "packed" / index["shards"][0]["path"]
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(ValueError, match="expected"):
        list(read_sequences(tmp_path / "packed" / INDEX_NAME))


def test_literal_special_tokens_in_files_stay_text(tmp_path: Path, tokenizer_dir, tokenizer):
    """A file that spells out `<|endoftext|>` or `<|file_sep|>` injects no control token:
    only documents end in EOD and only the format's line-initial markers separate files."""
    doc = (
        f"{FILE_SEP_TOKEN}tokens.py\nEOD = '{EOD_TOKEN}'\nSEP = '{FILE_SEP_TOKEN}'  # {EOD_TOKEN}\n"
        f"{FILE_SEP_TOKEN}b.py\nx = 1\n"
    )
    corpus = _write_corpus(tmp_path / "corpus", [(doc, "py")] * 3, per_file=3)
    pack_corpus(corpus, tokenizer_dir, tmp_path / "packed", 1, None, log=_silent)
    ids = _all_rows(tmp_path / "packed" / INDEX_NAME).ravel().tolist()
    eod, sep = (tokenizer.convert_tokens_to_ids(t) for t in (EOD_TOKEN, FILE_SEP_TOKEN))
    assert ids.count(eod) == 3 and ids[-1] == eod
    assert ids.count(sep) == 6
    assert detokenize_sequence(ids, tokenizer) == (doc + EOD_TOKEN) * 3
