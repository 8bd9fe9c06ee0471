"""Starts the real `coffre` binary for the Python conformance tests.

Same contract as the Rust harness (conformance/src/server.rs): `coffre serve` on 127.0.0.1:0 with
a fresh data directory, ready when it prints `coffre listening s3=... admin=...`, credentials in
`<data-dir>/credentials`.
"""

from __future__ import annotations

import configparser
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

READY_PREFIX = "coffre listening "
STARTUP_TIMEOUT = 60.0


def coffre_binary() -> Path:
    value = os.environ.get("COFFRE_BIN")
    if not value:
        raise RuntimeError(
            "set COFFRE_BIN to the coffre binary "
            "(cargo build -p coffre-gateway --bin coffre -> $CARGO_TARGET_DIR/debug/coffre)"
        )
    path = Path(value)
    if not path.is_file():
        raise RuntimeError(f"COFFRE_BIN={path} does not exist")
    return path


class CoffreServer:
    """A running `coffre serve`; `stop()` kills it and removes its data directory."""

    def __init__(self, *extra_args: str) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="coffre-pytest-"))
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.admin_endpoint = ""
        self.access_key = ""
        self.secret_key = ""
        self._start()

    def _start(self) -> None:
        command = [
            str(coffre_binary()),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--s3-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            *self.extra_args,
        ]
        env = dict(os.environ)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            env.pop(name, None)
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        ready: queue.Queue[str] = queue.Queue()

        def drain(pipe, name: str, watch: bool) -> None:
            # Keep reading for the life of the process so the server never blocks on a pipe.
            for line in pipe:
                if watch and line.startswith(READY_PREFIX):
                    ready.put(line[len(READY_PREFIX):].strip())
                sys.stderr.write(f"[coffre {name}] {line}")

        threading.Thread(target=drain, args=(self.process.stdout, "stdout", True), daemon=True).start()
        threading.Thread(target=drain, args=(self.process.stderr, "stderr", False), daemon=True).start()

        deadline = time.monotonic() + STARTUP_TIMEOUT
        line = None
        while line is None:
            if self.process.poll() is not None:
                raise RuntimeError(f"coffre exited with {self.process.returncode} before it was ready")
            if time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"coffre printed no ready line within {STARTUP_TIMEOUT} s")
            try:
                line = ready.get(timeout=0.1)
            except queue.Empty:
                pass
        fields = dict(word.split("=", 1) for word in line.split() if "=" in word)
        self.endpoint = fields["s3"].rstrip("/")
        self.admin_endpoint = fields["admin"].rstrip("/")
        self._read_credentials()

    def _read_credentials(self) -> None:
        path = self.data_dir / "credentials"
        deadline = time.monotonic() + 5
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        parser = configparser.ConfigParser()
        parser.read(path)
        self.access_key = parser["default"]["aws_access_key_id"].strip()
        self.secret_key = parser["default"]["aws_secret_access_key"].strip()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._start()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)
