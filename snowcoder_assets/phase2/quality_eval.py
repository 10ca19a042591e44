"""A code-quality evaluation set the project owns and never trains on (issue 14's yardstick).

Built from installed Python packages that are not in the configured corpus, so no snippet
shares a repository with the annotator's training set. Positives are what phase 2 wants to
repeat: documented (a docstring of two or more lines), typed or example-carrying, self-contained
top-level functions of 8-60 lines. Negatives are what pretraining data is full of, each made
from *other* real functions or files of the same packages, so topic and language cannot tell
the classes apart, only quality can:
- `one_letter`: a function with its docstring and comments gone and every local name one letter;
- `minified`: the same, squeezed to one-space indents with blank lines removed;
- `commented_out`: a whole function behind `# `;
- `scrambled`: a function's lines in a seeded random order;
- `truncated`: the first third of a function, cut mid-body;
- `documented_stub`: a real signature and docstring over `raise NotImplementedError`;
- `documented_garbled`: a real signature and docstring over the body's lines shuffled;
- `data_dump`: a literal table of numbers and strings in the package's vocabulary;
- `generated`: protobuf-style generated descriptors, with the compiler's header;
- `boilerplate`: a package `__init__.py` that only re-exports names.
Deterministic for a seed; every row carries `package`, `path` and `kind`.
"""

from __future__ import annotations

import ast
import importlib.util
import random
import re
import string
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Not rich, pygments or packaging: pip and setuptools vendor them, and both are in the demo
# corpus. `drop_overlapping` still removes any snippet the training set contains.
EVAL_PACKAGES = (
    "sklearn", "scipy", "networkx", "sympy", "pandas", "sqlalchemy", "httpx", "starlette",
    "jsonschema", "attr", "filelock", "dateutil", "docstring_parser", "markdown_it", "alembic",
)  # fmt: skip
NEGATIVE_KINDS = (
    "one_letter", "minified", "commented_out", "scrambled", "truncated", "documented_stub",
    "documented_garbled", "data_dump", "generated", "boilerplate",
)  # fmt: skip


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def functions(
    folder: Path, rng: random.Random, max_files: int
) -> Iterator[tuple[str, ast.FunctionDef, str]]:
    """(path, node, source) of the public top-level functions of 8-60 lines in `max_files`
    files drawn at random (parsing all of sympy or pandas takes a minute); tests skipped."""
    paths = [p for p in sorted(folder.rglob("*.py")) if "test" not in p.as_posix().lower()]
    rng.shuffle(paths)
    for path in paths[:max_files]:
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = source.splitlines()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                text = _segment(lines, node)
                if text and 8 <= text.count("\n") + 1 <= 60:
                    yield path.relative_to(folder.parent).as_posix(), node, text


def _segment(lines: list[str], node: ast.FunctionDef) -> str:
    """The node's source, as `ast.get_source_segment` gives it, from lines split once (that
    function splits the whole file again for every node: quadratic on big modules)."""
    if node.end_lineno is None or node.end_col_offset is None:
        return ""
    picked = lines[node.lineno - 1 : node.end_lineno]
    last = picked[-1].encode()[: node.end_col_offset].decode(errors="ignore")
    first_offset = node.col_offset if len(picked) > 1 else 0
    picked = [*picked[:-1], last]
    picked[0] = picked[0].encode()[first_offset:].decode(errors="ignore")
    return "\n".join(picked)


def is_positive(node: ast.FunctionDef) -> bool:
    doc = ast.get_docstring(node) or ""
    typed = node.returns is not None or any(a.annotation for a in node.args.args)
    return doc.count("\n") >= 1 and (typed or "Examples" in doc or ">>>" in doc)


def one_letter(node: ast.FunctionDef) -> str:
    """Docstring and comments gone, arguments and assigned names renamed to single letters."""
    tree = ast.parse(ast.unparse(node))
    func = tree.body[0]
    if ast.get_docstring(func) is not None and len(func.body) > 1:
        func.body = func.body[1:]
    local = [a.arg for a in func.args.args + func.args.kwonlyargs]
    local += [
        n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    ]
    letters = iter(string.ascii_lowercase * 4)
    names = {name: next(letters) for name in dict.fromkeys(local)}
    for n in ast.walk(func):
        if isinstance(n, ast.Name) and n.id in names:
            n.id = names[n.id]
        elif isinstance(n, ast.arg) and n.arg in names:
            n.arg, n.annotation = names[n.arg], None
    func.returns = None
    return ast.unparse(tree)


