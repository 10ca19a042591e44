"""The code location's gRPC server (`dagster api grpc`, as `dagster dev` starts it), started early.

`snowcoder materialize` starts it first thing, before it even imports Dagster, so the server
loads the definitions while the client loads Dagster, discovers and plans; a plan with nothing
to do kills it at once, a plan with runs connects to it (the instance's run launcher starts runs
through it). Everything the server and its runs print goes to
`<instance>/logs/snowcoder-code-server.log` and to Dagster's compute logs, not to the terminal.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from snowcoder_assets.config import CONFIG_ENV_VAR, SnowcoderConfig, project_root
from snowcoder_assets.orchestration.instance import instance_exists, use_instance

LOCATION = "snowcoder_assets.definitions"  # what `dagster dev -m <module>` names it
STARTUP_TIMEOUT_S = 120


class LaunchError(RuntimeError):
    """The instance refused a run, or the code location failed to load (Dagster's message)."""


class CodeServer:
    """The server of one client; the instance is the one DAGSTER_HOME names (set before)."""

    def __init__(self, home: Path) -> None:
        self.log_path = home / "logs" / "snowcoder-code-server.log"
        self._folder = tempfile.mkdtemp(prefix="snowcoder-grpc-")  # socket paths must be short
        self.socket = os.path.join(self._folder, "server.sock")
        self.args = [
            sys.executable, "-m", "dagster", "api", "grpc", "--lazy-load-user-code",
            "--socket", self.socket, "--log-level", "WARNING", "--inject-env-vars-from-instance",
            "--location-name", LOCATION, "-m", LOCATION, "-d", str(project_root()),
        ]  # fmt: skip
        with output_to(self.log_path):
            self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL)
        self._ready = False

    def target(self):
        """The workspace target of the running server (waits until it answers)."""
        from dagster._core.workspace.load_target import GrpcServerTarget
        from dagster._grpc.client import DagsterGrpcClient
        from dagster._grpc.server import wait_for_grpc_server

        if not self._ready:
            client = DagsterGrpcClient(socket=self.socket)
            wait_for_grpc_server(self.process, client, self.args, timeout=STARTUP_TIMEOUT_S)
            self._ready = True
        return GrpcServerTarget(
            host="localhost", port=None, socket=self.socket, location_name=LOCATION
        )

    def stop(self) -> None:
        """Stop the server at once: it holds no state, and the runs it started are processes of
        their own that have ended by now (a graceful gRPC shutdown would wait up to a minute)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> CodeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Processes started inside inherit stdout/stderr pointing at `path`, not the terminal:
    what runs print lands in this log and in Dagster's compute logs (the UI shows both)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                with contextlib.suppress(OSError):
                    os.close(fd)


def early_code_server(config: SnowcoderConfig) -> CodeServer | None:
    """Choose the configuration's instance and start its code server, so it loads while the
    caller imports Dagster, discovers and plans. Not on a brand-new instance: the server and
    this process would both create its storage at once."""
    os.environ[CONFIG_ENV_VAR] = str(config.config_file)  # the code server and runs read it
    home = use_instance(config)
    return CodeServer(home) if instance_exists(home) else None
