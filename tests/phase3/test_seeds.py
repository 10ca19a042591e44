"""Seeds: the language mix, cuts at unit boundaries, and deterministic prompts."""

from __future__ import annotations

import ast
import random
import sysconfig
from pathlib import Path

from snowcoder_assets.phase3.generation import Sampling
from snowcoder_assets.phase3.prompts import build_request, render_user_message
from snowcoder_assets.phase3.seeds import block_units, cut_seed, prompt_counts

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def test_python_gets_its_share_and_the_others_keep_their_proportions() -> None:
    tokens = {"python": 1000, "c": 300, "javascript": 100}
    counts = prompt_counts(tokens, {"python": 99, "c": 99, "javascript": 99}, 40, 0.5)
    assert counts == {"c": 15, "javascript": 5, "python": 20}


def test_a_language_short_of_files_gives_the_rest_to_the_others() -> None:
    tokens = {"python": 1000, "c": 300, "javascript": 100}
    counts = prompt_counts(tokens, {"python": 3, "c": 99, "javascript": 99}, 40, 0.5)
    assert counts["python"] == 3
    assert sum(counts.values()) == 40


def test_only_python_takes_every_prompt() -> None:
    assert prompt_counts({"python": 10}, {"python": 50}, 12, 0.5) == {"python": 12}


def test_a_small_file_is_its_own_seed() -> None:
    text = "def f():\n    return 1\n"
    assert cut_seed(text, "python", 100, _words, random.Random(0)) == (0, 1, "file", 4)


def test_python_snippets_are_whole_statements_within_the_cap() -> None:
    text = (STDLIB / "textwrap.py").read_text()
    lines = text.splitlines(keepends=True)
    for seed in range(20):
        first, last, cut, tokens = cut_seed(text, "python", 300, _words, random.Random(seed))
        snippet = "".join(lines[first : last + 1])
        assert cut == "units"
        assert tokens == len(snippet.split()) <= 300
        ast.parse(snippet)  # whole statements: it parses on its own


def test_other_languages_cut_at_top_level_blocks() -> None:
    c_code = "".join(
        f"/* f{i} */\nint f{i}(int x) {{\n    if (x) {{\n\n        return {i};\n    }}\n"
        f"    return 0;\n}}\n\n"
        for i in range(30)
    )
    lines = c_code.splitlines(keepends=True)
    units = block_units(lines)
    assert all(lines[a].startswith("/*") for a, _ in units)  # never inside a body
    first, last, cut, _ = cut_seed(c_code, "c", 40, _words, random.Random(3))
    assert cut == "units"
    assert lines[first].startswith("/*") and lines[last].strip() in ("}", "")


def test_prompts_are_deterministic_and_versioned() -> None:
    seed = {"text": "x = {1: 2}\n```\n", "lang": "python", "path": "a/b.py"}
    sampling = Sampling(max_tokens=64)
    one, two = build_request(seed, "sys", sampling), build_request(dict(seed), "sys", sampling)
    assert one == two
    assert build_request(seed, "sys", Sampling(max_tokens=65)).prompt_id != one.prompt_id
    assert build_request(seed, "other", sampling).prompt_id != one.prompt_id
    user = render_user_message(seed)
    assert "x = {1: 2}" in user and "````python\n" in user  # braces kept, fence outlasts seed's
    assert one.messages[0] == {"role": "system", "content": "sys"}
    assert one.prompt.startswith("sys\n\n") and user in one.prompt
