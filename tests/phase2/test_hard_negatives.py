"""Hard examples: each corruption keeps the vocabulary and destroys one aspect of quality."""

from __future__ import annotations

import ast
import random
import re

import pytest

from snowcoder_assets.phase2.hard_negatives import (
    FUNCTION_CORRUPTIONS,
    STUB_BODIES,
    corrupt,
    documented_snippets,
    renamed,
    strip_comments,
)

FUNCTION = '''@cache
def moving_average(values: list[float], window: int = 3) -> list[float]:
    """The mean of every `window` consecutive values.

    >>> moving_average([1, 2, 3, 4], 2)
    [1.5, 2.5, 3.5]
    """
    # one running total instead of a sum per window
    total = sum(values[:window])
    means = [total / window]
    for index in range(window, len(values)):
        total += values[index] - values[index - window]  # slide by one
        means.append(total / window)
    return means
'''


def words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w+", text))


@pytest.mark.parametrize("kind", FUNCTION_CORRUPTIONS)
def test_every_corruption_changes_the_text_and_is_seeded(kind):
    first = corrupt(FUNCTION, kind, "python", random.Random(1))
    again = corrupt(FUNCTION, kind, "python", random.Random(1))
    assert first == again and first.strip() != FUNCTION.strip()
    if kind not in ("renamed", "truncated", "stubbed"):
        assert words(first) >= words(FUNCTION) - {"cache"} or kind == "stripped"


def test_stubbed_and_body_shuffled_keep_the_docstring_and_lose_the_body():
    stub = corrupt(FUNCTION, "stubbed", "python", random.Random(0))
    assert '"""The mean of every' in stub and "means.append" not in stub
    assert stub.splitlines()[-1].strip() in STUB_BODIES
    shuffled = corrupt(FUNCTION, "body_shuffled", "python", random.Random(0))
    head = FUNCTION.splitlines()[:8]
    assert shuffled.splitlines()[:8] == head
    assert sorted(shuffled.splitlines()[8:]) == sorted(FUNCTION.splitlines()[8:])
    assert shuffled.splitlines()[8:] != FUNCTION.splitlines()[8:]


def test_stripped_and_renamed_lose_docstrings_comments_and_names():
    stripped = strip_comments(FUNCTION, "python")
    assert "#" not in stripped and '"""' not in stripped and "moving_average" in stripped
    ast.parse(stripped)
    short = renamed(FUNCTION)
    ast.parse(short)
    assert "window" not in short and "total" not in short and "moving_average" in short
    assert strip_comments("int a; // count\n/* block */\nint b;", "c") == "int a; // count\nint b;"


def test_commented_out_uses_the_language_marker():
    assert (
        corrupt("a = 1\nb = 2", "commented_out", "python", random.Random(0)) == "# a = 1\n# b = 2"
    )
    assert corrupt("int a;", "commented_out", "c", random.Random(0)) == "// int a;"
    assert corrupt("x = 1", "commented_out", "fortran", random.Random(0)) == "! x = 1"


def test_unknown_corruption_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown corruption 'reversed'"):
        corrupt(FUNCTION, "reversed", "python", random.Random(0))


def test_documented_snippets_are_the_documented_functions_and_methods():
    source = "class Box:\n" + "".join(f"    {line}\n" for line in FUNCTION.splitlines())
    source += "\ndef bare(x):\n    y = x\n    y += 1\n    y *= 2\n    y -= 3\n    return y\n"
    snippets = list(documented_snippets(source))
    assert snippets == [FUNCTION.rstrip("\n")]
    assert list(documented_snippets("def broken(:\n")) == []
