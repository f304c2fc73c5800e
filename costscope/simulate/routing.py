"""Send calls to another model by rule (first match wins); a share may fail and re-run on the original model."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from ..errors import ConfigError
from ..pricing import UNDATED_PRICE_TIME
from .policy import Settings
from .replay import Outcome, Replay
from .routing_rules import RoutingWhen, column_values, first_matches
from .token_ratios import Ratios, canonical, genai_identity, per_distinct, per_pair, tokenizer_family

NAME = "routing"

Ratio = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]


class RoutingRule(Settings):
    """One rule: which calls, and the model they go to."""

    name: str | None = Field(default=None, description="Label in reports (default: `rule N`).")
    when: RoutingWhen = Field(default_factory=RoutingWhen, description="Conditions; all must hold.")
    to: str = Field(min_length=1, description="Target model, as the price book knows it (e.g. gpt-4.1-mini).")
    provider: str | None = Field(
        default=None, description="Target provider (default: as the data or genai-prices names it for the model)."
    )
    output_ratio: Ratio = Field(
        default=1.0, description="Multiplies a routed call's output tokens (1.0: the answer keeps its length in text)."
    )
    escalation_rate: Share | None = Field(
        default=None, description="This rule's escalation rate (default: the policy's `escalation_rate`)."
    )


class RoutingConfig(Settings):
    """Routing rules, the escalation rate of a cheap-first cascade, and measured tokenizer ratios."""

    rules: list[RoutingRule] = Field(min_length=1, description="Ordered rules; the first rule a call matches wins.")
    escalation_rate: Share = Field(
        default=0.0,
        description="Share of routed calls (0..1) whose answer fails and is re-run on the original model; "
        "both attempts are paid.",
    )
    input_token_ratios: dict[str, Ratio] = Field(
        default_factory=dict,
        description="Billed input tokens per cl100k_base token, by model glob (e.g. measured with a vendor's "
        "count-tokens endpoint); overrides the ratio seen in the data and the built-in defaults.",
    )


Config = RoutingConfig


@dataclass(frozen=True)
class _Target:
    label: str
    model: str
    provider: str | None
    canonical: str
    family: str | None


def _target(index: int, rule: RoutingRule, replay: Replay) -> _Target:
    """The rule's target model with its provider: as given, else as the data names it with that model, else as
    genai-prices or the price file does (None when nobody knows)."""
    provider = rule.provider or _seen_provider(replay, rule.to)
    if provider is None:
        identity = genai_identity(None, rule.to)
        provider = identity[0] if identity else None
    if provider is None:
        provider = next(
            (r.provider for r in replay.book.rules if r.provider and fnmatch.fnmatchcase(rule.to, r.model)), None
        )
    return _Target(
        rule.name or f"rule {index + 1}", rule.to, provider, canonical(provider, rule.to), tokenizer_family(rule.to)
    )


def _seen_provider(replay: Replay, model: str) -> str | None:
    """The provider the data most often names with `model` (ties: alphabetical), if the data has that model."""
    found = pc.filter(replay.base["provider"], pc.equal(replay.base["model"], model)).drop_null()
    if len(found) == 0:
        return None
    counts = pd.Series(found.to_pylist()).value_counts()
    return str(min(counts.index[counts == counts.max()]))


# ---------------------------------------------------------------------------------------------- prices


def _unpriced_routed(targets: list[_Target], rows: np.ndarray, rule: np.ndarray, replay: Replay) -> int:
    """Routed calls the price book cannot price on the target at their date (they show as unpriced).

    A target priced at none of its calls' dates nor at the latest prices is a typo or a missing price rule: a
    ConfigError rather than calls that would silently cost nothing."""
    start = replay.calls["start"].to_numpy()[rows]
    day = np.where(np.isnan(start), -1, np.floor(np.nan_to_num(start) / 86_400e6)).astype(np.int64)
    keys = pd.DataFrame({"rule": rule, "tier": column_values(replay.calls, "service_tier", rows), "day": day})
    group = keys.groupby(["rule", "tier", "day"], dropna=False, sort=False).ngroup().to_numpy()
    priced = np.array(
        [
            replay.book.resolve(targets[r].provider, targets[r].model, t, _price_time(d)) is not None
            for r, t, d in keys.drop_duplicates().itertuples(index=False)
        ],
        dtype=bool,
    )
    for index, target in enumerate(targets):
        if priced[group[rule == index]].any():
            continue
        if replay.book.resolve(target.provider, target.model, None, UNDATED_PRICE_TIME) is None:
            suggestion = replay.book.suggest(target.model)
            where = f" (provider {target.provider})" if target.provider else ""
            raise ConfigError(
                f"routing: {target.label}: no price for target model {target.model!r}{where}",
                hint=(f"did you mean {suggestion}? " if suggestion else "") + "or add it to a price file (--prices)",
            )
    return int((~priced[group]).sum())


def _price_time(day: int) -> datetime:
    """The moment a call of `day` (days since the epoch, -1: undated) is priced at, as `price_table` does."""
    return UNDATED_PRICE_TIME if day < 0 else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(day))


# ---------------------------------------------------------------------------------------------- routing


@dataclass
class _Tokens:
    """How the tokens of the routed calls change: factors per routed call and how each was found."""

    input: np.ndarray
    output: np.ndarray
    cross: np.ndarray
    """The call changes tokenizer family (its tokens are re-tokenized)."""
    content: np.ndarray
    """Re-tokenized from its logged content (recounted tokens), not from a model-level ratio."""
    ratios: Ratios | None


def _token_factors(
    config: RoutingConfig, replay: Replay, rows: np.ndarray, rule: np.ndarray, targets: list[_Target]
) -> _Tokens:
    """Input: unchanged within a tokenizer family; across families, recounted tokens x the target's ratio when
    the call logged its content, else recorded tokens x target ratio / source ratio. Output: the same
    model-level ratio (the answer keeps its length in text) x the rule's `output_ratio`."""
    calls = replay.calls
    models, providers = calls["model"].take(rows), calls["provider"].take(rows)
    source_family = per_distinct(models, tokenizer_family)
    target_family = np.array([t.family for t in targets], dtype=object)[rule]
    cross = ~((source_family == target_family) & pd.notna(source_family))
    output_ratio = np.array([r.output_ratio for r in config.rules], dtype=np.float64)[rule]
    tokens = _Tokens(np.ones(len(rows)), output_ratio, cross, np.zeros(len(rows), dtype=bool), None)
    if not cross.any():
        return tokens
    ratios = tokens.ratios = Ratios(config.input_token_ratios, replay)
    per_rule = np.ones(len(targets))
    for index in np.unique(rule[cross]).tolist():
        per_rule[index] = ratios.ratio(targets[index].provider, targets[index].model)
    target = per_rule[rule]
    source = np.ones(len(rows))
    source[cross] = per_pair(providers[cross], models[cross], ratios.ratio).astype(np.float64)
    scale = ratios.scale[calls["origin"].to_numpy()[rows]]
    recorded = ((calls["added_by"] == "") & calls["has_content"]).to_numpy()[rows]
    tokens.content = cross & recorded & np.isfinite(scale) & (scale > 0)
    tokens.input = np.where(cross, target / np.where(tokens.content, scale, source), 1.0)
    tokens.output = np.where(cross, output_ratio * target / source, output_ratio)
    return tokens


