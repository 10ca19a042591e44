"""Messy generator outputs: parsed, or dropped with the right reason."""

from __future__ import annotations

import pytest

from snowcoder_assets.phase3.generation import Response
from snowcoder_assets.phase3.parse import extract_code

GOOD = 'def add(a: int, b: int) -> int:\n    """Sum."""\n    return a + b\n'


def _response(text: str | None, finish: str | None = "stop", error: str | None = None):
    return Response(prompt_id="p", text=text, finish_reason=finish, error=error)


@pytest.mark.parametrize(
    ("text", "finish", "reason"),
    [
        ("Here is my answer, no code at all.", "stop", "no_code_block"),
        ("", "stop", "empty_response"),
        ("   \n\n", "stop", "empty_response"),
        (f"```python\n{GOOD}```", "length", "truncated"),
        (f"Sure:\n```python\n{GOOD}", "stop", "truncated"),  # the fence never closes
        ("```python\n\n```", "stop", "empty_code_block"),
        ("```python\ndef broken(:\n    pass\n```", "stop", "syntax_error"),
        ("```python\nprint 'py2'\n```", "stop", "syntax_error"),
    ],
)
def test_unusable_responses_are_dropped_with_their_reason(text, finish, reason) -> None:
    parsed = extract_code(_response(text, finish), "python")
    assert parsed.code is None
    assert parsed.reason == reason


def test_a_failed_request_keeps_its_error() -> None:
    parsed = extract_code(_response(None, None, "HTTP 500 after 5 attempts"), "python")
    assert parsed.reason == "request_failed: HTTP 500 after 5 attempts"


def test_the_block_in_the_seed_language_wins_over_the_first() -> None:
    text = f"Install:\n```bash\npip install nothing\n```\nThe file:\n```py\n{GOOD}```\nDone."
    parsed = extract_code(_response(text), "python")
    assert parsed.code == GOOD
    assert parsed.blocks == 2
    assert parsed.syntax == "ok"


def test_without_a_language_match_the_first_block_is_kept() -> None:
    text = "```\nfn main() {}\n```\n```\nlet x = 1;\n```"
    parsed = extract_code(_response(text), "rust")
    assert parsed.code == "fn main() {}\n"
    assert parsed.syntax == "unchecked"  # no Rust parser installed here: recorded, not failed


def test_a_longer_fence_holds_inner_backticks_and_tildes_work() -> None:
    inner = 'DOC = """\n```python\nx = 1\n```\n"""\n'
    parsed = extract_code(_response(f"````python\n{inner}````\n"), "python")
    assert parsed.code == inner
    tilde = extract_code(_response(f"~~~python\n{GOOD}~~~"), "python")
    assert tilde.code == GOOD


def test_parsing_never_executes_the_code(tmp_path) -> None:
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')\n"
    parsed = extract_code(_response(f"```python\n{code}```"), "python")
    assert parsed.code == code
    assert not marker.exists()
