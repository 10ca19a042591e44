"""Snippets and corrupted copies of good code: the annotator's hard examples.

Random corpus files alone teach an annotator topic and language, not quality: in a corpus of
library code most random files are decent. Two additions make it learn what phase 2 wants:
- **snippets**: the documented functions and methods of positive files, as units of their own
  (the scorer reads 128-token windows; a window of a long file is mostly not its docstrings);
- **corrupted copies** of positives (files and snippets), each made by one text operator that
  keeps the topic, language and vocabulary and destroys one aspect of quality:
  `shuffled` (line order), `truncated` (the first third), `stripped` (comments and docstrings
  gone), `commented_out` (every line behind the language's comment marker), `squeezed`
  (indentation and blank lines gone), `renamed` (Python: comments and docstrings gone, every
  argument and local name one or two letters); and for functions, whose docstring alone must
  not earn a high score, `stubbed` (signature and docstring over a one-line body) and
  `body_shuffled` (signature and docstring over the body's lines in random order).
The operators are language-agnostic line edits (Python docstrings are found with `ast`); each
is deterministic for a `random.Random`.
"""

from __future__ import annotations

import ast
import io
import random
import string
import textwrap
import tokenize
from collections.abc import Iterator

FILE_CORRUPTIONS = ("shuffled", "truncated", "stripped", "commented_out", "squeezed", "renamed")
FUNCTION_CORRUPTIONS = (*FILE_CORRUPTIONS, "stubbed", "body_shuffled")
CORRUPTIONS = FUNCTION_CORRUPTIONS
STUB_BODIES = ("pass", "...", "raise NotImplementedError", "return None", "# TODO")
LINE_COMMENT = {
    "python": "#", "shell": "#", "ruby": "#", "perl": "#", "r": "#", "yaml": "#", "toml": "#",
    "makefile": "#", "cmake": "#", "dockerfile": "#", "sql": "--", "lua": "--", "haskell": "--",
    "fortran": "!", "tex": "%", "matlab": "%", "erlang": "%", "lisp": ";", "batchfile": "REM ",
}  # fmt: skip
MIN_SNIPPET_LINES = 6
MAX_SNIPPET_LINES = 80


def comment_marker(lang: str) -> str:
    """The line-comment marker of `lang`; C-family `//` for anything not listed."""
    return LINE_COMMENT.get(lang, "//")


def documented_snippets(text: str) -> Iterator[str]:
    """The functions and methods of a Python file that open a docstring, dedented, 6-80 lines."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return
    lines = text.splitlines()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if ast.get_docstring(node) is None or node.end_lineno is None:
            continue
        start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
        body = lines[start : node.end_lineno]
        if MIN_SNIPPET_LINES <= len(body) <= MAX_SNIPPET_LINES:
            yield textwrap.dedent("\n".join(body))


def corrupt(text: str, kind: str, lang: str, rng: random.Random) -> str:
    """`text` with one aspect of quality destroyed (see the module docstring)."""
    lines = text.splitlines()
    if kind == "shuffled":
        rng.shuffle(lines)
        return "\n".join(lines)
    if kind == "truncated":
        return "\n".join(lines[: max(2, len(lines) // 3)])
    if kind == "stripped":
        return strip_comments(text, lang)
    if kind == "commented_out":
        marker = comment_marker(lang)
        return "\n".join(f"{marker} {line}".rstrip() for line in lines)
    if kind == "squeezed":
        return "\n".join(line.strip() for line in lines if line.strip())
    if kind == "renamed":
        return renamed(text) if lang == "python" else strip_comments(text, lang)
    if kind in ("stubbed", "body_shuffled"):
        head = lines[: _body_start(text)]
        body = lines[len(head) :]
        if not head or not body:
            return "\n".join(lines[: max(2, len(lines) // 3)])
        if kind == "stubbed":
            indent = body[0][: len(body[0]) - len(body[0].lstrip())] or "    "
            return "\n".join([*head, indent + rng.choice(STUB_BODIES)])
        rng.shuffle(body)
        return "\n".join(head + body)
    raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")


def strip_comments(text: str, lang: str) -> str:
    """Comments (and Python docstrings) removed; blank lines they leave are dropped."""
    if lang == "python":
        stripped = _strip_python(text)
        if stripped is not None:
            return stripped
    marker = comment_marker(lang)
    starts = (marker, "/*", "*", "*/") if marker == "//" else (marker,)
    return "\n".join(
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(starts)
    )


def _strip_python(text: str) -> str | None:
    """Python without comments and docstrings, or None when it does not tokenize and parse."""
    try:
        tree = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, ValueError, RecursionError, tokenize.TokenError, IndentationError):
        return None
    docstring_lines: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstring_lines.update(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
    comments = {t.start[0]: t.start[1] for t in tokens if t.type == tokenize.COMMENT}
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number in docstring_lines:
            continue
        if number in comments:
            line = line[: comments[number]].rstrip()
        if line.strip():
            out.append(line)
    return "\n".join(out)


def _body_start(text: str) -> int:
    """Lines of the first function's decorators, signature and docstring (0 if none)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return 0
    func = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None
    )
    if func is None or ast.get_docstring(func) is None or len(func.body) < 2:
        return 0
    return func.body[1].lineno - 1


def renamed(text: str) -> str:
    """Python without comments and docstrings, its arguments and assigned names one or two
    letters (`a`, `b`, ..., `aa`, ...); the text unchanged when it does not parse."""
    try:
        tree = ast.parse(strip_comments(text, "python"))
    except (SyntaxError, ValueError, RecursionError):
        return text
    local = [a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)]
    local += [
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    ]
    letters = list(string.ascii_lowercase) + [
        a + b for a in string.ascii_lowercase for b in "abcdefghij"
    ]
    names = dict(zip(dict.fromkeys(local), letters, strict=False))  # 286 names at most
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in names:
            node.id = names[node.id]
        elif isinstance(node, ast.arg) and node.arg in names:
            node.arg, node.annotation = names[node.arg], None
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.returns = None
    try:
        return ast.unparse(tree)
    except (ValueError, RecursionError):
        return text
