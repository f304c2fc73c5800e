"""costscope: where the money goes in LLM agent traces, what a change would save, and a CI gate."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("costscope")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

from .api import AnalyzeOptions, analyze, load_priced_steps, write_steps
from .baseline import create as create_baseline
from .check import CheckResult
from .check import run as run_check
from .check_config import CheckSettings
from .steps import Filters, load_steps

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
