"""The coffre server's request log, read back so a failing client names the S3 requests refused.

`coffre_server.CoffreServer` (shared with conformance/python) copies every line the server prints
to `sys.stderr`. `ServerLog.install()` puts a tee in that path: lines still reach pytest's
captured stderr, and are also kept here. With `coffre_gateway=debug` in its log filter the server logs
one line per request (`op`, `method`, `status`) and one per refusal (`error=Code: message`).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass

import coffre_server

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
REQUEST_ID = re.compile(r"request_id=(?P<id>\w+)")
OPERATION = re.compile(r'\bop="(?P<op>[^"]+)"')
COMPLETED = re.compile(r"\brequest method=(?P<method>[A-Z]+) status=(?P<status>\d{3})\b")
REFUSED = re.compile(r"\brequest (?:refused|failed) error=(?P<code>\w+)")


@dataclass(frozen=True)
class Request:
    """One S3 request as the server logged it; `code` is the error code of a refused one."""

    operation: str
    method: str
    status: int
    code: str

    def __str__(self) -> str:
        return f"{self.method} {self.operation} -> {self.status} {self.code}".rstrip()


class ServerLog:
    """Every line the coffre servers of this pytest run printed, in order."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        coffre_server.sys = _SysWithTee(self)

    # The file-like side, used by coffre_server's reader threads.
    def write(self, text: str) -> int:
        with self._lock:
            self._lines.append(ANSI_ESCAPE.sub("", text))
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def mark(self) -> int:
        with self._lock:
            return len(self._lines)

    def settle(self, quiet: float = 0.2, limit: float = 3.0) -> None:
        """Waits until no line arrived for `quiet` seconds: the server logs a request just after
        answering it, so its line can trail the client's exit."""
        deadline = time.monotonic() + limit
        count = self.mark()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.mark()
            if now == count:
                return
            count = now

    def requests_since(self, mark: int) -> list[Request]:
        """The S3 requests completed since `mark`, in order."""
        self.settle()
        with self._lock:
            lines = self._lines[mark:]
        codes: dict[str, str] = {}
        requests = []
        for line in lines:
            request_id = REQUEST_ID.search(line)
            key = request_id["id"] if request_id else ""
            refused = REFUSED.search(line)
            if refused:
                codes[key] = refused["code"]
                continue
            completed = COMPLETED.search(line)
            if completed:
                operation = OPERATION.search(line)
                requests.append(
                    Request(
                        operation=operation["op"] if operation else "?",
                        method=completed["method"],
                        status=int(completed["status"]),
                        code=codes.pop(key, ""),
                    )
                )
        return requests

    def refusals_since(self, mark: int) -> list[Request]:
        """The requests answered with a 4xx or 5xx since `mark`."""
        return [request for request in self.requests_since(mark) if request.status >= 400]


def summarize(refusals: list[Request]) -> list[str]:
    """Distinct refusals with their counts, most frequent first."""
    counts: dict[Request, int] = {}
    for refusal in refusals:
        counts[refusal] = counts.get(refusal, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return [f"{refusal} (x{count})" if count > 1 else str(refusal) for refusal, count in ordered]


class _SysWithTee:
    """`sys` as coffre_server sees it: the real module, with `stderr` going through the log."""

    def __init__(self, log: ServerLog) -> None:
        self._log = log

    @property
    def stderr(self) -> ServerLog:
        return self._log

    def __getattr__(self, name: str):
        return getattr(sys, name)
