"""The renderers of `costscope check`, in one registry: pure functions of a CheckResult to text."""

from __future__ import annotations

from collections.abc import Callable

from ..check import CheckResult
from .check_json import render_check_json
from .check_markdown import render_check_markdown
from .check_table import render_check_table

CheckRenderer = Callable[[CheckResult, int], str]

CHECK_RENDERERS: dict[str, CheckRenderer] = {
    "table": render_check_table,
    "markdown": render_check_markdown,
    "json": render_check_json,
}
