"""The ordered parser registry and format detection.

A new trace format is one new module whose parser is added to `PARSERS`; third-party parsers register
through the `costscope.parsers` entry-point group and are tried after the built-ins.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from ..errors import InputError
from ..io import InputFile
from . import anthropic, gemini, openai
from .base import ParseContext, Parser, Skips
from .calls import CallLogParser
from .native import NativeParser
from .parquet import ParquetParser

__all__ = ["PARSERS", "ParseContext", "Parser", "Skips", "UnknownFormat", "detect", "get_parser"]


class UnknownFormat(InputError):
    """No registered parser recognizes a file's first bytes."""


PARSERS: list[Parser] = [
    ParquetParser(),
    NativeParser(),
    CallLogParser(anthropic, "Anthropic Messages responses, bare or wrapped with request and metadata"),
    CallLogParser(gemini, "Gemini generateContent responses (usageMetadata), bare or wrapped"),
    CallLogParser(openai, "OpenAI Chat Completions / Responses API objects, bare or wrapped"),
]


def _all_parsers() -> list[Parser]:
    extra = [ep.load()() for ep in sorted(entry_points(group="costscope.parsers"), key=lambda ep: ep.name)]
    return PARSERS + extra


def format_names() -> list[str]:
    return [p.name for p in _all_parsers()]


def get_parser(name: str) -> Parser:
    for parser in _all_parsers():
        if parser.name == name:
            return parser
    raise InputError(f"unknown input format {name!r}", hint="known formats: " + ", ".join(format_names()))


def detect(source: InputFile) -> Parser:
    """The first registered parser whose sniff accepts the file's first bytes."""
    prefix = source.prefix()
    if not prefix.strip():
        raise InputError(f"{source.name}: the file is empty")
    for parser in _all_parsers():
        if parser.sniff(prefix):
            return parser
    raise UnknownFormat(
        f"{source.name}: unrecognized trace format",
        hint="force one with --format-in; known formats: " + ", ".join(format_names()),
    )
