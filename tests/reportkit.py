"""Four hand-priced traces shared by the report and forecast tests.

Prices (USD per million tokens, from a user price file): m-a input 1, output 2; m-b input 1, output 2.
  t1 2026-10-01 planner  m-a 1000 in                       = $0.001
  t2 2026-10-02 planner  m-a 2000 in                       = $0.002
  t3 2026-10-03 coder    m-a 1000 in; m-b 1000 in 500 out  = $0.001 + $0.002 = $0.003
  t4 2026-10-05 coder    m-a 2000 in; m-b 2000 in 1000 out = $0.002 + $0.004 = $0.006
Mean cost per trace $0.003; the m-b slice costs [0, 0, 0.002, 0.004] (mean $0.0015) and carries
[0, 0, 1500, 3000] tokens (mean 1125) in [0, 0, 1, 1] calls (mean 0.5).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from costscope import api

PRICES = """version: 1
models:
  - model: m-a
    input: 1.0
    output: 2.0
  - model: m-b
    input: 1.0
    output: 2.0
"""


def call(trace: str, day: int, model: str, prompt: int, completion: int = 0, agent: str = "coder", n: int = 0) -> Any:
    return {
        "timestamp": f"2026-10-{day:02d}T00:00:0{n}Z",
        "trace_id": trace,
        "agent": agent,
        "response": {
            "id": f"{trace}-{model}-{n}",
            "object": "chat.completion",
            "model": model,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
        },
    }


CALLS = [
    call("t1", 1, "m-a", 1000, agent="planner"),
    call("t2", 2, "m-a", 2000, agent="planner"),
    call("t3", 3, "m-a", 1000),
    call("t3", 3, "m-b", 1000, 500, n=1),
    call("t4", 5, "m-a", 2000),
    call("t4", 5, "m-b", 2000, 1000, n=1),
]


def write_inputs(tmp_path: Path, calls: list[Any] | None = None) -> tuple[str, str]:
    """The traces (JSON Lines) and the price file; returns their paths."""
    traces = tmp_path / "calls.jsonl"
    traces.write_text("".join(json.dumps(c) + "\n" for c in calls or CALLS), encoding="utf-8")
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES, encoding="utf-8")
    return str(traces), str(prices)


def priced_steps(tmp_path: Path, calls: list[Any] | None = None) -> api.PricedSteps:
    traces, prices = write_inputs(tmp_path, calls)
    return api.load_priced_steps([traces], api.AnalyzeOptions(prices=prices))


def empty_policy(tmp_path: Path) -> str:
    path = tmp_path / "identity.yaml"
    path.write_text("version: 1\n", encoding="utf-8")
    return str(path)
