"""Renderers: pure functions of a Report to text. A new output is one module added to RENDERERS."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..report import Report

Renderer = Callable[["Report", int], str]


def _imported_when_used(module: str, name: str) -> Renderer:
    """The renderer `name` of `module`, imported at its first call: the JSON and CSV outputs never import rich
    (about 25 ms), which the table and Markdown outputs use."""

    def render(report: Report, width: int) -> str:
        renderer: Renderer = getattr(import_module(f"{__name__}.{module}"), name)
        return renderer(report, width)

    return render


RENDERERS: dict[str, Renderer] = {
    "table": _imported_when_used("table", "render_table"),
    "json": _imported_when_used("json", "render_json"),
    "csv": _imported_when_used("csv", "render_csv"),
    "markdown": _imported_when_used("markdown", "render_markdown"),
}

__all__ = ["RENDERERS", "Renderer"]
