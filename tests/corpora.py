"""Corpora the tests build: hostile files with the reason each must get, and config writers."""

from __future__ import annotations

import os
import re
from pathlib import Path

# Expected ingest reason for each hostile file the builder writes (None = kept).
HOSTILE_EXPECTED: dict[str, str | None] = {
    "good/main.py": None,
    "good/src/util.c": None,
    "good/odd name é.js": None,
    "good/bom.py": None,
    "good/utf16.py": None,
    "good/latin1.py": None,
    "good/bad\\xff name.py": None,
    "good/README": "unknown_language",
    "good/blob.bin": "unknown_language",
    "bad/binary.py": "binary",
    "bad/undecodable.py": "undecodable",
    "bad/empty.py": "empty",
    "bad/huge.py": "too_large",
    "bad/link_inside.py": "symlink",
    "bad/link_outside.py": "symlink_outside_root",
    "bad/link_loop_a.py": "broken_symlink",
    "bad/link_loop_b.py": "broken_symlink",
    "bad/link_missing.py": "broken_symlink",
    "bad/dir_loop": "symlink",
    "bad/.git/config": "vcs_metadata",
    "bad/.git/objects/ab/cdef": "vcs_metadata",
    "./loose.py": None,
}
MAX_FILE_BYTES = 4096


def build_hostile_tree(root: Path, outside: Path) -> dict[str, str | None]:
    """A local_dir source with two repositories of hostile files; returns the expectations."""
    good, bad = root / "good", root / "bad"
    (good / "src").mkdir(parents=True)
    (bad / ".git" / "objects" / "ab").mkdir(parents=True)
    (good / "main.py").write_text("def main():\n    return 42\n")
    (good / "src" / "util.c").write_text("int add(int a, int b) { return a + b; }\n")
    (good / "odd name é.js").write_text("export const x = 1;\n")
    (good / "bom.py").write_bytes(b"\xef\xbb\xbfprint('bom')\n")
    (good / "utf16.py").write_bytes("print('utf16')\n".encode("utf-16"))
    (good / "latin1.py").write_bytes("# caf\xe9 cr\xe8me\nx = 1\n".encode("latin-1"))
    (good / os.fsdecode(b"bad\xff name.py")).write_text("y = 2\n")  # not UTF-8
    (good / "README").write_text("no extension\n")
    (good / "blob.bin").write_bytes(os.urandom(256))
    (bad / "binary.py").write_bytes(b"import os\n\x00\x01\x02")
    (bad / "undecodable.py").write_bytes(b"x = '\x81\x8d\x8f\x90\x9d'\n")
    (bad / "empty.py").write_bytes(b"")
    (bad / "huge.py").write_text("x = 1\n" * (MAX_FILE_BYTES // 4))
    (bad / "link_inside.py").symlink_to("binary.py")
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.py").write_text("SECRET = 1\n")
    (bad / "link_outside.py").symlink_to(outside / "secret.py")
    (bad / "link_loop_a.py").symlink_to("link_loop_b.py")
    (bad / "link_loop_b.py").symlink_to("link_loop_a.py")
    (bad / "link_missing.py").symlink_to("nowhere.py")
    (bad / "dir_loop").symlink_to(".", target_is_directory=True)
    (bad / ".git" / "config").write_text("[core]\n")
    (bad / ".git" / "objects" / "ab" / "cdef").write_bytes(b"x\x9c\x00binary")
    (root / "loose.py").write_text("LOOSE = True\n")
    return dict(HOSTILE_EXPECTED)


def count_entries(root: Path) -> int:
    """Files and links on disk below `root` (links are recorded, never followed)."""
    return sum(
        len(files) + sum(1 for d in dirs if (Path(top) / d).is_symlink())
        for top, dirs, files in os.walk(root)
    )


# Phase 3 sends no prompt unless a test asks for it (tests/phase3 do): generation is tested there.
NO_SYNTHETIC = "max_prompts = 0"
# The first HumanEval tasks, short greedy completions in the test's process: seconds, not the
# ~20 s of a vLLM engine start per checkpoint (the vllm path has tests of its own).
TINY_EVALUATION = 'backend = "transformers"\nmax_tasks = 6\nmax_new_tokens = 24'


def write_config(
    path: Path,
    data_dir: Path,
    sources_toml: str,
    ingest_toml: str = "",
    synthetic_toml: str = NO_SYNTHETIC,
    evaluation_toml: str = TINY_EVALUATION,
) -> Path:
    path.write_text(
        f'[paths]\ndata_dir = "{data_dir.as_posix()}"\n'
        + (f"[ingest]\n{ingest_toml}\n" if ingest_toml else "")
        + sources_toml
        + f"\n[synthetic]\n{synthetic_toml}\n"
        + f"\n[evaluation]\n{evaluation_toml}\n"
    )
    return path


def local_dir_source(name: str, folder: Path) -> str:
    return f'[[sources]]\nname = "{name}"\nkind = "local_dir"\npath = "{folder.as_posix()}"\n'


def disguised_solution(problem: dict, docstring: str) -> str:
    """A HumanEval task's signature and solution under `docstring` instead of its own, lines
    tab-indented with blank lines between them: only the token stream still matches."""
    code = re.sub(r'""".*?"""', docstring, problem["prompt"], flags=re.S)
    lines = (code + problem["canonical_solution"]).split("\n")
    return "\n\n".join(re.sub(r"^(    )+", lambda m: "\t" * (len(m[0]) // 4), x) for x in lines)
