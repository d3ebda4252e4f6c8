"""Local processes as flow steps: how developer-tool credentials (Azure CLI, Azure Developer CLI,
Azure PowerShell) ask a driver to run a tool.

A flow yields :class:`RunProcess` and receives a :class:`ProcessResult`; when the process cannot be
started or does not finish within ``timeout`` seconds the driver throws :class:`ProcessError` into
the flow at that ``yield`` (the child is killed first). The drivers (:mod:`protocol.drivers`) are
the only code that spawns: sync with :mod:`subprocess`, async with
``asyncio.create_subprocess_exec``. Never through a shell: ``argv[0]`` is an absolute path resolved
by the caller and every argument is passed as one argv entry.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO

from .errors import ProtocolError

__all__ = ["ProcessError", "ProcessResult", "RunProcess", "run_process", "run_process_async"]


@dataclass(frozen=True, slots=True)
class RunProcess:
    """Run ``argv`` in ``cwd`` with ``env`` (the whole environment), stdin closed, for at most
    ``timeout`` seconds; stdout and stderr are captured as UTF-8 text."""

    argv: tuple[str, ...]
    cwd: str
    timeout: float
    env: Mapping[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """What a finished process left: its exit code and its output."""

    returncode: int
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)


class ProcessError(ProtocolError):
    """The process could not be started, or was killed after its timeout.

    Attributes:
        timed_out: the process ran past its timeout (it was killed).
    """

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def _decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def _timed_out(step: RunProcess) -> ProcessError:
    return ProcessError(f"{step.argv[0]} did not finish within {step.timeout:g} s", timed_out=True)


_POSIX = os.name == "posix"


def _kill_tree(pid: int) -> None:
    """Kill the child and everything it started (its own session on POSIX): tools such as the
    Linux ``az`` are shell scripts whose real work runs in a grandchild."""
    if _POSIX:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


#: Output beyond this is not read (a token response is a few kilobytes).
MAX_OUTPUT = 1 << 20


def _read(file: IO[bytes]) -> str:
    file.seek(0)
    return _decode(file.read(MAX_OUTPUT))


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    """``process.wait(timeout)``, woken the moment the process exits where the OS can say so (a
    pidfd on Linux); ``Popen.wait`` with a timeout polls with growing sleeps, which adds
    milliseconds to every run."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            descriptor = pidfd_open(process.pid)
        except OSError:
            pass  # the kernel has no pidfd, or the process is gone: Popen.wait copes
        else:
            try:
                ready, _, _ = select.select([descriptor], [], [], timeout)
            finally:
                os.close(descriptor)
            if not ready:
                raise subprocess.TimeoutExpired(process.args, timeout)
            return process.wait()
    return process.wait(timeout=timeout)


def run_process(step: RunProcess) -> ProcessResult:
    """Run ``step`` synchronously (the sync driver's implementation).

    Output goes to unnamed temporary files, not pipes: the run ends when the process exits, even if
    something it started in the background keeps its output handles open.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(  # noqa: S603 - argv list, no shell, executable resolved by the caller
                list(step.argv),
                cwd=step.cwd,
                env=None if step.env is None else dict(step.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=_POSIX,
            )
        except OSError as exc:
            raise ProcessError(f"Failed to execute '{step.argv[0]}': {exc.strerror or exc}") from exc
        try:
            returncode = _wait(process, step.timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_tree(process.pid)
            process.kill()
            process.wait()
            raise _timed_out(step) from exc
        except BaseException:
            _kill_tree(process.pid)
            process.kill()
            process.wait()
            raise
        return ProcessResult(returncode, _read(out), _read(err))


async def run_process_async(step: RunProcess) -> ProcessResult:
    """Run ``step`` without blocking the event loop (the async driver's implementation)."""
    import asyncio

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = await asyncio.create_subprocess_exec(
                *step.argv,
                cwd=step.cwd,
                env=None if step.env is None else dict(step.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=_POSIX,
            )
        except OSError as exc:
            raise ProcessError(f"Failed to execute '{step.argv[0]}': {exc.strerror or exc}") from exc
        try:
            returncode = await asyncio.wait_for(process.wait(), step.timeout)
        except asyncio.TimeoutError as exc:
            _kill_tree(process.pid)
            if process.returncode is None:
                process.kill()
            await process.wait()
            raise _timed_out(step) from exc
        except BaseException:  # cancelled: do not leave the child running
            _kill_tree(process.pid)
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        return ProcessResult(returncode, _read(out), _read(err))
