"""Finding and opening trace inputs: files, directories, globs, stdin and gzip. Nothing format-specific."""

from __future__ import annotations

import glob
import gzip
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import InputError

TRACE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".traj", ".log", ".pb", ".binpb")
"""File endings read when a directory is scanned (each may also end in `.gz`)."""

SNIFF_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
MAX_FIRST_LINE = 1 << 30


class ReadError(InputError):
    """The bytes of a file stopped being readable (a corrupt or truncated .gz, an I/O error) at `line`."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}:{line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason

    def __reduce__(self) -> tuple[type[ReadError], tuple[str, int, str]]:  # type: ignore[override]
        return (type(self), (self.source, self.line, self.reason))


@dataclass(frozen=True)
class InputFile:
    """One input: `name` is what messages show; `path` is None for stdin (its bytes are held in `data`)."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    start: int = 0
    """A part of a plain file: its first byte (a line start), last byte + 1, and the number of its first line."""
    stop: int | None = None
    first_line: int = 1

    def part(self, start: int, stop: int, first_line: int) -> InputFile:
        """The lines of bytes [start, stop) of this plain file, numbered from `first_line`."""
        return InputFile(self.name, self.path, None, start, stop, first_line)

    def open(self) -> BinaryIO:
        """Open for binary reading, decompressing gzip transparently (detected by magic bytes)."""
        raw: BinaryIO
        if self.path is None:
            raw = io.BytesIO(self.data or b"")
        else:
            try:
                raw = open(self.path, "rb")
            except OSError as exc:
                raise InputError(f"cannot open {self.name}: {exc.strerror}") from exc
        if self.stop is not None:
            raw.seek(self.start)
            return raw
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else raw.read(2)
        if not hasattr(raw, "peek"):
            raw.seek(0)
        if head == GZIP_MAGIC:
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        return raw

    def prefix(self, size: int = SNIFF_BYTES) -> bytes:
        """The first `size` decompressed bytes, for format sniffing, extended to the end of the first line
        when that line is longer (a single huge record must still be recognized)."""
        with self.open() as fh:
            try:
                head = fh.read(size)
                if len(head) == size and b"\n" not in head:
                    head += fh.readline(MAX_FIRST_LINE)
                return head
            except (OSError, EOFError) as exc:
                raise ReadError(self.name, 1, f"cannot read the file: {exc}") from exc

    def is_parquet(self) -> bool:
        return self.path is not None and self.path.suffix == ".parquet"


@dataclass(frozen=True)
class Expanded:
    files: list[InputFile]
    ignored: list[str]
    """Files inside scanned directories whose ending is not a trace ending (reported, not read)."""
    watched: list[str] | None = None
    """Every path the expansion looked at (files and each directory walked), for the run cache; None when
    the inputs cannot be watched that way (stdin, a glob)."""


