"""Number formatting shared by the human-readable renderers (rounding happens only here)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

MISSING = "—"


def usd(value: float | None) -> str:
    if value is None:
        return MISSING
    if value < 0:
        return "-" + usd(-value)
    if abs(value) >= 100:
        return f"${value:,.2f}"
    if abs(value) >= 1:
        return f"${value:,.3f}"
    return f"${value:.4f}"


def tokens(value: int | None) -> str:
    if value is None:
        return MISSING
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return str(value)


def pct(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.1f}%"


def key_text(key: dict[str, Any]) -> str:
    return " / ".join(MISSING if v is None else str(v) for v in key.values())


def plain_console(buffer: io.StringIO, width: int) -> Console:
    """A rich console writing plain text (no colour, no markup guessing) of a fixed width into `buffer`."""
    return Console(
        file=buffer,
        width=width,
        color_system=None,
        force_terminal=False,
        highlight=False,
        emoji=False,
        legacy_windows=False,
        soft_wrap=False,
    )
