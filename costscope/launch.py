"""The `costscope` program. A report run again over unchanged inputs is replayed from the run cache
(`runcache`) before anything heavy is imported; any other run goes to the command line (`cli`)."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

from . import runcache


def main() -> None:
    run = runcache.begin(sys.argv[1:])
    replayed = run.replay() if run is not None else None
    if replayed is not None:
        stdout, stderr, code = replayed
        try:
            sys.stderr.write(stderr)
            sys.stderr.flush()
            sys.stdout.write(stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. `| head`: quiet, exit 1, as the command line does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(1) from None
        raise SystemExit(code)
    # Arrow's memory pool: the C library's allocator, unless the user chose one. mimalloc, pyarrow's default,
    # keeps what it freed: a cold analyze of 100,000 Claude Code requests peaked 50 MiB higher with it, no faster.
    # (Read when pyarrow loads; the environment is given back afterwards, as the run cache's key saw it.)
    chosen = POOL_VARIABLE in os.environ
    os.environ.setdefault(POOL_VARIABLE, "system")
    return_freed_memory()
    if pandas_free(sys.argv[1:]):
        from .nopandas import skip_pandas_probe

        skip_pandas_probe()
    from .cli import main as cli_main

    try:
        cli_main()
    finally:
        if not chosen:
            os.environ.pop(POOL_VARIABLE, None)
        runcache.end()


def run() -> NoReturn:
    """The `costscope` program (and `python -m costscope`): `main`, then `exit_now` with its exit code."""
    try:
        main()
        outcome: object = 0
    except SystemExit as done:  # how the command line ends, whatever the outcome
        outcome = done.code
    exit_now(outcome)


def exit_now(code: object) -> NoReturn:
    """End the program without tearing the interpreter down: freeing every module, object and Arrow buffer one by
    one took 0.12 s of a 2 s cold analyze, for a process about to end. What an exit must do is done first: the
    atexit functions run and stdout and stderr are flushed. The normal exit where another thread still runs (it
    waits for the thread) or the code is not a number (it prints it)."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if others or not (code is None or isinstance(code, int)):
        raise SystemExit(code)
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_functions is None:  # not CPython: its own exit
        raise SystemExit(code)
    run_exit_functions()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # e.g. `| head`: quiet, exit 1, as the command line does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    os._exit(code or 0)


def pandas_free(args: list[str]) -> bool:
    """Whether a run makes no pandas objects: an `analyze` of trace files without findings. Such a run keeps
    pyarrow from importing pandas (`nopandas`): 0.2-0.3 s and about 35 MiB less. (The dataset engines import
    the simulation modules, which use pandas: a run over a dataset directory or with an engine option is not.)"""
    if not args or args[0] != "analyze":
        return False
    if any(a == "--findings" or a.startswith(("--engine", "--scheduler")) for a in args):
        return False
    from .schema import DATASET_MANIFEST

    return not any(os.path.isfile(os.path.join(a, DATASET_MANIFEST)) for a in args[1:] if not a.startswith("-"))


POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"

MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def return_freed_memory() -> bool:
    """Have glibc's allocator map blocks of MMAP_THRESHOLD or more on their own, so that freeing one gives its
    memory back to the system at once. By default glibc raises that threshold (up to 32 MiB) each time such a
    block is freed, and later blocks then stay in its heap after use: the column-sized temporaries of pricing and
    reporting kept a cold analyze of 100,000 Claude Code requests about 25 MiB higher (244 MiB against 228).
    4 MiB, not lower: at 256 KiB every column of 100,000 rows was mapped, faulted in page by page and unmapped,
    0.2 s more CPU for 8 MiB less.

    Fixing that threshold also fixes the one at which free memory at the top of the heap goes back to the system
    (glibc's dynamic rule would have raised it along): left at its 128 KiB, each 1 MiB block a parse worker reads
    was given back once used and faulted in anew for the next, 75,000 page faults and 0.3 s of system CPU on that
    analyze. TRIM_THRESHOLD keeps up to 64 MiB of the heap's top (the heap itself, not the large blocks).

    Not where the user tuned glibc (`MALLOC_MMAP_THRESHOLD_`; `MALLOC_TRIM_THRESHOLD_` for the second setting)
    nor with another C library. True when set."""
    if sys.platform != "linux" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):
            return False
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ and not libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD):
            return False
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