def _move(replay: Replay, rows: np.ndarray, rule: np.ndarray, targets: list[_Target], tokens: _Tokens) -> None:
    """Rewrite the routed calls: target model and provider, re-tokenized input (cache reads and writes keep
    their share of it), output scaled; service tier and times unchanged."""
    calls = replay.calls
    mask = np.zeros(len(calls), dtype=bool)
    mask[rows] = True
    for name in ("model", "provider"):
        current = pa.array(calls[name])
        values = pa.array([getattr(t, name) for t in targets], current.type).take(pa.array(rule))
        dtype: Any = calls[name].dtype
        calls[name] = pd.array(pc.replace_with_mask(current, pa.array(mask), values), dtype=dtype)
    for names, factor in (
        (("input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens"), tokens.input),
        (("output_tokens", "reasoning_tokens"), tokens.output),
    ):
        for name in names:
            column = calls[name].to_numpy(copy=True)
            column[rows] *= factor
            calls[name] = column


def _draws(replay: Replay, rows: np.ndarray) -> np.ndarray:
    """Per call of `rows`, a number in [0, 1) fixed by the call's identity (its file's name and line — the name
    without its directory, so that the same file read by another path draws the same; for a call an earlier
    policy added, also that policy and the call's rank among its additions from the same recorded call), so a
    call escalates or not whatever else the data holds, and a higher rate only adds escalations."""
    calls = replay.calls
    origin = calls["origin"].to_numpy()[rows]
    files = pc.dictionary_encode(replay.base["source"]).combine_chunks()
    names = [PurePath(name).name for name in files.dictionary.to_pylist()]
    file_hash = pd.util.hash_array(np.array(names, dtype=object))
    source = file_hash[files.indices.to_numpy(zero_copy_only=False)[origin]]
    line = replay.base["line"].to_numpy(zero_copy_only=False)[origin].astype(np.uint64)
    added = column_values(calls, "added_by", rows)
    key = source ^ (line * np.uint64(0x9E3779B97F4A7C15))
    if (added != "").any():
        rank = calls.groupby(["origin", "added_by"], sort=False).cumcount().to_numpy()[rows].astype(np.uint64)
        key ^= pd.util.hash_array(added) ^ (rank * np.uint64(0xC2B2AE3D27D4EB4F))
    mixed = pd.util.hash_array(key)
    draws: np.ndarray = (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return draws


def _escalations(config: RoutingConfig, replay: Replay, rows: np.ndarray, rule: np.ndarray) -> np.ndarray:
    """Which routed calls fail and are re-run on their original model (draw below the rule's rate)."""
    rates = np.array([_escalation_rate(config, r) for r in config.rules])[rule]
    if not len(rows) or not (rates > 0).any():
        return np.zeros(len(rows), dtype=bool)
    escalate: np.ndarray = _draws(replay, rows) < rates
    return escalate


def _escalation_rate(config: RoutingConfig, rule: RoutingRule) -> float:
    return config.escalation_rate if rule.escalation_rate is None else rule.escalation_rate


def _reruns(before: pd.DataFrame) -> pd.DataFrame:
    """The re-runs of escalated calls: the call as it was before routing, starting when the failed attempt ended
    (assumed to take the recorded duration) and lasting as long."""
    rows = before.copy()
    start = rows["end"].where(rows["end"].notna(), rows["start"])
    rows["end"] = start + (rows["end"] - rows["start"])
    rows["start"] = start
    return rows


def apply(config: RoutingConfig, replay: Replay) -> None:
    """Route the live calls by the first rule each matches (calls already on the target stay), re-run the
    escalated ones on their original model, and report the share of calls and recorded spend moved."""
    targets = [_target(i, rule, replay) for i, rule in enumerate(config.rules)]
    rule_of = first_matches([rule.when for rule in config.rules], replay)
    calls = replay.calls
    matched = np.flatnonzero(rule_of >= 0)
    current = per_pair(calls["provider"].take(matched), calls["model"].take(matched), canonical)
    target_of = np.array([t.canonical for t in targets], dtype=object)[rule_of[matched]]
    rows = matched[current != target_of]
    rule = rule_of[rows]
    unpriced = _unpriced_routed(targets, rows, rule, replay)
    tokens = _token_factors(config, replay, rows, rule, targets)
    live_calls = int(replay.live.sum())
    escalated = _escalations(config, replay, rows, rule)
    reruns = _reruns(calls.iloc[rows[escalated]])
    before = calls[["origin", "model", "added_by", "reasoning_tokens"]].iloc[rows]
    _move(replay, rows, rule, targets, tokens)
    if len(reruns):
        replay.add_calls(reruns, NAME)
    result = _Result(targets, rule_of, rule, before, escalated, tokens, live_calls, unpriced)
    _report(replay.outcomes[NAME], config, replay, result)


# ---------------------------------------------------------------------------------------------- outcome


@dataclass
class _Result:
    targets: list[_Target]
    rule_of: np.ndarray
    """Per call: the first rule it matched (-1: none), routed or already on the target."""
    rule: np.ndarray
    """Per routed call: its rule."""
    before: pd.DataFrame
    """The routed calls as they were before routing: origin, model, added_by, reasoning_tokens."""
    escalated: np.ndarray
    tokens: _Tokens
    live_calls: int
    unpriced: int


def _report(outcome: Outcome, config: RoutingConfig, replay: Replay, result: _Result) -> None:
    """Risks: share of live calls and of recorded spend moved to another model, escalations; details per rule."""
    before, tokens = result.before, result.tokens
    recorded = (before["added_by"] == "").to_numpy()
    cost = pc.fill_null(replay.base["cost_total"], np.nan).to_numpy(zero_copy_only=False)
    total = float(np.nansum(cost))
    moved = float(np.nansum(cost[before["origin"].to_numpy()[recorded]]))
    escalated = int(result.escalated.sum())
    outcome.risks.update(
        {
            "calls_routed_share": len(before) / result.live_calls if result.live_calls else 0.0,
            "spend_routed_share": moved / total if total > 0 else 0.0,
            "escalated_calls": escalated,
        }
    )
    outcome.details.update(
        {
            "rules": [_rule_details(index, config, result) for index in range(len(config.rules))],
            "escalation": {
                "calls_escalated": escalated,
                "realized_rate": escalated / len(before) if len(before) else None,
            },
            "tokenizer": {
                "calls_same_family": int((~tokens.cross).sum()),
                "calls_retokenized_from_content": int(tokens.content.sum()),
                "calls_scaled_by_model_ratio": int((tokens.cross & ~tokens.content).sum()),
                "ratios": tokens.ratios.used if tokens.ratios else {},
            },
            "routed_calls_added_by_earlier_policies": int((~recorded).sum()),
            "unpriced_routed_calls": result.unpriced,
        }
    )
    if len(before):
        outcome.assumptions.extend(_assumptions(config, result))
        outcome.not_evaluated.append(
            "Answer quality on the target models: the traces hold only the recorded models' answers; "
            "escalation_rate stands for the share of routed calls that fail."
        )
    if result.unpriced:
        outcome.not_evaluated.append(
            f"{result.unpriced} routed calls have no price for their target model at their date and service tier: "
            "they are listed as unpriced, not costed."
        )


def _rule_details(index: int, config: RoutingConfig, result: _Result) -> dict[str, Any]:
    target, mine = result.targets[index], result.rule == index
    sources = result.before.loc[mine, "model"].fillna("(no model)").value_counts()
    matched = int((result.rule_of == index).sum())
    return {
        "rule": target.label,
        "to": target.model,
        "provider": target.provider,
        "calls_matched": matched,
        "calls_routed": int(mine.sum()),
        "calls_already_on_target": matched - int(mine.sum()),
        "escalation_rate": _escalation_rate(config, config.rules[index]),
        "calls_escalated": int(result.escalated[mine].sum()),
        "from_models": {str(m): int(n) for m, n in sorted(sources.items(), key=lambda item: (-item[1], item[0]))},
    }


def _assumptions(config: RoutingConfig, result: _Result) -> list[str]:
    tokens = result.tokens
    out = [
        "A routed call keeps its service tier, its recorded times and the share of its input read from or written "
        "to the prompt cache: enable prompt_cache in the same policy file to model the target model's cold cache.",
        "A routed call's answer keeps its length in text: its output tokens change only with the tokenizer and the "
        "rule's output_ratio.",
    ]
    if same := int((~tokens.cross).sum()):
        out.append(
            f"{same} calls routed within a tokenizer family (e.g. gpt-4.1 to gpt-4.1-mini) keep their input tokens: "
            "the same tokenizer counts the same text alike."
        )
    if content := int(tokens.content.sum()):
        out.append(
            f"{content} calls routed to another tokenizer family were re-tokenized from their logged content: "
            "recounted tokens x the target model's billed tokens per recounted token."
        )
    if scaled := int((tokens.cross & ~tokens.content).sum()):
        out.append(
            f"{scaled} calls routed to another tokenizer family logged no content: their recorded tokens were "
            "scaled by the target's tokens-per-token ratio over the source's."
        )
    for model, used in (tokens.ratios.used if tokens.ratios else {}).items():
        if used["assumed"]:
            out.append(
                f"Assumed {used['ratio']:.2f} billed tokens per cl100k_base token for {model} ({used['basis']})."
            )
    if np.nansum(result.before["reasoning_tokens"].to_numpy()) > 0:
        out.append(
            "Reasoning tokens of routed calls keep their share of the output; a target that does not reason would "
            "not produce them (lower the rule's output_ratio)."
        )
    if any(_escalation_rate(config, rule) > 0 for rule in config.rules):
        out.append(
            "An escalated call (a stable hash of its file and line below the escalation rate) pays the routed "
            "attempt and a re-run on its original model with its original tokens, starting when the recorded call "
            "ended; detecting the failure (a verifier or judge) is not counted and later calls keep their times."
        )
    for index, rule in enumerate(config.rules):
        if rule.when.uses_output and (result.rule == index).any():
            out.append(
                f"{result.targets[index].label} routes on the recorded output length, which a router cannot know "
                "before the call: its saving is an upper bound."
            )
    return out
