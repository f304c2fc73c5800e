"""`check --format json`: the CheckResult contract plus the verdict sentence, money rounded to nano-dollars."""

from __future__ import annotations

import orjson

from ..check import CheckResult
from .check_text import headline
from .json import _round_floats


def render_check_json(result: CheckResult, width: int = 80) -> str:
    data = result.to_dict()
    data = {
        **{k: data[k] for k in ("costscope_version", "check_version", "verdict")},
        "summary": headline(result),
        **data,
    }
    return orjson.dumps(_round_floats(data), option=orjson.OPT_INDENT_2).decode() + "\n"
