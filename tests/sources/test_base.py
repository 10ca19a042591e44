"""Reading hostile bytes: every case becomes text or a named reason, never an exception."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snowcoder_assets.sources import base
from snowcoder_assets.sources.base import decode_text, read_file_record, walk_files


@pytest.mark.parametrize(
    ("data", "text", "encoding", "reason"),
    [
        (b"print(1)\n", "print(1)\n", "utf-8", ""),
        (b"\xef\xbb\xbfx = 1\n", "x = 1\n", "utf-8-sig", ""),
        ("é = 1\n".encode("utf-16"), "é = 1\n", "utf-16", ""),
        ("# café\n".encode("latin-1"), "# café\n", "cp1252", ""),
        (b"abc\x00def", None, None, "binary"),
        (b"\x81\x8d\x8f\x90\x9d", None, None, "undecodable"),
        (b"ok \xe9 \x1b[0m", None, None, "undecodable"),  # fallback text with control chars
    ],
)
def test_decode_text_cases(data: bytes, text: str | None, encoding: str | None, reason: str):
    assert decode_text(data, "cp1252") == (text, encoding, reason)


def _read(root: Path, name: str, max_bytes: int = 1000) -> base.RawRecord:
    return read_file_record(root, root / name, "repo", name, max_bytes, "cp1252")


def test_read_file_record_reads_text_and_reports_size(tmp_path: Path):
    (tmp_path / "a.py").write_text("x = 1\n")
    record = _read(tmp_path, "a.py")
    assert (record.text, record.reason, record.num_bytes) == ("x = 1\n", None, 6)


def test_read_file_record_too_large_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "big.py").write_text("x" * 2000)
    monkeypatch.setattr(os, "open", lambda *a, **k: pytest.fail("a too-large file was opened"))
    record = _read(tmp_path, "big.py")
    assert (record.reason, record.num_bytes, record.text) == ("too_large", 2000, None)


def test_read_file_record_empty(tmp_path: Path):
    (tmp_path / "e.py").write_bytes(b"")
    assert _read(tmp_path, "e.py").reason == "empty"


def test_read_file_record_unreadable_reports_errno(tmp_path: Path, monkeypatch):
    (tmp_path / "locked.py").write_text("x = 1\n")

    def deny(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", deny)
    record = _read(tmp_path, "locked.py")
    assert record.reason == "unreadable"
    assert record.detail.startswith("EACCES")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_read_file_record_unreadable_by_mode(tmp_path: Path):
    target = tmp_path / "locked.py"
    target.write_text("x = 1\n")
    target.chmod(0)
    assert _read(tmp_path, "locked.py").reason == "unreadable"


def test_read_file_record_links_are_never_followed(tmp_path: Path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.py").write_text("SECRET = 1\n")
    (root / "real.py").write_text("x = 1\n")
    (root / "inside.py").symlink_to("real.py")
    (root / "escape.py").symlink_to(outside / "secret.py")
    (root / "escape_rel.py").symlink_to("../outside/secret.py")
    (root / "loop_a.py").symlink_to("loop_b.py")
    (root / "loop_b.py").symlink_to("loop_a.py")
    (root / "gone.py").symlink_to("missing.py")
    reasons = {
        n: _read(root, n).reason
        for n in ["inside.py", "escape.py", "escape_rel.py", "loop_a.py", "gone.py"]
    }
    assert reasons == {
        "inside.py": "symlink",
        "escape.py": "symlink_outside_root",
        "escape_rel.py": "symlink_outside_root",
        "loop_a.py": "broken_symlink",
        "gone.py": "broken_symlink",
    }
    assert all(_read(root, n).text is None for n in reasons)


def test_read_file_record_fifo_is_recorded_without_blocking(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.py")
    record = _read(tmp_path, "pipe.py")
    assert (record.reason, record.detail) == ("not_regular_file", "fifo")


def test_walk_files_does_not_descend_links_and_terminates_on_loops(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.py").write_text("x\n")
    (tmp_path / "a" / "loop").symlink_to("..", target_is_directory=True)
    (tmp_path / "a" / ".git").mkdir()
    (tmp_path / "a" / ".git" / "HEAD").write_text("ref\n")
    entries = [(Path(p).relative_to(tmp_path).as_posix(), vcs) for p, vcs in walk_files(tmp_path)]
    assert entries == [("a/loop", False), ("a/.git/HEAD", True), ("a/b/f.py", False)]
