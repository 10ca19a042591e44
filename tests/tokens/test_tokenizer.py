"""The tokenizer: byte-exact round trips, one-id markers, deterministic training, atomic saves."""

from __future__ import annotations

import itertools
import sysconfig
from pathlib import Path

import pytest
from pydantic import ValidationError

from snowcoder_assets.tokens.tokenizer import (
    EOD_TOKEN,
    FILE_SEP_TOKEN,
    TokenizerConfig,
    count_tokens,
    encode_documents,
    load_tokenizer,
    sample_texts,
    save_tokenizer,
    train_tokenizer,
)

CORPUS_BYTES = 2_000_000
CONFIG = TokenizerConfig(vocab_size=1000)
TRICKY = [
    "",
    "x",
    "def f(x):\n    return x  \n",
    "   leading and trailing spaces   ",
    "tabs\tand\t\tmore\t\n\t",
    "windows\r\nline\r\nendings\r\n",
    "old mac\rcarriage\r",
    "\n\n\n  \n",
    "unicode: héllo wörld ñ 日本語 Ελληνικά русский",
    "emoji 🤗🐍 family 👩‍👩‍👧 flag 🇫🇷 skin 👍🏽",
    "combining e\u0301, zero width \u200b and joiner \u200d",
    "nbsp\u00a0ideographic\u3000space \ufeffBOM",
    "nul \x00 and controls \x01\x1b[0m\x7f",
    "cleanup bait: a . b , c ' s n't do n't ?",
    f"{FILE_SEP_TOKEN}src/app.py\nprint('hi')\n{FILE_SEP_TOKEN}README.md\n# Title\n",
    f"{FILE_SEP_TOKEN}{FILE_SEP_TOKEN}{EOD_TOKEN}{EOD_TOKEN}",
    f"end of one{EOD_TOKEN}start of next",
    "<|file_sep <|file_sep| <| file_sep|> <|endoftext",
]


def stdlib_texts(max_bytes: int = CORPUS_BYTES) -> list[str]:
    """The standard library's top-level modules, in name order, up to about `max_bytes`."""
    texts: list[str] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        texts.append(path.read_text(encoding="utf-8", errors="replace"))
        max_bytes -= len(texts[-1].encode())
        if max_bytes <= 0:
            break
    return texts


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return stdlib_texts()


@pytest.fixture(scope="module")
def tokenizer(corpus: list[str]):
    return train_tokenizer(corpus, CONFIG)


