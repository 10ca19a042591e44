"""Chunk selection without tokenizing whole files: same first and last chunks, a middle one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snowcoder_assets.phase2.annotator import AnnotatorConfig, base_model_path
from snowcoder_assets.phase2.scoring import WINDOW_CHARS_PER_TOKEN, chunk_windows, select_chunks

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CHUNK = 62


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_path(AnnotatorConfig()))


def stdlib_texts() -> list[str]:
    """Real modules of every size: short ones are read whole, long ones in windows."""
    root = Path(os.__file__).parent
    names = ["this.py", "keyword.py", "bisect.py", "colorsys.py", "argparse.py", "difflib.py",
             "tarfile.py", "typing.py", "json/decoder.py", "email/utils.py"]  # fmt: skip
    return [(root / name).read_text(encoding="utf-8") for name in names]


def whole_tokens(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]


def test_long_texts_keep_their_first_and_last_chunks(tokenizer):
    texts = stdlib_texts()
    windowed = chunk_windows(tokenizer, texts, CHUNK)
    long = 0
    for text, chunks in zip(texts, windowed, strict=True):
        whole = whole_tokens(tokenizer, text)
        expected = select_chunks(whole, CHUNK)
        if len(text) <= 3 * CHUNK * WINDOW_CHARS_PER_TOKEN:
            assert chunks == expected
            continue
        long += 1
        assert len(chunks) == 3 and all(len(c) == CHUNK for c in chunks)
        assert chunks[0] == expected[0] and chunks[2] == expected[2]
        starts = [i for i in range(len(whole) - CHUNK + 1) if whole[i : i + CHUNK] == chunks[1]]
        assert starts, "the middle chunk is a run of the text's own tokens"
        centre = (len(whole) - CHUNK) // 2
        assert min(abs(s - centre) for s in starts) < 0.1 * len(whole)
    assert long >= 5 and len(texts) - long >= 2


def test_sparse_long_text_falls_back_to_whole_tokens(tokenizer):
    """Whitespace runs leave the windows short of tokens: the whole text decides the chunks."""
    text = "x = 1\n" + " " * 40_000 + "\n".join(f"y{i} = {i}" for i in range(30)) + "\n"
    (chunks,) = chunk_windows(tokenizer, [text], CHUNK)
    assert chunks == select_chunks(whole_tokens(tokenizer, text), CHUNK)


def test_empty_and_unicode_texts(tokenizer):
    texts = ["", "π = 3.14159  # 円周率\n" * 400, "\n\n\n"]
    windowed = chunk_windows(tokenizer, texts, CHUNK)
    assert windowed[0] == [[]] and windowed[2] == [[]]
    assert len(windowed[1]) == 3 and all(len(c) == CHUNK for c in windowed[1])
