"""The code in a generator's response, or the reason there is none.

The prompt asks for one fenced block. A response is taken apart with the CommonMark fence
rules that matter here: a fence is a line of 3+ backticks or tildes (up to 3 spaces of
indent), an info string after it, and it closes on a line of the same character at least as
long. From the blocks found, the first whose info string names the seed's language is kept,
else the first block. Dropped, each with its reason:

- `request_failed: ...`: the endpoint never answered (see the journal);
- `truncated`: `finish_reason = "length"`, or a block opened and never closed;
- `empty_response`, `no_code_block`, `empty_code_block`;
- `syntax_error`: Python that `ast.parse` rejects (a parse only; nothing runs). Other
  languages have no parser installed here: their check is recorded as `unchecked`.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

from snowcoder_assets.phase3.generation import Response
from snowcoder_assets.phase3.prompts import fence_name

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`\n]*$")
ALIASES = {
    "python": {"python", "py", "python3", "py3"},
    "javascript": {"javascript", "js"},
    "typescript": {"typescript", "ts"},
    "c++": {"cpp", "c++", "cxx"},
    "c-sharp": {"csharp", "cs", "c#"},
    "shell": {"bash", "sh", "shell", "zsh"},
    "ruby": {"ruby", "rb"},
    "rust": {"rust", "rs"},
    "go": {"go", "golang"},
}


@dataclass(frozen=True)
class Parsed:
    code: str | None
    reason: str | None  # why there is no code; None when kept so far
    detail: str = ""
    blocks: int = 0
    syntax: str = "unchecked"  # ok | unchecked | error


@dataclass(frozen=True)
class _Block:
    info: str
    body: str
    closed: bool


def fenced_blocks(text: str) -> list[_Block]:
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        i += 1
        if not opening:
            continue
        marker, info = opening.group(1), opening.group(2).lower()
        body: list[str] = []
        closed = False
        while i < len(lines):
            line = lines[i]
            i += 1
            stripped = line.strip()
            if stripped and set(stripped) == {marker[0]} and len(stripped) >= len(marker):
                closed = True
                break
            body.append(line)
        blocks.append(_Block(info, "\n".join(body), closed))
    return blocks


def names_language(info: str, lang: str) -> bool:
    return info in ALIASES.get(lang, set()) | {lang, fence_name(lang)}


def extract_code(response: Response, lang: str) -> Parsed:
    """The kept code block of a response, or why the response gives none."""
    if response.error is not None:
        return Parsed(None, f"request_failed: {response.error}")
    text = response.text or ""
    if response.finish_reason == "length":
        return Parsed(None, "truncated", "the generator stopped at max_tokens")
    if not text.strip():
        return Parsed(None, "empty_response")
    blocks = fenced_blocks(text)
    if not blocks:
        return Parsed(None, "no_code_block")
    chosen = next((b for b in blocks if names_language(b.info, lang)), blocks[0])
    detail = f"{len(blocks)} blocks, kept the {'one in ' + lang if chosen.info else 'first'}"
    if not chosen.closed:
        return Parsed(None, "truncated", "a code block opens and never closes", len(blocks))
    if not chosen.body.strip():
        return Parsed(None, "empty_code_block", blocks=len(blocks))
    code = chosen.body.strip("\n") + "\n"
    syntax, problem = check_syntax(code, lang)
    if syntax == "error":
        return Parsed(None, "syntax_error", problem, len(blocks), syntax)
    return Parsed(code, None, detail if len(blocks) > 1 else "", len(blocks), syntax)


def check_syntax(code: str, lang: str) -> tuple[str, str]:
    """("ok" | "error" | "unchecked", what was wrong). Python is parsed, never executed."""
    if lang != "python":
        return "unchecked", ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
    except SyntaxError as exc:
        return "error", f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return "error", type(exc).__name__
    return "ok", ""
