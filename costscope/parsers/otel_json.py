"""Whole-file JSON reading for the span formats, which are not strictly one object per line.

`json_records` yields every top-level JSON value of a text with the line it starts on, going one level
into top-level arrays (each element is a record). That covers JSON Lines, pretty-printed objects one
after another (the OTel ConsoleSpanExporter), a single pretty-printed object, and arrays. A malformed
value is reported with its line, and reading resumes at the next line that opens an object or array at
the same or a smaller indentation: one damaged record costs one skip, not the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..io import InputFile, ReadError
from .base import ParseContext

UTF8_BOM = "\ufeff"
_WS = re.compile(r"[ \t\r\n]*")
_VALUE_LINE = re.compile(r"^([ \t]*)[\[{]", re.MULTILINE)
_DECODER = json.JSONDecoder()
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class JsonRecord:
    """One top-level value (or top-level array element) and the 1-based line it starts on."""

    line: int
    value: Any = None
    error: str | None = None
    """Why the text there is not a JSON value (`malformed JSON (…)`); None when `value` was read."""


def read_text(source: InputFile, ctx: ParseContext) -> str:
    """The whole decompressed file as text; a read failure part-way is a counted skip and the text read
    before it stands. Bytes that are not UTF-8 become U+FFFD."""
    chunks: list[bytes] = []
    try:
        with source.open() as fh:
            while chunk := fh.read(_CHUNK):
                chunks.append(chunk)
    except (OSError, EOFError) as exc:
        line = sum(c.count(b"\n") for c in chunks) + 1
        ctx.read_error(ReadError(source.name, line, f"cannot read further: {exc}"))
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return text[1:] if text.startswith(UTF8_BOM) else text


class _Lines:
    """Line numbers of non-decreasing offsets, counted incrementally."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def at(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _column(text: str, pos: int) -> int:
    return pos - (text.rfind("\n", 0, pos) + 1)


def _resync(text: str, pos: int, column: int) -> int:
    """Offset of the next line after `pos` that opens an object or array at indentation <= `column`."""
    newline = text.find("\n", pos)
    if newline < 0:
        return len(text)
    for match in _VALUE_LINE.finditer(text, newline + 1):
        if len(match.group(1)) <= column:
            return match.end(1)
    return len(text)


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON ({exc.msg})"
    if isinstance(exc, RecursionError):
        return "malformed JSON (nested too deeply)"
    return "malformed JSON (number too long)"


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _whole_line(text: str, pos: int) -> tuple[Any, int] | None:
    """The value filling the line that starts at `pos` (the JSON Lines fast path), or None."""
    if pos and text[pos - 1] != "\n":
        return None
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    try:
        return orjson.loads(text[pos:end]), end
    except orjson.JSONDecodeError:
        return None


def json_records(text: str) -> Iterator[JsonRecord]:
    """Every top-level value of `text` (elements of top-level arrays), with the line each starts on."""
    lines = _Lines(text)
    pos = _skip_ws(text, 0)
    while pos < len(text):
        if (whole := _whole_line(text, pos)) is not None:
            line = lines.at(pos)
            value, pos = whole
            for item in value if isinstance(value, list) else [value]:
                yield JsonRecord(line, item)
        elif text[pos] == "[":
            pos = yield from _array(text, pos, lines)
        else:
            start = pos
            try:
                value, pos = _DECODER.raw_decode(text, pos)
            except (ValueError, RecursionError) as exc:
                yield JsonRecord(lines.at(start), error=_reason(exc))
                pos = _resync(text, start, _column(text, start))
            else:
                yield JsonRecord(lines.at(start), value)
        pos = _skip_ws(text, pos)


def _array(text: str, pos: int, lines: _Lines) -> Generator[JsonRecord, None, int]:
    """Yield the elements of the array opening at `pos`; return the offset after it."""
    end = len(text)
    pos = _skip_ws(text, pos + 1)
    if pos < end and text[pos] == "]":
        return pos + 1
    while pos < end:
        start = pos
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            yield JsonRecord(lines.at(start), error=_reason(exc))
            column = _column(text, start)
            pos = _resync(text, start, column)
            if pos < end and _column(text, pos) < column:
                return pos  # the damage reached past the array: carry on at the top level
            continue
        yield JsonRecord(lines.at(start), value)
        pos = _skip_ws(text, pos)
        if pos < end and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            if pos < end and text[pos] == "]":
                return pos + 1
        elif pos < end and text[pos] == "]":
            return pos + 1
        elif pos < end:
            yield JsonRecord(lines.at(pos), error="malformed JSON (expected ',' or ']' in an array)")
            column = _column(text, start)
            pos = _resync(text, pos, column)
            if pos < end and _column(text, pos) < column:
                return pos
    return pos