def minified(node: ast.FunctionDef) -> str:
    lines = one_letter(node).splitlines()
    return "\n".join(
        " " * ((len(x) - len(x.lstrip())) // 4) + x.strip() for x in lines if x.strip()
    )


def corrupted(kind: str, node: ast.FunctionDef, text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    if kind == "one_letter":
        return one_letter(node)
    if kind == "minified":
        return minified(node)
    if kind == "commented_out":
        return "\n".join("# " + line for line in lines)
    if kind == "scrambled":
        rng.shuffle(lines)
        return "\n".join(lines)
    if kind == "truncated":
        return "\n".join(lines[: max(3, len(lines) // 3)])
    if kind in ("documented_stub", "documented_garbled"):
        head = lines[: _body_start(node, text)]
        body = lines[len(head) :]
        if kind == "documented_stub":
            return "\n".join([*head, "    raise NotImplementedError"])
        rng.shuffle(body)
        return "\n".join(head + body)
    words = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)}) or ["value"]
    if kind == "data_dump":
        rows = [
            f"    ({rng.randint(0, 99999)}, {rng.random():.6f}, {rng.choice(words)!r}),"
            for _ in range(40)
        ]
        return f"{words[0].upper()}_TABLE = [\n" + "\n".join(rows) + "\n]"
    fields = [
        f"    _descriptor.FieldDescriptor(name='{w}', full_name='pkg.{node.name}.{w}', index={i}, "
        f"number={i + 1}, type={rng.choice((5, 9, 12))}, cpp_type=1, label=1, "
        "has_default_value=False, default_value=None, message_type=None, enum_type=None),"
        for i, w in enumerate(words[:20])
    ]
    return (
        "# Generated by the protocol buffer compiler.  DO NOT EDIT!\n# source: pkg.proto\n"
        f"_{node.name.upper()} = _descriptor.Descriptor(\n  name='{node.name}', fields=[\n"
        + "\n".join(fields)
        + "\n  ])\n"
    )


def _body_start(node: ast.FunctionDef, text: str) -> int:
    """Lines of the signature and docstring: where the body starts, relative to the text."""
    first = (
        node.body[1] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body[0]
    )
    return first.lineno - node.lineno


def boilerplate_files(folder: Path) -> Iterator[tuple[str, str]]:
    """`__init__.py` files that only import and list names (at least 6 statements)."""
    for path in sorted(folder.rglob("__init__.py")):
        try:
            text = path.read_text(encoding="utf-8")
            body = ast.parse(text).body
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        plain = [
            s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        ]
        if len(plain) >= 6 and all(
            isinstance(s, ast.Import | ast.ImportFrom | ast.Assign) for s in plain
        ):
            yield path.relative_to(folder.parent).as_posix(), text


def build_eval_set(
    exclude: set[str], per_side: int = 200, seed: int = 0, max_files: int = 60
) -> list[dict[str, Any]]:
    """`per_side` positives and as many negatives (spread evenly over the kinds), from the
    packages of EVAL_PACKAGES that are installed and not in `exclude` (the corpus's); no
    package gives more than a sixth of the positives."""
    rng = random.Random(seed)
    positives, others, boilerplate = [], [], []
    cap = -(-per_side // 6)
    for name in EVAL_PACKAGES:
        folder = None if name in exclude else package_dir(name)
        if folder is None:
            continue
        mine = []
        for path, node, text in functions(folder, rng, max_files):
            row = {"package": name, "path": path, "node": node, "text": text}
            (mine if is_positive(node) else others).append(row)
        rng.shuffle(mine)
        positives += mine[:cap]
        others += mine[cap:]
        boilerplate += [
            {"package": name, "path": p, "text": t} for p, t in boilerplate_files(folder)
        ]
    rng.shuffle(positives)
    rng.shuffle(boilerplate)
    others += positives[per_side:]  # never a kept positive's own function
    rows = [_row(r, r["text"], 1, "documented") for r in positives[:per_side]]
    rng.shuffle(others)  # functions that are not positives, or positives left over
    documented = [r for r in others if ast.get_docstring(r["node"])]
    plain = [r for r in others if not ast.get_docstring(r["node"])] + documented
    per_kind = -(-per_side // len(NEGATIVE_KINDS))
    used: set[int] = set()
    for kind in NEGATIVE_KINDS:
        if kind == "boilerplate":
            rows += [_row(r, r["text"], 0, kind) for r in boilerplate[:per_kind]]
            continue
        pool = documented if kind.startswith("documented_") else plain
        picked = [r for r in pool if id(r) not in used][:per_kind]
        used |= {id(r) for r in picked}
        rows += [_row(r, corrupted(kind, r["node"], r["text"], rng), 0, kind) for r in picked]
    return rows


def _row(source: dict[str, Any], text: str, label: int, kind: str) -> dict[str, Any]:
    return {
        "text": text,
        "label": label,
        "kind": kind,
        "package": source["package"],
        "path": source["path"],
    }


def shingles(text: str, n: int = 5) -> set[int]:
    words = re.findall(r"\w+", text)
    return {zlib.crc32(" ".join(words[i : i + n]).encode()) for i in range(len(words) - n + 1)}


def drop_overlapping(
    rows: list[dict[str, Any]], training_texts: list[str], max_containment: float = 0.5
) -> list[dict[str, Any]]:
    """The rows less than `max_containment` of whose word 5-grams occur in the training texts
    (a function copied or vendored into a training file is contained in it, not similar)."""
    seen: set[int] = set()
    for text in training_texts:
        seen |= shingles(text)
    kept = []
    for row in rows:
        mine = shingles(row["text"])
        if not mine or len(mine & seen) / len(mine) < max_containment:
            kept.append(row)
    return kept
