"""`--format json`: the report's JSON contract, money rounded to nano-dollars for stable output."""

from __future__ import annotations

from typing import Any, Protocol

import orjson


def _round_floats(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9) + 0.0
    if isinstance(value, dict):
        return {k: _round_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round_floats(v) for v in value]
    return value


class _Reported(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def render_json(report: _Reported, width: int = 80) -> str:
    return orjson.dumps(_round_floats(report.to_dict()), option=orjson.OPT_INDENT_2).decode() + "\n"
