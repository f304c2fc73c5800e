"""Settings of `costscope check`: command-line options over a config file, validated once.

Defaults can live in `[check]` of a `costscope.toml` or in `[tool.costscope.check]` of `pyproject.toml`
(looked up in the working directory, in that order; `--config FILE` names one). Keys are the long option
names, kebab-case or snake_case (`max-increase = "10%"`); paths in a file are relative to that file.
Command-line options win over the file.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .baseline import DIMENSIONS
from .errors import ConfigError

METRICS: dict[str, str] = {
    "cost_per_trace_mean": "cost per trace (mean)",
    "cost_per_trace_p50": "cost per trace (p50)",
    "cost_per_trace_p95": "cost per trace (p95)",
    "total": "total cost",
    "tokens_per_trace": "tokens per trace (mean)",
}
"""The metric a check compares, with its label."""
METRIC_ALIASES = {
    "mean": "cost_per_trace_mean",
    "p50": "cost_per_trace_p50",
    "p95": "cost_per_trace_p95",
    "cost_total": "total",
    "tokens": "tokens_per_trace",
}
DEFAULT_MAX_INCREASE = 0.10
"""The limit when none is configured: +10% on the metric."""
CONFIG_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("costscope.toml", ("check",)),
    ("pyproject.toml", ("tool", "costscope", "check")),
)


class CheckSettings(BaseModel):
    """What `check` compares and where it draws the line."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    baseline: str | None = None
    metric: str = "cost_per_trace_mean"
    max_increase: float | None = Field(default=None, ge=0, description="fraction: 0.10 is +10%")
    max_increase_usd: float | None = Field(default=None, ge=0)
    max_cost_per_trace: float | None = Field(default=None, gt=0, description="USD budget on the current run")
    by: tuple[str, ...] = ()
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    min_traces: int = Field(default=30, ge=2, description="fewer traces on either side: no confidence interval")
    fail_on_unpriced: bool = False
    prices: str | None = None

    @field_validator("metric", mode="before")
    @classmethod
    def _metric(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        name = value.strip().lower().replace("-", "_")
        name = METRIC_ALIASES.get(name, name)
        if name not in METRICS:
            close = difflib.get_close_matches(name, list(METRICS) + list(METRIC_ALIASES), n=1)
            guess = f"did you mean {close[0]}? " if close else ""
            raise ValueError(f"unknown metric {value!r}; {guess}choose from {', '.join(METRICS)}")
        return name

    @field_validator("max_increase", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not text.endswith("%"):
                raise ValueError(f"write the increase as a percentage, e.g. {text}%")
            try:
                return float(text[:-1].lstrip("+")) / 100
            except ValueError:
                raise ValueError(f"{value!r} is not a percentage such as 10%") from None
        return value

    @field_validator("by", mode="before")
    @classmethod
    def _by(cls, value: Any) -> Any:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        keys = tuple(part.strip() for item in items for part in str(item).split(",") if part.strip())
        for key in keys:
            if key not in DIMENSIONS:
                raise ValueError(f"cannot check by {key!r}; a baseline keeps {', '.join(DIMENSIONS)}")
        return tuple(dict.fromkeys(keys))

    @model_validator(mode="after")
    def _usd_needs_money(self) -> CheckSettings:
        if self.max_increase_usd is not None and self.metric == "tokens_per_trace":
            raise ValueError("max-increase-usd applies to cost metrics; limit tokens_per_trace with max-increase")
        return self

    @property
    def stat(self) -> str:
        """mean, p50, p95 or sum."""
        return {"cost_per_trace_p50": "p50", "cost_per_trace_p95": "p95", "total": "sum"}.get(self.metric, "mean")

    @property
    def money(self) -> bool:
        return self.metric != "tokens_per_trace"

    @property
    def budget_stat(self) -> str:
        """The statistic `max_cost_per_trace` caps: the metric's, or the mean for total and tokens."""
        return self.stat if self.stat in ("p50", "p95") else "mean"


def _table(path: Path, keys: tuple[str, ...]) -> tuple[dict[str, Any] | None, str]:
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: [{'.'.join(keys)}] must be a table")
    return data, text


def _line(text: str, header: str, key: str) -> int | None:
    """The 1-based line of `key = ...` in table `header` of a TOML text (approximate: first match)."""
    inside = False
    names = {key, key.replace("_", "-")}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.strip("[] ").replace(" ", "") == header
        elif inside and (m := re.match(r"([\w-]+)\s*=", stripped)) and m.group(1) in names:
            return number
    return None


def _from_file(config: str | None, cwd: Path) -> tuple[dict[str, Any], str | None, str, str]:
    """The config table (keys snake_case, paths resolved), its file name, its text and its header."""
    candidates = CONFIG_TABLES
    if config is not None:
        if not (cwd / config).is_file():
            raise ConfigError(f"no such config file: {config}")
        keys = CONFIG_TABLES[1][1] if Path(config).name == "pyproject.toml" else CONFIG_TABLES[0][1]
        candidates = ((config, keys),)
    for name, keys in candidates:
        path = cwd / name
        if not path.is_file():
            continue
        table, text = _table(path, keys)
        if table is None:
            if config is not None:
                raise ConfigError(f"{name}: no [{'.'.join(keys)}] table")
            continue
        values = {k.replace("-", "_"): v for k, v in table.items()}
        for key in ("baseline", "prices"):
            if isinstance(values.get(key), str):
                values[key] = str(path.parent / values[key]) if not Path(values[key]).is_absolute() else values[key]
        return values, name, text, ".".join(keys)
    return {}, None, "", ""


def _message(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    message = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"]).removeprefix("Value error, ")
    return key, message


def load_settings(options: dict[str, Any], config: str | None = None, cwd: Path | None = None) -> CheckSettings:
    """Merge command-line `options` (None or empty = not given) over the config file and validate."""
    values, source, text, header = _from_file(config, cwd or Path.cwd())
    if source is not None:
        try:
            CheckSettings.model_validate(values)
        except ValidationError as exc:
            key, message = _message(exc)
            line = _line(text, header, key.split(".")[0]) if key else None
            where = f"{source}:{line}" if line else source
            raise ConfigError(f"{where}: [{header}] {key or '(table)'}: {message}") from exc
    given = {k: v for k, v in options.items() if v is not None and v != () and v != []}
    try:
        return CheckSettings.model_validate({**values, **given})
    except ValidationError as exc:
        key, message = _message(exc)
        option = f"--{key.replace('_', '-')}" if key in given else (f"{source}: {key}" if key else "options")
        raise ConfigError(f"{option}: {message}") from exc