def _is_trace_file(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return not path.name.startswith(".") and name.endswith(TRACE_SUFFIXES)


def expand_paths(paths: list[str], stdin: BinaryIO | None = None) -> Expanded:
    """Resolve PATH arguments (file, directory scanned recursively, glob, or `-`) in a stable order."""
    files: list[InputFile] = []
    ignored: list[str] = []
    watched: list[str] | None = []
    seen: set[str] = set()  # the same file named twice (a path and a glob) is read once

    def add(path: Path) -> None:
        resolved = os.path.abspath(path)
        if resolved not in seen:
            seen.add(resolved)
            files.append(InputFile(name=str(path), path=path))

    for arg in paths:
        if arg == "-":
            data = (stdin or sys.stdin.buffer).read()
            files.append(InputFile(name="<stdin>", data=data))
            watched = None
            continue
        path = Path(arg)
        if path.is_dir():
            found, directories = _walk(arg)
            if watched is not None:
                watched += directories
            # in the order of Path objects (part by part), without making one per file to sort
            for name in sorted(found, key=_parts):
                child = Path(name)
                if _is_trace_file(child):
                    add(child)
                else:
                    ignored.append(str(child))
        elif path.is_file():
            add(path)
        elif glob.has_magic(arg):
            watched = None
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
            matched_files = [m for m in matches if m.is_file()]
            if not matched_files:
                raise InputError(f"no file matches {arg!r}")
            for match in matched_files:
                add(match)
        else:
            raise InputError(f"no such file or directory: {arg}", hint="pass a trace file, a directory, a glob or -")
    if not files:
        raise InputError(
            "no trace files found in " + ", ".join(paths),
            hint="trace files end in " + ", ".join(TRACE_SUFFIXES) + " (optionally .gz)",
        )
    if watched is not None:
        watched += [str(f.path) for f in files if f.path is not None]
    return Expanded(files=files, ignored=ignored, watched=watched)


def _parts(path: str) -> list[str]:
    return [part for part in path.split(os.sep) if part and part != "."]


def _walk(root: str) -> tuple[list[str], list[str]]:
    """(files, directories) under `root`, recursively; symbolic links to directories are not followed
    (like `Path.rglob`), links to files are files."""
    files: list[str] = []
    directories = [root]
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    directories.append(entry.path)
                    pending.append(entry.path)
                elif entry.is_file():
                    files.append(entry.path)
            except OSError:
                continue
    return files, directories


UTF8_BOM = b"\xef\xbb\xbf"


def line_parts(path: Path, pieces: int) -> list[tuple[int, int, int]]:
    """(start, stop, first line) of about `pieces` byte ranges of a plain file, each cut after a newline,
    found in one pass that counts the lines before each cut."""
    size = path.stat().st_size
    cuts: list[tuple[int, int]] = []
    offset, line = 0, 1
    target = size // pieces
    with open(path, "rb") as fh:
        while len(cuts) < pieces - 1 and (block := fh.read(1 << 24)):
            while len(cuts) < pieces - 1 and offset + len(block) > target:
                newline = block.find(b"\n", max(target - offset, 0))
                if newline < 0:
                    break
                cuts.append((offset + newline + 1, line + block.count(b"\n", 0, newline + 1)))
                target = max(size * (len(cuts) + 1) // pieces, offset + newline + 1)
            line += block.count(b"\n")
            offset += len(block)
    starts = [(0, 1), *cuts]
    stops = [cut for cut, _ in cuts] + [size]
    return [(start, stop, first) for (start, first), stop in zip(starts, stops, strict=True) if start < stop]


def _home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def claude_log_dirs() -> list[Path]:
    """Where Claude Code keeps its project logs: each `CLAUDE_CONFIG_DIR` entry (comma-separated), else
    `~/.config/claude` and `~/.claude`; each with `projects/` inside."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    roots = [Path(p.strip()) for p in configured.split(",") if p.strip()] if configured else []
    roots = roots or [_home() / ".config" / "claude", _home() / ".claude"]
    return [root / "projects" for root in roots]


def codex_log_dirs() -> list[Path]:
    """Where Codex CLI keeps its rollouts: `$CODEX_HOME/sessions`, else `~/.codex/sessions`."""
    root = Path(os.environ["CODEX_HOME"]) if os.environ.get("CODEX_HOME") else _home() / ".codex"
    return [root / "sessions"]


def existing_dirs(candidates: list[Path], what: str, variable: str) -> list[str]:
    """The candidate directories that exist; an InputError naming them all when none does."""
    found = [str(p) for p in candidates if p.is_dir()]
    if not found:
        raise InputError(
            f"no {what} found in " + ", ".join(str(p) for p in candidates),
            hint=f"set {variable} or pass the log directory as a PATH",
        )
    return found


def iter_lines(
    source: InputFile, on_read_error: Callable[[ReadError], None] | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, line bytes without its newline) for every non-blank line; a UTF-8 BOM
    at the start is dropped.

    The file is read in blocks and split at newlines (far cheaper per line than reading line by line);
    only a line longer than a block is held whole. When the file stops being readable part-way,
    `on_read_error` is told (the lines read so far stand); without it the ReadError is raised.
    """
    lineno = source.first_line - 1
    unfinished: list[bytes] = []  # the pieces of a line that runs past the blocks read so far, joined once
    try:
        for block in _blocks(source):
            lines = block.split(b"\n")
            if len(lines) == 1:
                unfinished.append(block)
                continue
            if unfinished:
                lines[0] = b"".join([*unfinished, lines[0]])
            tail = lines.pop()
            unfinished = [tail] if tail else []
            for raw in lines:
                lineno += 1
                if raw and not raw.isspace():
                    yield lineno, raw
        if unfinished:
            lineno += 1
            last = b"".join(unfinished)
            if not last.isspace():
                yield lineno, last
    except (OSError, EOFError) as exc:
        error = ReadError(source.name, lineno + 1, f"cannot read further: {exc}")
        if on_read_error is None:
            raise error from exc
        on_read_error(error)


def iter_blocks(source: InputFile) -> Iterator[bytes | memoryview]:
    """The bytes of `source` (BOM dropped) in blocks of whole lines, as `iter_lines` reads them but not split: each
    block ends with a newline, but the file's last; blank lines are in the blocks, so a reader numbering the lines
    counts the newlines. A block is a view of the bytes read where it can be (no copy); only a line that runs past
    a read is joined. A read that fails raises its OSError or EOFError: the blocks yielded so far stand.
    """
    unfinished: list[bytes] = []
    for block in _blocks(source):
        cut = block.rfind(b"\n") + 1
        if not cut:
            unfinished.append(block)
            continue
        start = 0
        if unfinished:
            start = block.find(b"\n") + 1
            yield b"".join([*unfinished, block[:start]])
        if start < cut:
            yield memoryview(block)[start:cut]
        unfinished = [block[cut:]] if cut < len(block) else []
    if unfinished:
        yield b"".join(unfinished)


def _blocks(source: InputFile) -> Iterator[bytes]:
    """The bytes of `source` in blocks (the first without a UTF-8 BOM)."""
    budget = None if source.stop is None else source.stop - source.start
    with source.open() as fh:
        block_size = GZIP_BLOCK if isinstance(fh, gzip.GzipFile) else PLAIN_BLOCK
        first = source.first_line == 1
        while True:
            size = block_size if budget is None else min(block_size, budget)
            block = fh.read(size) if size > 0 else b""
            if budget is not None:
                budget -= len(block)
            if not block:
                return
            if first:
                block = block.removeprefix(UTF8_BOM)
                first = False
            yield block


PLAIN_BLOCK = 1 << 20
GZIP_BLOCK = 64 << 10
"""A damaged gzip stream loses the lines of the block being decompressed, so its blocks are smaller."""
