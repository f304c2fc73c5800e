"""Renderers: pure functions of a Report to text. A new output is one module added to RENDERERS."""

from __future__ import annotations

from collections.abc import Callable

from ..report import Report
from .csv import render_csv
from .json import render_json
from .markdown import render_markdown
from .table import render_table

Renderer = Callable[[Report, int], str]

RENDERERS: dict[str, Renderer] = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "markdown": render_markdown,
}

__all__ = ["RENDERERS", "Renderer"]
