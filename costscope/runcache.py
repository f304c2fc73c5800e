"""The run cache: a report command run again over unchanged inputs prints its recorded output at once.

Standard library only, so that a hit costs no pandas, pyarrow or typer import. A run is keyed by everything
its output can depend on that is known before parsing: the arguments, the working directory, the environment,
whether stdout/stderr are terminals and the terminal width, the interpreter, costscope's own source files,
the installed packages (the state of each `site-packages` directory) and tiktoken's file cache. The record
then lists every path the run read or scanned, with its (type, size, mtime): the input files, each directory
walked (its mtime changes when an entry is added, removed or renamed), files a parser consulted and the
price file. A later run with the same key replays the record only when every one of those paths is still in
the recorded state; otherwise it runs in full (and the parse cache still spares the unchanged files).

A run is recorded only when it succeeded, and not when a path it depends on changed since shortly before the
run started (a log being written while it was read): that output may already be stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = 1
"""Bump when the record layout changes."""
KEEP_RUNS = 32
"""Records kept; the least recently used beyond this are removed."""
RACY_NS = 100_000_000
"""A path modified this close before the run started (or later) may have changed while it was read."""
VOLATILE_ENV = frozenset({"_", "OLDPWD", "PWD", "SHLVL", "PS1", "PS2", "TERM_SESSION_ID", "WINDOWID", "SECONDS"})
"""Shell bookkeeping that says nothing about a run's output (the working directory is keyed on its own)."""

State = list[int] | None
"""(file type, size, mtime_ns) of a path, None when it does not exist."""


def default_cache_dir() -> Path:
    """costscope's cache directory: COSTSCOPE_CACHE_DIR, else the user cache directory."""
    if os.environ.get("COSTSCOPE_CACHE_DIR"):
        return Path(os.environ["COSTSCOPE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "costscope"


def path_state(path: str) -> State:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns]


def _terminal_width() -> int | None:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else None
    except (OSError, ValueError, AttributeError):
        return None


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return False


def _code_states() -> list[tuple[str, State]]:
    """costscope's source files, the site-packages directories (an install or upgrade changes their mtime) and
    tiktoken's cache directory (which encodings can be loaded offline)."""
    states = []
    package = os.path.dirname(os.path.abspath(__file__))
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".json")):
                full = os.path.join(root, name)
                states.append((full, path_state(full)))
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")):
            states.append((entry, path_state(entry)))
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(variable):
            tiktoken_dir = os.environ[variable]
            break
    else:
        tiktoken_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    states.append((tiktoken_dir, path_state(tiktoken_dir)))
    return states


def run_key(argv: list[str]) -> str:
    """What a run's output depends on that is known before it reads anything, hashed."""
    env = sorted((k, v) for k, v in os.environ.items() if k not in VOLATILE_ENV)
    material = [
        FORMAT,
        argv,
        os.getcwd(),
        env,
        _isatty(sys.stdout),
        _isatty(sys.stderr),
        _terminal_width(),
        sys.executable,
        sys.version,
        _code_states(),
    ]
    return hashlib.sha256(json.dumps(material, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Run:
    """The run of this process, begun by the entry point; the command it runs may record its output."""

    argv: list[str]
    directory: Path
    started_ns: int = field(default_factory=time.time_ns)
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or run_key(self.argv)

    @property
    def record_path(self) -> Path:
        return self.directory / "runs" / f"{self.key}.json"

    def replay(self) -> tuple[str, str, int] | None:
        """(stdout, stderr, exit code) of a recorded run whose every dependency is unchanged, else None."""
        try:
            record = json.loads(self.record_path.read_bytes())
            if record.get("format") != FORMAT:
                return None
            paths, states = record["paths"], record["states"]
            if len(paths) != len(states) or any(path_state(p) != s for p, s in zip(paths, states, strict=True)):
                return None
            os.utime(self.record_path)  # least recently used goes first
            return record["stdout"], record["stderr"], int(record["code"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def record(self, paths: list[str], stdout: str, stderr: str, code: int = 0) -> bool:
        """Keep a successful run's output under its key, unless a dependency changed around the run."""
        unique = sorted(set(paths))
        states = [path_state(p) for p in unique]
        if any(s is not None and s[2] >= self.started_ns - RACY_NS for s in states):
            return False
        body = {"format": FORMAT, "paths": unique, "states": states, "stdout": stdout, "stderr": stderr, "code": code}
        target = self.record_path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(body, separators=(",", ":")), encoding="utf-8")
            os.replace(partial, target)
            self._prune(target.parent)
        except OSError:
            return False  # a cache that cannot be written only costs speed
        return True

    @staticmethod
    def _prune(directory: Path) -> None:
        records = []
        for entry in os.scandir(directory):
            if entry.name.endswith(".json"):
                try:
                    records.append((entry.stat().st_mtime_ns, entry.name))
                except OSError:
                    continue
        for _, name in sorted(records, reverse=True)[KEEP_RUNS:]:
            try:
                os.unlink(directory / name)
            except OSError:
                continue


_current: Run | None = None


def begin(argv: list[str]) -> Run | None:
    """Start this process's run (None when caching is off for it: `--no-cache`)."""
    global _current
    _current = None if "--no-cache" in argv else Run(argv, default_cache_dir())
    return _current


def current() -> Run | None:
    """The run begun by the entry point, if any (never under a test runner that calls the app directly)."""
    return _current


def end() -> None:
    global _current
    _current = None
