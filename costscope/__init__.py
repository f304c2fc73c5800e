"""costscope: where the money goes in LLM agent traces, what a change would save, and a CI gate."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("costscope")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

from .api import AnalyzeOptions, analyze, load_priced_steps, write_steps
from .steps import Filters, load_steps

__all__ = ["AnalyzeOptions", "Filters", "__version__", "analyze", "load_priced_steps", "load_steps", "write_steps"]
