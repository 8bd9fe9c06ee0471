"""pytest fixtures for the real-client suite: a fresh coffre server per test, a clean client home.

The server comes from conformance/python/coffre_server.py (the same contract as the Rust
harness), started with per-request debug logging so that a failing client is reported with the S3
requests Coffre refused.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "python"))

from client_command import VENV_BIN  # noqa: E402
from coffre_server import CoffreServer  # noqa: E402
from server_log import ServerLog  # noqa: E402

SERVER_LOG = ServerLog()
SERVER_LOG.install()

# One line per request (op, method, status) and one per refusal (error code).
SERVER_LOG_LEVEL = "info,coffre_gateway=debug"

# Variables through which the developer's own setup could leak into a client run.
CLIENT_VARIABLE_PREFIXES = ("AWS_", "RCLONE_", "RESTIC_", "S3CMD", "BOTO_")


@pytest.fixture
def server():
    s = CoffreServer("--log-level", SERVER_LOG_LEVEL)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def server_log() -> ServerLog:
    return SERVER_LOG


@pytest.fixture
def client_env(tmp_path) -> dict[str, str]:
    """A client environment with its own HOME, so no ~/.aws, ~/.s3cfg or rclone.conf is read."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLIENT_VARIABLE_PREFIXES)}
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["LC_ALL"] = "C.UTF-8"
    env["PYTHONIOENCODING"] = "utf-8"
    return env
