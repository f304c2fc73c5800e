"""costscope: where the money goes in LLM agent traces, what a change would save, and a CI gate.

The names below are imported on first use, so that `costscope` starts without loading pandas or pyarrow
(the run cache replays a report without either).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import AnalyzeOptions, analyze, load_priced_steps, write_steps
    from .baseline import create as create_baseline
    from .check import CheckResult
    from .check import run as run_check
    from .check_config import CheckSettings
    from .steps import Filters, load_steps

_EXPORTS = {
    "AnalyzeOptions": ("api", "AnalyzeOptions"),
    "analyze": ("api", "analyze"),
    "load_priced_steps": ("api", "load_priced_steps"),
    "write_steps": ("api", "write_steps"),
    "create_baseline": ("baseline", "create"),
    "CheckResult": ("check", "CheckResult"),
    "run_check": ("check", "run"),
    "CheckSettings": ("check_config", "CheckSettings"),
    "Filters": ("steps", "Filters"),
    "load_steps": ("steps", "load_steps"),
}

__all__ = [
    "AnalyzeOptions",
    "CheckResult",
    "CheckSettings",
    "Filters",
    "__version__",
    "analyze",
    "create_baseline",
    "load_priced_steps",
    "load_steps",
    "run_check",
    "write_steps",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("costscope")
        except PackageNotFoundError:  # running from a source tree without installing
            value = "0.0.0+unknown"
    elif name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(import_module(f".{module}", __name__), attribute)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
