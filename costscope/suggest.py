"""`costscope suggest`: the findings' fixes as one policy file that `costscope simulate` accepts.

Each block is the policy snippet of the finding named in the comment above it, in the order the simulator
applies policies; findings no policy fixes are listed in comments at the end. The text is deterministic (no
date, no path of the machine): the same traces give the same file.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.compute as pc
import yaml

from .attribution import llm_calls
from .config import validate_mapping
from .errors import ConfigError
from .findings import Finding, FindOptions, find
from .findings.base import usd
from .simulate.policy_file import PolicyFileModel
from .simulate.registry import STACK

if TYPE_CHECKING:
    from .api import PricedSteps

NAME = "suggested"
COMMENT_WIDTH = 100


@dataclass(frozen=True)
class Suggestion:
    """The findings and the policy file text that fixes those it can."""

    findings: list[Finding]
    text: str

    @property
    def policies(self) -> list[str]:
        """The policy keys the file enables, in stack order."""
        loaded = yaml.safe_load(self.text) or {}
        return [module.NAME for module in STACK if module.NAME in loaded]

    @property
    def usd_at_stake(self) -> float:
        """Sum of the at-stake dollars of the findings the file fixes (they may overlap: simulate gives the joint)."""
        return sum(f.usd_at_stake for f in self.findings if f.policy_key in self.policies)


def build_suggestion(steps: PricedSteps, options: FindOptions | None = None) -> Suggestion:
    """Find the leaks in the priced steps and write the policy file that fixes them."""
    findings = find(steps, options or FindOptions())
    calls = llm_calls(steps.table)
    spend = float(np.nansum(pc.fill_null(calls["cost_total"], np.nan).to_numpy(zero_copy_only=False)))
    return Suggestion(findings, suggest_policy(findings, calls=calls.num_rows, spend=spend))


def suggest_policy(findings: list[Finding], calls: int | None = None, spend: float | None = None) -> str:
    """The policy file (YAML text) enabling the policy of every finding that has one."""
    by_key: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.policy_key is not None:
            by_key.setdefault(finding.policy_key, []).append(finding)
    over = f" over {calls:,} LLM calls costing {usd(spend)}" if calls is not None and spend is not None else ""
    lines = [
        f"# Suggested by costscope from {len(findings)} findings{over}.",
        "# Each block fixes the finding named above it; delete a block to leave that leak alone, or tune it",
        "# (see `costscope policy-schema`). What it would save: costscope simulate PATH... --policy THIS_FILE",
        "version: 1",
        f"name: {NAME}",
        "",
    ]
    for module in STACK:
        if module.NAME in by_key:
            lines += _block(module.NAME, by_key.pop(module.NAME))
    for key, unknown in sorted(by_key.items()):
        lines += _comment(f"Policy `{key}` is not known to this version of costscope; left out:", "")
        lines += [line for f in unknown for line in _about(f)] + [""]
    unfixed = [f for f in findings if f.policy_key is None]
    if unfixed:
        lines += ["# Not fixed by a policy: look at the source of these."]
        lines += [line for f in unfixed for line in _about(f)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _block(key: str, findings: list[Finding]) -> list[str]:
    """The comment naming the finding, then its snippet; a snippet this version's schema rejects is left out."""
    first = findings[0]
    assert first.policy is not None
    settings: dict[str, Any] = first.policy[key]
    out = [line for f in findings for line in _about(f)]
    try:
        validate_mapping({"version": 1, key: settings}, PolicyFileModel, "policy file", "suggested policy")
    except ConfigError as exc:
        return [*out, *_comment(f"Left out: its `{key}` settings do not validate ({exc.message}).", ""), ""]
    snippet = yaml.safe_dump({key: settings}, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return [*out, *snippet.rstrip("\n").split("\n"), ""]


def _about(finding: Finding) -> list[str]:
    head = f"{finding.title} ({finding.kind}): {usd(finding.usd_at_stake)} at stake."
    return _comment(head, "") + _comment(finding.detail, "  ")


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=COMMENT_WIDTH,
        initial_indent="# " + indent,
        subsequent_indent="# " + indent,
        break_on_hyphens=False,
        break_long_words=False,
    )
