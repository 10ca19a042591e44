"""`snowcoder ui`: `dagster dev` on the configuration's instance, stopped cleanly with its children.

The caller has pointed DAGSTER_HOME at the configuration's instance (`<data_dir>/dagster_home`
unless DAGSTER_HOME was set) and SNOWCODER_CONFIG at its file, so the UI, its daemon (sensors,
automation, the run queue, backfills) and every run it launches see the same data.

`dagster dev` started from a shell that ignores SIGINT/SIGTERM (a background job) inherits the
ignored signals and then cannot be stopped, leaving its webserver, daemon and code server
orphaned. So it runs with default signal handling in its own process group; a Ctrl-C or
SIGTERM here is forwarded to the whole group, and the group is killed if it does not exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from snowcoder_assets.config import project_root

GRACE_SECONDS = 20.0


def _restore_default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def dagster_dev_command(host: str, port: int) -> list[str]:
    dagster = Path(sys.executable).with_name("dagster")
    program = [str(dagster)] if dagster.exists() else [sys.executable, "-m", "dagster"]
    return [*program, "dev", "-m", "snowcoder_assets.definitions", "-h", host, "-p", str(port)]


def run_ui(host: str = "127.0.0.1", port: int = 3000) -> int:
    """Run the UI until Ctrl-C, SIGTERM or SIGHUP; return dagster dev's exit status."""
    stopping: dict[str, int | None] = {"signal": None, "pgid": None}

    def forward(signum: int, _frame: object) -> None:
        stopping["signal"] = signum
        if stopping["pgid"] is not None:
            _signal_group(stopping["pgid"], signal.SIGINT)

    # Handlers first: a signal that arrives while the child starts must still reach it.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in stop_signals}
    process = None
    try:
        process = subprocess.Popen(
            dagster_dev_command(host, port),
            cwd=project_root(),
            start_new_session=True,  # its own process group, signalled as a whole
            preexec_fn=_restore_default_signals,
        )
        stopping["pgid"] = process.pid
        if stopping["signal"] is not None:
            _signal_group(process.pid, signal.SIGINT)
        print(
            f"Dagster UI: http://{host}:{port}  (DAGSTER_HOME={os.environ['DAGSTER_HOME']}; "
            "Ctrl-C stops it)",
            flush=True,
        )
        while process.poll() is None:
            time.sleep(0.2)
            if stopping["signal"] is not None:
                _wait_then_kill(process)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)  # whatever is left of the group
    return process.returncode or 0


def _wait_then_kill(process: subprocess.Popen) -> None:
    deadline = time.monotonic() + GRACE_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
