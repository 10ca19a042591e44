"""Smoke test of `snowcoder ui`: it serves the asset graph and stops with all its children.

The UI is started the way a background shell job starts it, with SIGINT and SIGTERM ignored
in the inherited signal dispositions; a SIGINT sent to the snowcoder process alone must still
stop `dagster dev` and every process it started (webserver, daemon, code server).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 120.0  # the UI answers in 5-9 s once warm; a cold first start is slower
LOADED_GRACE = 20.0  # after the first answer, how long the code location may take to show up
EXIT_TIMEOUT = 60.0
SETTLE_TIMEOUT = 5.0  # for SIGKILLed processes to finish dying once snowcoder has exited
ASSET_NODES_QUERY = "{ assetNodes { assetKey { path } } }"

# A process, told apart from a later one reusing its pid by its start time.
Proc = tuple[int, int]


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, starttime) from /proc/<pid>/stat, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces or parentheses itself.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _all_stats() -> dict[int, tuple[str, int, int, int]]:
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    return stats


def _descendants(root: int) -> set[Proc]:
    """Every live process below `root`, following ppid links."""
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, (_state, ppid, _pgid, _start) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found: set[Proc] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.add((pid, stats[pid][3]))
        todo.extend(children.get(pid, []))
    return found


def _alive(proc: Proc) -> bool:
    """Still running: same pid and start time, and not a zombie."""
    stat = _stat(proc[0])
    return stat is not None and stat[3] == proc[1] and stat[0] != "Z"


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    return [pid for pid, st in _all_stats().items() if st[2] == pgid and st[0] != "Z"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _asset_keys(port: int) -> list[str] | None:
    """Asset keys the UI's GraphQL endpoint lists, or None while it does not answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": ASSET_NODES_QUERY}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.loads(response.read())
    except (OSError, ValueError):  # refused, reset, timed out, HTTP error, not JSON yet
        return None
    nodes = (body.get("data") or {}).get("assetNodes")
    if nodes is None:
        return None
    return ["/".join(node["assetKey"]["path"]) for node in nodes]


def _ignore_stop_signals() -> None:
    """What a background shell job inherits: SIGINT and SIGTERM ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _snowcoder_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("snowcoder")
    program = [str(script)] if script.exists() else [sys.executable, "-m", "snowcoder_assets.cli"]
    return [*program, "ui", "--port", str(port)]


def _write_config(tmp_path: Path) -> Path:
    repo = tmp_path / "sources" / "repo1"
    repo.mkdir(parents=True)
    (repo / "hello.py").write_text('def hello():\n    return "hello"\n')
    (repo / "util.py").write_text("def add(a, b):\n    return a + b\n")
    config = tmp_path / "snowcoder.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[[sources]]\nname = "mini"\nkind = "local_dir"\npath = "{tmp_path / "sources"}"\n'
    )
    return config


def _log_tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


@pytest.mark.slow
def test_ui_serves_assets_and_stops_with_all_children(tmp_path: Path) -> None:
    config = _write_config(tmp_path)  # no DAGSTER_HOME: the instance is <data_dir>/dagster_home
    temp_dir = tmp_path / "tmp"  # dagster dev's temporary workspace file goes here, not /tmp
    temp_dir.mkdir()
    env = {
        **os.environ,
        "SNOWCODER_CONFIG": str(config),
        "TMPDIR": str(temp_dir),
    }
    env.pop("DAGSTER_HOME", None)
    port = _free_port()
    log = tmp_path / "ui.log"

    descendants: set[Proc] = set()
    dev_pgids: set[int] = set()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            _snowcoder_command(port),
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_ignore_stop_signals,
        )

    def watch() -> None:
        """Record the process tree below snowcoder, and the group(s) its children lead."""
        if process.poll() is not None:
            return
        tree = _descendants(process.pid)
        descendants.update(tree)
        for pid, _start in tree:
            stat = _stat(pid)
            if stat is not None and stat[1] == process.pid and stat[2] == pid:
                dev_pgids.add(pid)  # `dagster dev`: a child of snowcoder leading its own group

    try:
        start = time.monotonic()
        deadline = start + READY_TIMEOUT
        first_answer: float | None = None
        keys: list[str] | None = None
        while time.monotonic() < deadline:
            watch()
            assert process.poll() is None, (
                f"snowcoder ui exited early ({process.returncode}):\n{_log_tail(log)}"
            )
            keys = _asset_keys(port)
            if keys is not None:
                first_answer = first_answer or time.monotonic()
                if "raw_files" in keys or time.monotonic() - first_answer > LOADED_GRACE:
                    break
            time.sleep(0.5)
        assert keys is not None, f"UI did not answer in {READY_TIMEOUT:.0f}s:\n{_log_tail(log)}"
        assert "raw_files" in keys, f"asset keys {keys}:\n{_log_tail(log)}"

        watch()
        assert dev_pgids, "no `dagster dev` process group found below snowcoder"
        assert len(descendants) >= 3, f"expected dagster dev, webserver, daemon: {descendants}"

        os.kill(process.pid, signal.SIGINT)  # the snowcoder process only, not its group
        exit_deadline = time.monotonic() + EXIT_TIMEOUT
        while process.poll() is None and time.monotonic() < exit_deadline:
            watch()
            time.sleep(0.2)
        assert process.poll() is not None, (
            f"snowcoder ui still running {EXIT_TIMEOUT:.0f}s after SIGINT:\n{_log_tail(log)}"
        )

        settle = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < settle:
            left = [pid for pid, start_time in descendants if _alive((pid, start_time))]
            grouped = [pid for pgid in dev_pgids for pid in _group_members(pgid)]
            if not left and not grouped:
                break
            time.sleep(0.2)
        assert not left, f"descendants still running after exit: {left}\n{_log_tail(log)}"
        assert not grouped, f"dagster dev group still has processes: {grouped}"
        # Stopped by its own shutdown (webserver and daemon told to exit), not by the SIGKILL
        # that `snowcoder ui` falls back on: proof the forwarded SIGINT reached `dagster dev`.
        assert "Dagster services shut down." in _log_tail(log), _log_tail(log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=10)
        for pgid in dev_pgids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        for proc in descendants:
            if _alive(proc):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(proc[0], signal.SIGKILL)
