"""Oversized tool results: tool outputs above a cap, paid for by the call that reads them and every later call
of the trace that re-sends them in its history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..parsers.segments import TOOL_RESULT
from .base import Calls, Finding, count, usd

KIND = "oversized_tool_results"


@dataclass(frozen=True)
class Params:
    max_tokens: int = 1000
    """A tool result longer than this (recounted tokens) is oversized; the suggested truncation caps it here."""
    marker_tokens: int = 10
    """Tokens of the note a truncated result keeps (the truncation policy's default)."""


def detect(calls: Calls, params: Params) -> Finding | None:
    x = calls.content
    limit = params.max_tokens + params.marker_tokens
    big = np.flatnonzero((x.kind == TOOL_RESULT) & (x.tokens > limit))
    if not len(big):
        return None
    excess = (x.tokens[big] - limit) / x.tokens[big]
    saved = np.nan_to_num(x.usd[big]) * excess
    at_stake = float(saved.sum())
    if at_stake <= 0:
        return None
    frame = pd.DataFrame(
        {
            "segment": big,
            "call": calls.segment_call[big],
            "hash": x.hash.take(big).to_numpy(zero_copy_only=False),
            "tool": x.tool.take(big).fill_null("(unnamed)").to_numpy(zero_copy_only=False),
            "tokens": x.tokens[big],
            "saved": saved,
        }
    )
    results = frame.groupby("hash", sort=False).agg(
        first=("call", "min"), tool=("tool", "first"), tokens=("tokens", "max"), saved=("saved", "sum")
    )
    results = results.sort_values(["saved", "first"], ascending=[False, True], kind="stable")
    tools = frame.groupby("tool").agg(results=("hash", "nunique"), saved=("saved", "sum"))
    tools = tools.sort_values("saved", ascending=False, kind="stable")
    top = results.head(calls.max_evidence)
    notes = [f"{tool}, {tokens:,.0f} tokens" for tool, tokens in zip(top["tool"], top["tokens"], strict=True)]
    by_tool = ", ".join(f"{tool} {n}" for tool, n in zip(tools.index[:3], tools["results"][:3], strict=True))
    traces = int(len(np.unique(calls.trace[frame["call"].to_numpy()])))
    return Finding(
        kind=KIND,
        title="Oversized tool results re-sent in the context",
        usd_at_stake=at_stake,
        basis=f"for every call that sent or re-sent a tool result over {params.max_tokens:,} tokens: the input "
        f"dollars of its tokens beyond the cap (+{params.marker_tokens} for the truncation note), at the rate those "
        "tokens were billed (cache reads at the cache-read rate)",
        evidence=calls.evidence(top["first"].to_numpy(), notes),
        detail=f"{count(len(results), 'tool result')} above {params.max_tokens:,} tokens (largest "
        f"{results['tokens'].max():,.0f}; by tool: {by_tool}) were sent {count(len(big), 'time')}, re-sends "
        f"included; capping them saves {usd(at_stake)}.",
        policy=policy(params),
        calls=int(frame["call"].nunique()),
        traces=traces,
        figures={
            "results": len(results),
            "segments": len(big),
            "max_tokens": params.max_tokens,
            "by_tool": [
                {"tool": str(tool), "results": int(row["results"]), "usd_at_stake": float(row["saved"])}
                for tool, row in tools.iterrows()
            ],
        },
    )


def policy(params: Params) -> dict[str, object]:
    return {"truncation": {"max_tokens": params.max_tokens}}