@pytest.fixture(scope="module")
def saved(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tokenizer(tokenizer, tmp_path_factory.mktemp("tok") / "tokenizer")


@pytest.mark.parametrize("text", TRICKY)
def test_tokenizer_round_trip_is_byte_exact(tokenizer, text: str) -> None:
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_tokenizer_round_trip_on_stdlib_files(tokenizer, corpus: list[str]) -> None:
    unseen = stdlib_texts(3 * CORPUS_BYTES)[len(corpus) : len(corpus) + 20]
    for text in corpus[:20] + unseen:
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_tokenizer_special_tokens_have_fixed_ids(tokenizer) -> None:
    assert tokenizer.convert_tokens_to_ids([EOD_TOKEN, FILE_SEP_TOKEN]) == [0, 1]
    assert tokenizer.eos_token == EOD_TOKEN
    assert tokenizer.eos_token_id == 0
    assert FILE_SEP_TOKEN in tokenizer.all_special_tokens
    assert len(tokenizer) == CONFIG.vocab_size


def test_tokenizer_file_sep_encodes_as_one_id(tokenizer) -> None:
    sep = tokenizer.convert_tokens_to_ids(FILE_SEP_TOKEN)
    ids = tokenizer.encode(f"{FILE_SEP_TOKEN}pkg/mod.py\nimport os\n", add_special_tokens=False)
    assert ids[0] == sep
    assert ids.count(sep) == 1
    assert all("<|" not in token for token in tokenizer.convert_ids_to_tokens(ids[1:]))


def test_tokenizer_never_forms_special_ids_from_near_misses(tokenizer) -> None:
    ids = tokenizer.encode(TRICKY[-1], add_special_tokens=False)
    assert not set(ids) & set(tokenizer.all_special_ids)


def test_tokenizer_adds_no_tokens_by_default(tokenizer) -> None:
    assert tokenizer.encode("abc") == tokenizer.encode("abc", add_special_tokens=False)


def test_train_tokenizer_is_deterministic(tokenizer, corpus: list[str]) -> None:
    again = train_tokenizer(corpus, CONFIG)
    assert again.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()


def test_train_tokenizer_reads_only_sample_bytes(corpus: list[str]) -> None:
    config = TokenizerConfig(vocab_size=300, sample_bytes=100_000)
    tokenizer = train_tokenizer(itertools.cycle(corpus), config)  # endless input
    assert len(tokenizer) == 300


def test_saved_tokenizer_loads_with_auto_tokenizer(tokenizer, saved: Path) -> None:
    from transformers import AutoTokenizer

    for loaded in (AutoTokenizer.from_pretrained(saved), load_tokenizer(str(saved))):
        assert loaded.eos_token == EOD_TOKEN
        assert FILE_SEP_TOKEN in loaded.all_special_tokens
        for text in TRICKY:
            ids = loaded.encode(text)
            assert ids == tokenizer.encode(text)
            assert loaded.decode(ids) == text


def test_save_tokenizer_replaces_existing_folder(tokenizer, tmp_path: Path) -> None:
    out = tmp_path / "tokenizer"
    out.mkdir()
    (out / "stale.txt").write_text("old run")
    save_tokenizer(tokenizer, out)
    assert (out / "tokenizer.json").is_file()
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer"]


def test_save_tokenizer_failure_keeps_old_folder(tmp_path: Path) -> None:
    class Broken:
        def save_pretrained(self, folder: Path) -> None:
            (Path(folder) / "tokenizer.json").write_text("half")
            raise OSError("disk full")

    out = tmp_path / "tokenizer"
    out.mkdir()
    (out / "tokenizer.json").write_text("old")
    with pytest.raises(OSError, match="disk full"):
        save_tokenizer(Broken(), out)
    assert (out / "tokenizer.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer"]


def test_load_tokenizer_missing_folder_is_not_sent_to_hub(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_tokenizer(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        load_tokenizer("./missing/tokenizer")
    with pytest.raises(ValueError):
        load_tokenizer("")


def test_count_tokens_matches_encode(tokenizer, corpus: list[str]) -> None:
    """Without literal markers, the counts are plain `encode`'s, whatever the batching."""
    texts = [t for t in TRICKY if FILE_SEP_TOKEN not in t and EOD_TOKEN not in t] + corpus[:10]
    expected = [len(tokenizer.encode(t, add_special_tokens=False)) for t in texts]
    assert count_tokens(tokenizer, texts, batch_size=4) == expected
    assert count_tokens(tokenizer, TRICKY, batch_size=4) == count_tokens(tokenizer, TRICKY)
    assert count_tokens(tokenizer, []) == []


def test_count_tokens_ignores_padding_and_truncation(saved: Path) -> None:
    loaded = load_tokenizer(str(saved))
    expected = count_tokens(loaded, TRICKY)
    loaded.backend_tokenizer.enable_padding(length=64)
    loaded.backend_tokenizer.enable_truncation(max_length=3)
    assert count_tokens(loaded, TRICKY) == expected


@pytest.mark.parametrize(
    ("texts", "max_bytes", "expected"),
    [
        (["ab", "cd", "ef"], 4, ["ab", "cd"]),
        (["ab", "cd", "ef"], 3, ["ab", "c"]),
        (["ab", "cd", "ef"], 100, ["ab", "cd", "ef"]),
        (["ab"], 0, []),
        (["é€x"], 4, ["é"]),  # 2 + 3 bytes: no half character
        (["é€x"], 5, ["é€"]),
        (["", "ab"], 1, ["", "a"]),
    ],
)
def test_sample_texts_stops_at_max_bytes(texts: list[str], max_bytes: int, expected: list[str]):
    assert list(sample_texts(texts, max_bytes)) == expected


def test_sample_texts_reads_no_further_than_needed() -> None:
    source = iter(["aaaa", "bbbb", "cccc"])
    assert list(sample_texts(source, 4)) == ["aaaa"]
    assert next(source) == "bbbb"


def test_tokenizer_config_rejects_bad_values() -> None:
    assert TokenizerConfig().vocab_size == 8000
    with pytest.raises(ValidationError):
        TokenizerConfig(vocab_size=100)
    with pytest.raises(ValidationError):
        TokenizerConfig(vocab=8000)


def test_encode_documents_keeps_literal_markers_as_text(tokenizer) -> None:
    doc = (
        f"{FILE_SEP_TOKEN}a.py\nEOD = '{EOD_TOKEN}'\n{FILE_SEP_TOKEN}b.py\ns = '{FILE_SEP_TOKEN}'\n"
    )
    (ids,) = encode_documents(tokenizer, [doc])
    eod, sep = (tokenizer.convert_tokens_to_ids(t) for t in (EOD_TOKEN, FILE_SEP_TOKEN))
    assert eod not in ids and ids.count(sep) == 2 and ids[0] == sep
    assert tokenizer.decode(ids) == doc
    assert count_tokens(tokenizer, [doc]) == [len(ids)]
    plain = "no markers here\n"
    assert encode_documents(tokenizer, [plain]) == [
        tokenizer.encode(plain, add_special_tokens=False)
    ]
