"""The versioned analysis report that every renderer (and later `check`) consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from . import __version__
from .composition import Composition
from .pricing import PriceEntry, Unpriced

if TYPE_CHECKING:  # the findings package (and pandas) is imported only by `analyze --findings`
    from .findings.base import Finding

REPORT_VERSION = 1


@dataclass
class Report:
    inputs: dict[str, Any]
    totals: dict[str, Any]
    by: list[str]
    groups: list[dict[str, Any]]
    traces: dict[str, Any]
    top_traces: list[dict[str, Any]]
    top_steps: list[dict[str, Any]]
    concentration: dict[str, Any]
    cache: dict[str, Any]
    reported: dict[str, Any]
    prices: list[PriceEntry]
    price_sources: list[str]
    unpriced: list[Unpriced]
    warnings: list[str] = field(default_factory=list)
    composition: dict[str, Any] | None = None
    """The short input composition (`Composition.summary`), when some calls carry their request content."""
    findings: list[Finding] | None = None
    """Cost leaks (`analyze --findings`), the most dollars at stake first; None when not asked for."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of DESIGN.md (field names are a public interface)."""
        return {
            "costscope_version": __version__,
            "report_version": REPORT_VERSION,
            "inputs": self.inputs,
            "totals": self.totals,
            "by": self.by,
            "groups": self.groups,
            "traces": self.traces,
            "top_traces": self.top_traces,
            "top_steps": self.top_steps,
            "concentration": self.concentration,
            "cache": self.cache,
            "reported": self.reported,
            "prices": {"sources": self.price_sources, "entries": [e.to_json() for e in self.prices]},
            "unpriced_models": [asdict(u) for u in self.unpriced],
            "composition": self.composition,
            **({"findings": [f.to_dict() for f in self.findings]} if self.findings is not None else {}),
            "warnings": self.warnings,
        }


TOKENS_REPORT_VERSION = 1


@dataclass
class TokensReport:
    """What `costscope tokens` shows: input composition, reconciliation with logged usage, context carry."""

    composition: Composition
    inputs: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "costscope_version": __version__,
            "tokens_report_version": TOKENS_REPORT_VERSION,
            "inputs": self.inputs,
            **self.composition.to_dict(),
            "warnings": self.warnings,
        }
