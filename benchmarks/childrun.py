"""Measuring one child process: wall time, CPU time and peak RSS of that child alone (via os.wait4)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

RSS_UNIT = 1 if sys.platform == "darwin" else 1024
"""ru_maxrss is in bytes on macOS and in KiB on Linux."""


@dataclass(frozen=True)
class Child:
    wall: float
    """Seconds from start to exit."""
    cpu: float
    """User + system seconds of the child (and the children it waited for)."""
    rss: int
    """Peak resident set size in bytes."""
    stdout: bytes
    stderr: bytes
    returncode: int


def run_child(cmd: list[str], env: dict[str, str] | None = None, timeout: float | None = None) -> Child:
    """Run CMD to completion (killed after `timeout` seconds, which ends the benchmark) and measure it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise SystemExit(f"timeout after {timeout:g} s: {' '.join(cmd)}")
            time.sleep(0.02)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return Child(
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss * RSS_UNIT,
            out.read(),
            err.read(),
            os.waitstatus_to_exitcode(status),
        )
