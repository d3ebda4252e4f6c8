"""Local processes run by the drivers: output, exit codes, start failures and timeouts that kill the
whole process tree (a wrapper script's grandchild too)."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from protocol.process import ProcessError, ProcessResult, RunProcess, run_process, run_process_async

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the stub tools are POSIX shell scripts")


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _run(mode: str, step: RunProcess) -> ProcessResult:
    return run_process(step) if mode == "sync" else asyncio.run(run_process_async(step))


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_output_and_exit_code(mode: str, tmp_path: Path) -> None:
    tool = _script(tmp_path, "tool", 'echo "out $1"; echo err >&2; pwd; exit 3\n')
    result = _run(mode, RunProcess((tool, "a b"), "/bin", 5.0))
    assert result.returncode == 3
    assert result.stdout.splitlines()[0] == "out a b"
    assert os.path.realpath(result.stdout.splitlines()[1]) == os.path.realpath("/bin")
    assert result.stderr == "err\n"
    assert "out" not in repr(result)  # output may hold tokens


def test_stdin_is_closed_and_env_is_exactly_the_given_one(mode: str, tmp_path: Path) -> None:
    tool = _script(tmp_path, "tool", 'read line; echo "read=$? var=$ONLY"\n')
    result = _run(mode, RunProcess((tool,), "/bin", 5.0, env={"ONLY": "yes", "PATH": "/bin:/usr/bin"}))
    assert result.stdout.strip() == "read=1 var=yes"


def test_missing_executable_is_a_process_error(mode: str, tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="Failed to execute") as info:
        _run(mode, RunProcess((str(tmp_path / "absent"),), "/bin", 5.0))
    assert info.value.timed_out is False


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether process ``pid`` has ended (polled for at most ``within`` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_timeout_kills_the_wrapper_and_its_grandchild(mode: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    tool = _script(tmp_path, "wrapper", f"sh -c 'echo $$ > {pid_file}; exec sleep 60'\necho never\n")
    with pytest.raises(ProcessError, match=r"did not finish within 0\.5 s") as info:
        _run(mode, RunProcess((tool,), "/bin", 0.5))
    assert info.value.timed_out is True
    assert _gone(int(pid_file.read_text()))  # killed with the wrapper, not left to run 60 s


def test_a_detached_background_process_does_not_hold_the_run(mode: str, tmp_path: Path) -> None:
    # A tool that starts a daemon (its own session, our output handles inherited) and exits at once:
    # the run is over when the tool exits, and is not reported as a timeout.
    pid_file = tmp_path / "daemon.pid"
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        "import subprocess, sys\n"
        "daemon = 'import os, time; open(sys.argv[1], \"w\").write(str(os.getpid())); time.sleep(60)'\n"
        "argv = [sys.executable, '-c', 'import sys; ' + daemon, sys.argv[1]]\n"
        "subprocess.Popen(argv, start_new_session=True)\n"
    )
    tool = _script(
        tmp_path, "tool", f'{sys.executable} {launcher} {pid_file}\necho \'{{"accessToken": "x"}}\'\n'
    )
    result = _run(mode, RunProcess((tool,), "/bin", 30.0))
    assert result.returncode == 0
    assert result.stdout.strip() == '{"accessToken": "x"}'
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(int(pid_file.read_text()), 9)  # our own daemon, by pid


def test_python_child_runs(mode: str) -> None:
    result = _run(mode, RunProcess((sys.executable, "-c", "print('hi')"), "/", 10.0))
    assert (result.returncode, result.stdout) == (0, "hi\n")
