"""The ordered parser registry and format detection.

A new trace format is one new module whose parser is added to `PARSERS`; third-party parsers register
through the `costscope.parsers` entry-point group and are tried after the built-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import InputError
from ..io import InputFile
from . import anthropic, claude_code, gemini, openai
from .base import SNIFF_LINES, ParseContext, Parser, Skips, first_object
from .calls import CallLogParser
from .claude_code import ClaudeCodeParser
from .claude_headless import ClaudeHeadlessParser
from .codex import CodexParser
from .native import NativeParser
from .openhands import OpenHandsParser
from .otel_console import OtelConsoleParser
from .otlp_json import OtlpJsonParser
from .otlp_proto import OtlpProtoParser
from .parquet import ParquetParser
from .phoenix import PhoenixParser
from .swe_agent import SweAgentParser

__all__ = ["CACHE_DEPENDENCIES", "PARSERS", "ParseContext", "Parser", "Skips", "UnknownFormat", "detect", "get_parser"]


class UnknownFormat(InputError):
    """No registered parser recognizes a file's first bytes."""


PARSERS: list[Parser] = [
    ParquetParser(),
    NativeParser(),
    CodexParser(),
    ClaudeCodeParser(),
    ClaudeHeadlessParser(),
    OpenHandsParser(),
    SweAgentParser(),
    OtlpJsonParser(),
    OtelConsoleParser(),
    PhoenixParser(),
    CallLogParser(anthropic, "Anthropic Messages responses, bare or wrapped with request and metadata"),
    CallLogParser(gemini, "Gemini generateContent responses (usageMetadata), bare or wrapped"),
    CallLogParser(openai, "OpenAI Chat Completions / Responses API objects, bare or wrapped"),
    OtlpProtoParser(),  # last: binary, sniffed by its first bytes once no text format matched
]


CACHE_DEPENDENCIES: list[Callable[[Path], list[Path]]] = [claude_code.cache_dependencies]
"""Hooks naming other files a file's parse result depends on (their state joins its parse-cache key)."""


@cache
def _all_parsers() -> list[Parser]:
    """Built-ins, then third-party parsers from entry points (read once per process: it scans package metadata)."""
    extra = [ep.load()() for ep in sorted(entry_points(group="costscope.parsers"), key=lambda ep: ep.name)]
    return PARSERS + extra


def format_names() -> list[str]:
    return [p.name for p in _all_parsers()]


QUICK_SNIFF_BYTES = 8 * 1024


def _quick_detect(prefix: bytes) -> Parser | None:
    end = -1
    for _ in range(SNIFF_LINES):  # the first lines whole (a search per line: most of 8 KiB is not looked at)
        end = prefix.find(b"\n", end + 1)
        if end < 0:
            return None
    if first_object(prefix) is None:
        return None
    for parser in _all_parsers():
        if not getattr(parser, "sniffs_first_lines", False):
            return None
        if parser.sniff(prefix):
            return parser
    return None


def get_parser(name: str) -> Parser:
    for parser in _all_parsers():
        if parser.name == name:
            return parser
    raise InputError(f"unknown input format {name!r}", hint="known formats: " + ", ".join(format_names()))


def detect(source: InputFile, prefix: bytes | None = None, *, quick: bool = False) -> Parser:
    """The first registered parser whose sniff accepts the file's first bytes (`prefix`, when already read).

    With `quick`, `prefix` is the first QUICK_SNIFF_BYTES only, and the full SNIFF_BYTES are read when they can
    change the answer: a short prefix gives the same answer as the full one when it holds SNIFF_LINES whole lines,
    the first of them a JSON object, and the parser found is preceded only by parsers that look at those lines
    alone (`sniffs_first_lines`). Most files are known from 8 KiB instead of 64."""
    if quick and prefix is not None:
        found = _quick_detect(prefix)
        if found is not None:
            return found
        prefix = None
    prefix = source.prefix() if prefix is None else prefix
    if not prefix.strip():
        raise InputError(f"{source.name}: the file is empty")
    for parser in _all_parsers():
        if parser.sniff(prefix):
            return parser
    raise UnknownFormat(
        f"{source.name}: unrecognized trace format",
        hint="force one with --format-in; known formats: " + ", ".join(format_names()),
    )
