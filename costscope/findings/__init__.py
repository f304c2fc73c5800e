"""Cost leaks in the user's traces, each with evidence, the dollars at stake and the policy that would fix it.

One module per detector, run in the order of DETECTORS; each exposes `KIND`, a frozen `Params` dataclass (its
thresholds, with documented defaults) and `detect(calls, params) -> Finding | None`. Every figure is a column
operation over the priced step table; dollars at stake are conservative and say how they were computed
(`Finding.basis`). `costscope suggest` turns the findings' policy snippets into one policy file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..pricing import PriceBook
from . import (
    context_bloat,
    frontier_overuse,
    oversized_tool_results,
    redundant_calls,
    runaway_traces,
    uncached_prefix,
    usage_mismatch,
)
from .base import Calls, Finding

if TYPE_CHECKING:
    from ..api import PricedSteps

DETECTORS: tuple[ModuleType, ...] = (
    context_bloat,
    frontier_overuse,
    redundant_calls,
    uncached_prefix,
    oversized_tool_results,
    runaway_traces,
    usage_mismatch,
)
KINDS: tuple[str, ...] = tuple(module.KIND for module in DETECTORS)


@dataclass(frozen=True)
class FindOptions:
    """Which detectors run and their thresholds (each detector's `Params` documents its defaults)."""

    context_bloat: context_bloat.Params = field(default_factory=context_bloat.Params)
    frontier_overuse: frontier_overuse.Params = field(default_factory=frontier_overuse.Params)
    redundant_calls: redundant_calls.Params = field(default_factory=redundant_calls.Params)
    uncached_prefix: uncached_prefix.Params = field(default_factory=uncached_prefix.Params)
    oversized_tool_results: oversized_tool_results.Params = field(default_factory=oversized_tool_results.Params)
    runaway_traces: runaway_traces.Params = field(default_factory=runaway_traces.Params)
    usage_mismatch: usage_mismatch.Params = field(default_factory=usage_mismatch.Params)
    kinds: tuple[str, ...] = KINDS
    """The detectors to run."""
    min_usd: float = 0.0
    """Findings with less at stake (USD) are dropped (usage mismatches, which are not savings, are always kept)."""
    min_share: float = 0.001
    """Findings with less at stake than this share of the priced spend are dropped (default 0.1%: noise)."""
    max_evidence: int = 5
    """Evidence lines per finding."""


def find(steps: PricedSteps, options: FindOptions = FindOptions()) -> list[Finding]:
    """The cost leaks in the priced step table, the most dollars at stake first."""
    return find_in_table(steps.table, steps.book, options)


def find_in_table(table: pa.Table, book: PriceBook, options: FindOptions = FindOptions()) -> list[Finding]:
    """`find` over a priced step table and the price book that priced it (for what-if repricing)."""
    unknown = [k for k in options.kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown finding kinds: {', '.join(unknown)}")
    calls = Calls(table, book, options.max_evidence)
    if calls.n == 0:
        return []
    floor = max(options.min_usd, options.min_share * float(np.nansum(calls.cost)))
    found: list[Finding] = []
    for module in DETECTORS:
        if module.KIND not in options.kinds:
            continue
        params: Any = getattr(options, module.KIND)
        finding: Finding | None = module.detect(calls, params)
        if finding is None:
            continue
        if finding.kind == usage_mismatch.KIND or finding.usd_at_stake >= floor:
            found.append(finding)
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(found, key=lambda f: (-f.usd_at_stake, order[f.kind]))


__all__ = ["DETECTORS", "KINDS", "FindOptions", "Finding", "find", "find_in_table"]
