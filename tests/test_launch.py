"""The `costscope` program's own process settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TRACE = Path(__file__).parent / "data" / "claude_code" / "projects"
SHOW_POOL = """
import atexit, sys
from costscope import launch

def show() -> None:  # after the command, which loaded pyarrow with the environment the program set
    import pyarrow
    print(pyarrow.default_memory_pool().backend_name)

atexit.register(show)
sys.argv = ["costscope", "analyze", sys.argv[1], "--no-cache", "-f", "json"]
launch.main()
"""


def _pool(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SHOW_POOL, str(TRACE)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.mark.parametrize("chosen", [None, "mimalloc"])
def test_arrow_gets_the_system_allocator_unless_the_user_chose_one(chosen: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    assert _pool(env) == (chosen or "system")


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator")
def test_freed_blocks_go_back_to_the_system_unless_the_user_tuned_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from costscope.launch import return_freed_memory

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    glibc = hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
    assert return_freed_memory() is glibc
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert return_freed_memory() is False
