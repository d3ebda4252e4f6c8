"""Stand-ins for ``az``, ``azd`` and ``pwsh``: small Python scripts put on ``PATH``.

Each run appends what it saw (argv, working directory, the environment variables the credentials
set, whether stdin is ``/dev/null``, its pid) to ``<name>.runs`` and answers from ``<name>.reply``,
which a test may rewrite between calls: stdout, stderr, exit code, a delay, and files to append to
while running (a tool updating its own token cache).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

__all__ = ["RECORDED_VARIABLES", "StubTool"]

#: Environment variables the stubs record.
RECORDED_VARIABLES = ("AZURE_CORE_NO_COLOR", "NO_COLOR", "PATH")

_SCRIPT = """\
#!{python} -SE
import json, os, sys, time
here = {directory!r}
name = {name!r}
devnull = os.stat(os.devnull)
stdin = os.fstat(0)
record = {{
    "argv": sys.argv[1:],
    "executable": sys.argv[0],
    "cwd": os.getcwd(),
    "pid": os.getpid(),
    "env": {{key: os.environ.get(key) for key in {variables!r}}},
    "stdin_is_devnull": (stdin.st_dev, stdin.st_ino) == (devnull.st_dev, devnull.st_ino),
}}
with open(os.path.join(here, name + ".runs"), "a") as runs:
    runs.write(json.dumps(record) + "\\n")
with open(os.path.join(here, name + ".reply")) as source:
    reply = json.load(source)
for path in reply["touch"]:
    with open(path, "a") as touched:
        touched.write("written by the tool while it ran\\n")
if reply["sleep"]:
    time.sleep(reply["sleep"])
sys.stdout.write(reply["stdout"])
sys.stderr.write(reply["stderr"])
sys.exit(reply["returncode"])
"""


class StubTool:
    """One fake executable named ``name`` in ``directory``.

    Args:
        directory: where the script and its files live (put it on ``PATH`` to use it).
        name: the executable's name (``az``, ``azd``, ``pwsh``).
    """

    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.name = name
        self.path = directory / name
        self._runs = directory / f"{name}.runs"
        self._reply = directory / f"{name}.reply"
        self.path.write_text(
            _SCRIPT.format(
                python=sys.executable, directory=str(directory), name=name, variables=RECORDED_VARIABLES
            )
        )
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.reply()

    def reply(
        self,
        stdout: str = "",
        stderr: str = "",
        returncode: int = 0,
        *,
        sleep: float = 0,
        touch: tuple[str | os.PathLike[str], ...] = (),
    ) -> None:
        """What the next runs print and return."""
        self._reply.write_text(
            json.dumps(
                {
                    "stdout": stdout,
                    "stderr": stderr,
                    "returncode": returncode,
                    "sleep": sleep,
                    "touch": [str(path) for path in touch],
                }
            )
        )

    @property
    def runs(self) -> list[dict[str, Any]]:
        """What each run so far saw, oldest first."""
        if not self._runs.exists():
            return []
        return [json.loads(line) for line in self._runs.read_text().splitlines() if line]
