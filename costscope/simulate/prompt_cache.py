"""Provider prompt caching replayed from the calls' times and request prefixes: cache reads and writes per call.

Every live call that logged its request is cut into a prefix of content blocks (its segments in prompt order:
tools, system, then the messages; the `framing` segment, a few tokens of chat overhead per message that the
recount puts last, is left out of the prefix). Each block boundary carries a hash of the whole prefix up to it and
the billed tokens up to it (recounted tokens x the call's reported/recounted scale). The calls are then walked in
time order against each provider's rules (`cache_rules`): Anthropic's explicit breakpoints, 20-block lookback,
minimums, 5m/1h TTL refreshed on use and entries readable only once the writing call has answered; OpenAI's and
Gemini's automatic prefix caching; Gemini's explicit caches with their storage fee. The projected reads and
writes replace the calls' cache columns (input tokens unchanged); the engine prices them with genai-prices.

The policy uses the calls as the earlier policies left them: truncated or summarized content changes the prefix
(a segment shortened to `kept` tokens is new content; a run of removed segments is one new block, the summary),
and a routed call looks for its entries under its new model, whose cache is cold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from ..pricing import price_table
from . import cache_rules as rules
from . import cache_walk as walk
from .cache_prefix import CallState, build_prefixes, call_state, per_code, strings_of, value_codes
from .policy import Settings
from .replay import Replay

NAME = "prompt_cache"
CACHE_COLUMNS = ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens")
Breakpoint = Literal["tools", "system", "last_message"]


class PromptCacheAnthropic(Settings):
    """Anthropic (and Claude on Bedrock/Vertex): explicit `cache_control` breakpoints."""

    ttl: Literal["5m", "1h", "recorded"] = Field(
        default="recorded",
        description="Lifetime of the entries the requests write: 5m (1.25x input to write), 1h (2x), or recorded: "
        "1h for the traces whose recorded calls wrote 1-hour entries, else 5m (the API default).",
    )
    breakpoints: list[Breakpoint] = Field(
        default=["system", "last_message"],
        max_length=rules.ANTHROPIC_MAX_BREAKPOINTS,
        description="Where each request puts a cache_control breakpoint: after the tool definitions (tools), after "
        "the system prompt (system), on the last message (last_message, what automatic caching does). Empty: no "
        "caching.",
    )

    agents: Literal["all", "recorded"] | list[str] = Field(
        default="all",
        description="Whose requests carry the breakpoints: all agents, the agents whose recorded calls used the "
        "cache (recorded: caching is opt-in on Anthropic, so the others sent none), or a list of agent names.",
    )

    @field_validator("breakpoints")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a breakpoint position is listed twice")
        return value


class PromptCacheOpenAI(Settings):
    """OpenAI (and Azure OpenAI): automatic caching of prefixes from 1,024 tokens."""

    retention: Literal["in_memory", "24h"] = Field(
        default="in_memory",
        description="in_memory: a prefix stays cached while used at least every in_memory_minutes, one hour at "
        "most; 24h: extended retention (prompt_cache_retention='24h'), up to 24 hours.",
    )
    in_memory_minutes: float = Field(
        default=rules.OPENAI_IN_MEMORY_IDLE_MINUTES,
        gt=0,
        le=60,
        description="Inactivity after which an in-memory prefix is evicted (minutes; the docs say 5 to 10).",
    )


class PromptCacheGemini(Settings):
    """Gemini: implicit caching (2.5 and later) and optional explicit caches (`cachedContents`)."""

    implicit_minutes: float = Field(
        default=rules.GEMINI_IMPLICIT_IDLE_MINUTES,
        gt=0,
        description="How long an implicitly cached prefix survives without use (minutes; undocumented by Google, "
        "an assumption).",
    )
    explicit: bool = Field(
        default=False,
        description="Also create an explicit cache of each request's tools + system prompt; its storage is billed "
        "per token-hour (reported in the details, not in the calls' cost).",
    )
    explicit_ttl_minutes: float = Field(
        default=60.0, gt=0, description="TTL of an explicit cache, extended by each use (minutes; API default 1h)."
    )


class PromptCacheConfig(Settings):
    """Settings of the prompt_cache policy: which provider rules apply how (times in minutes)."""

    mode: Literal["simulate", "off"] = Field(
        default="simulate",
        description="simulate: replay the providers' caches; off: what if caching were turned off (every cache "
        "read and write becomes plain input).",
    )
    scope: Literal["global", "tenant", "trace"] = Field(
        default="global",
        description="Who shares a cache entry: every call of the same provider and model (global: one "
        "organization/workspace), only calls of the same tenant (one workspace per tenant), or of the same trace.",
    )
    stable_system: bool = Field(
        default=False,
        description="What if the system prompt were stable: treat the system prompts of all calls of one agent as "
        "the same content (e.g. a timestamp or ticket id moved out of the system prompt).",
    )
    anthropic: PromptCacheAnthropic = Field(default_factory=PromptCacheAnthropic, description="Anthropic rules.")
    openai: PromptCacheOpenAI = Field(default_factory=PromptCacheOpenAI, description="OpenAI rules.")
    gemini: PromptCacheGemini = Field(default_factory=PromptCacheGemini, description="Gemini rules.")


Config = PromptCacheConfig

ASSUMPTIONS = (
    "A call's prefix is its logged segments in prompt order (tools, system, messages); one segment counts as one "
    "content block for Anthropic's 20-block lookback, and a prefix can only match up to a segment boundary.",
    "The per-message chat framing tokens are left out of the cached prefixes (a few tokens per message).",
    "A cache entry becomes readable when the call that wrote it has ended (the first response token is not "
    "logged): calls running in parallel never read each other's fresh writes.",
    "Cache hit timing uses the calls' start times; OpenAI and Gemini implicit caches are modeled as kept while "
    "used (inactivity window) and matched exactly; OpenAI's overflow above ~15 requests/min per prefix is ignored.",
    "Calls an earlier policy added, calls without logged content or without a start time keep their cache "
    "columns as they were.",
)


@dataclass
class CacheProjection:
    """The cache reads and writes of the calls the policy could evaluate (rows of `replay.calls`)."""

    rows: np.ndarray
    family: np.ndarray
    read: np.ndarray
    write: np.ndarray
    write_1h: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ policy entry point


def apply(config: PromptCacheConfig, replay: Replay) -> None:
    """Recompute the cache reads and writes of the live calls under the providers' rules (or turn caching off)."""
    outcome = replay.outcomes[NAME]
    calls = replay.calls
    if config.mode == "off":
        live = np.flatnonzero(replay.live)
        removed = {name: float(np.nansum(calls[name].to_numpy()[live])) for name in CACHE_COLUMNS}
        for name in CACHE_COLUMNS:
            values = calls[name].to_numpy()[live]
            calls.loc[live, name] = np.where(np.isnan(values), np.nan, 0.0)
        outcome.assumptions.append("Caching turned off: every cache read and write is billed as plain input.")
        outcome.details.update({"mode": "off", "calls": int(len(live)), "removed": removed})
        return
    projection = project(config, replay)
    before = {name: calls[name].to_numpy()[projection.rows].copy() for name in CACHE_COLUMNS}
    write_projection(replay, projection)
    outcome.assumptions.extend(ASSUMPTIONS)
    outcome.assumptions.extend(setting_assumptions(config))
    outcome.not_evaluated.extend(_skipped_sentences(projection.skipped))
    outcome.details.update(_details(config, replay, projection, before))
    if projection.storage.get("token_hours"):
        outcome.not_evaluated.append(
            "Gemini explicit-cache storage (per token-hour) is not in the calls' cost: it is reported in the details "
            "(gemini_explicit.storage_usd)."
        )


def write_projection(replay: Replay, projection: CacheProjection) -> None:
    """Set the projected cache columns of the evaluated calls (input tokens stay as they are)."""
    rows = projection.rows
    replay.calls.loc[rows, "cache_read_tokens"] = projection.read
    replay.calls.loc[rows, "cache_write_tokens"] = projection.write
    replay.calls.loc[rows, "cache_write_1h_tokens"] = projection.write_1h


# ------------------------------------------------------------------ projection


def project(
    config: PromptCacheConfig, replay: Replay, recorded: pa.Table | None = None, pristine: bool = False
) -> CacheProjection:
    """The cache reads/writes the live calls would get.

    `recorded`: the table whose cache columns say which traces use the 1h TTL and which agents cache (the
    `recorded` settings; default `replay.base`). `pristine`: use the recorded content and models instead of what
    earlier policies made of them (the counterfactual that explains their effect)."""
    state, skipped = call_state(replay, pristine)
    n = len(state.rows)
    read, write, write_1h = np.zeros(n), np.zeros(n), np.zeros(n)
    storage: dict[str, Any] = {}
    if n:
        prefixes = build_prefixes(replay, state, config.scope, config.stable_system)
        calls = replay.calls
        start = calls["start"].to_numpy()[state.rows]
        end = calls["end"].to_numpy()[state.rows]
        end = np.where(np.isfinite(end) & (end >= start), end, start)
        anth = (state.family == "anthropic") & _caching_agents(config, replay, state, recorded)
        if anth.any() and config.anthropic.breakpoints:
            ttl_min = _anthropic_ttl(config, replay, state, recorded)
            r, w = walk.anthropic(
                config.anthropic.breakpoints, prefixes, state, start, end, ttl_min, np.flatnonzero(anth)
            )
            read[anth], write[anth] = r, w
            write_1h[anth] = np.where(ttl_min[anth] == 60.0, w, 0.0)
        read, write = walk.automatic(_lifetimes(config), prefixes, state, start, end, read, write)
        if config.gemini.explicit:
            storage = walk.gemini_explicit(config.gemini.explicit_ttl_minutes, prefixes, state, start, read)
    # never more cache than input (float noise of the scaled tokens)
    read = np.minimum(read, state.input)
    write = np.minimum(write, state.input - read)
    write_1h = np.minimum(write_1h, write)
    return CacheProjection(state.rows, state.family, read, write, write_1h, skipped, storage)


def _lifetimes(config: PromptCacheConfig) -> walk.Lifetimes:
    """The automatic caches' lifetimes (minutes) under the OpenAI retention and Gemini settings."""
    if config.openai.retention == "24h":
        openai_idle = openai_life = rules.OPENAI_RETENTION_MINUTES["24h"]
    else:
        openai_idle, openai_life = config.openai.in_memory_minutes, rules.OPENAI_RETENTION_MINUTES["in_memory"]
    return walk.Lifetimes(openai_idle, openai_life, config.gemini.implicit_minutes)


def _anthropic_ttl(
    config: PromptCacheConfig, replay: Replay, state: CallState, recorded: pa.Table | None
) -> np.ndarray:
    """Per evaluated call, the TTL (minutes) of the entries it writes."""
    ttl = config.anthropic.ttl
    if ttl != "recorded":
        return np.full(len(state.rows), rules.ANTHROPIC_TTL_MINUTES[ttl])
    table = replay.base if recorded is None else recorded
    wrote_1h = pc.fill_null(table["cache_write_1h_tokens"], 0).to_numpy(zero_copy_only=False) > 0
    traces = np.unique(strings_of(table["trace_id"])[wrote_1h].astype(str))
    mine = replay.calls["trace_id"].to_numpy()[state.rows].astype(str)
    return np.where(np.isin(mine, traces), rules.ANTHROPIC_TTL_MINUTES["1h"], rules.ANTHROPIC_TTL_MINUTES["5m"])


def _caching_agents(
    config: PromptCacheConfig, replay: Replay, state: CallState, recorded: pa.Table | None
) -> np.ndarray:
    """Per evaluated call: does its agent send Anthropic breakpoints (`anthropic.agents`)?"""
    chosen = config.anthropic.agents
    if chosen == "all":
        return np.ones(len(state.rows), dtype=bool)
    if chosen == "recorded":
        table = replay.base if recorded is None else recorded
        used = np.zeros(table.num_rows, dtype=bool)
        for name in ("cache_read_tokens", "cache_write_tokens"):
            used |= pc.fill_null(table[name], 0).to_numpy(zero_copy_only=False) > 0
        provider, model = strings_of(table["provider"]), strings_of(table["model"])
        family = per_code(value_codes(provider, model), lambda i: rules.family(provider[i], model[i]))
        chosen = np.unique(strings_of(table["agent"])[used & (family == "anthropic")].astype(str)).tolist()
    agents = replay.calls["agent"].to_numpy()[state.rows].astype(str)
    out: np.ndarray = np.isin(agents, np.array(chosen, dtype=str))
    return out


# ------------------------------------------------------------------ what the policy reports


def setting_assumptions(config: PromptCacheConfig) -> list[str]:
    anth, oai = config.anthropic, config.openai
    ttl = {"recorded": "the TTL each trace's recorded writes used (5m when none was 1h)"}.get(anth.ttl, anth.ttl)
    where = ", ".join(anth.breakpoints) or "none"
    who = anth.agents if isinstance(anth.agents, str) else ", ".join(anth.agents)
    idle = oai.retention == "in_memory"
    shared = "by all calls of a provider and model" if config.scope == "global" else f"per {config.scope}"
    out = [
        f"Anthropic requests of agents {who} carry breakpoints after: {where}; entries live {ttl}, refreshed "
        "on every use.",
        f"OpenAI retention {oai.retention}"
        + (f" (evicted after {oai.in_memory_minutes:g} idle minutes, 1 hour at most)." if idle else "."),
        f"Cache entries are shared {shared}.",
    ]
    if config.stable_system:
        out.append("What-if: each agent's system prompt is treated as one stable content across all its calls.")
    return out


def _skipped_sentences(skipped: dict[str, int]) -> list[str]:
    why = {
        "added by an earlier policy": "their request content is not logged",
        "of a provider whose caching is not modeled": "no cache rules for their provider/model",
        "without logged content": "a prefix cannot be compared without the request's content",
        "without a start time": "cache hits depend on the time between calls",
        "without an input token count": "their input size is unknown",
    }
    return [
        f"{count} call(s) {reason}: cache columns kept as they were ({why[reason]})."
        for reason, count in skipped.items()
    ]


def _price_rows(replay: Replay, rows: np.ndarray, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """cost_total and cost_cache_saved (USD, NaN if unpriced) of the calls `rows` with some columns replaced."""
    calls = replay.calls
    table = replay.base.take(pa.array(calls["origin"].to_numpy()[rows], type=pa.int64()))
    values: dict[str, np.ndarray] = {
        name: calls[name].to_numpy()[rows] for name in ("provider", "model", "service_tier", "input_tokens")
    }
    values.update(columns)
    for name, column in values.items():
        if name in ("provider", "model", "service_tier"):
            array = pa.array(column, type=pa.string(), from_pandas=True)
        else:
            floats = np.asarray(column, dtype=np.float64)
            array = pa.array(np.round(np.nan_to_num(floats)).astype(np.int64), mask=np.isnan(floats))
        table = table.set_column(table.schema.get_field_index(name), name, array)
    priced = price_table(table, replay.book).table
    total, saved = (pc.fill_null(priced[name], np.nan).to_numpy(zero_copy_only=False) for name in _COSTS)
    return total, saved


_COSTS = ("cost_total", "cost_cache_saved")


def _cache_columns(projection: CacheProjection, pick: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
    return {
        "cache_read_tokens": projection.read[pick],
        "cache_write_tokens": projection.write[pick],
        "cache_write_1h_tokens": projection.write_1h[pick],
    }


def _details(
    config: PromptCacheConfig, replay: Replay, projection: CacheProjection, before: dict[str, np.ndarray]
) -> dict[str, Any]:
    rows = projection.rows
    inputs = replay.calls["input_tokens"].to_numpy()[rows]
    by_family: dict[str, Any] = {}
    for fam in sorted({str(f) for f in projection.family}):
        m = projection.family == fam
        by_family[fam] = {
            "calls": int(m.sum()),
            "calls_reading": int((projection.read[m] > 0).sum()),
            "input_tokens": float(inputs[m].sum()),
            "cache_read_tokens": float(projection.read[m].sum()),
            "cache_write_tokens": float(projection.write[m].sum()),
            "cache_write_1h_tokens": float(projection.write_1h[m].sum()),
            "before_cache_read_tokens": float(np.nansum(before["cache_read_tokens"][m])),
            "before_cache_write_tokens": float(np.nansum(before["cache_write_tokens"][m])),
        }
    details: dict[str, Any] = {"mode": "simulate", "calls_evaluated": int(len(rows)), "by_provider": by_family}
    if projection.storage:
        details["gemini_explicit"] = projection.storage
    changes = _prefix_changes(config, replay, projection)
    if changes:
        details["prefix_changes"] = changes
    details["rules"] = rules.rules_summary()
    return details


def _prefix_changes(config: PromptCacheConfig, replay: Replay, projection: CacheProjection) -> dict[str, Any]:
    """What earlier policies did to the cache: the calls whose prefix they changed (content shortened or
    summarized, model routed), replayed once more as recorded, and the cache savings compared."""
    calls = replay.calls
    rows = projection.rows
    content = calls["content_changed"].to_numpy()[rows].astype(bool)
    routed = calls["model"].to_numpy()[rows] != calls["recorded_model"].to_numpy()[rows]
    if not (content | routed).any():
        return {}
    pristine = project(config, replay, pristine=True)
    position = pd.Series(np.arange(len(pristine.rows)), index=pristine.rows)
    changed = np.flatnonzero((content | routed) & np.isin(rows, pristine.rows))
    if not len(changed):
        return {}
    other = position.loc[rows[changed]].to_numpy()
    subset = rows[changed]
    base = replay.base
    origin = calls["origin"].to_numpy()[subset]
    recorded = {
        "provider": strings_of(base["provider"])[origin],
        "model": calls["recorded_model"].to_numpy()[subset],
        "input_tokens": pc.cast(base["input_tokens"], pa.float64()).to_numpy(zero_copy_only=False)[origin],
    }
    now_cost, now_saved = _price_rows(replay, subset, _cache_columns(projection, changed))
    then_cost, then_saved = _price_rows(replay, subset, {**recorded, **_cache_columns(pristine, other)})
    saving_then, saving_now = float(np.nansum(then_saved)), float(np.nansum(now_saved))
    content_saving = float(np.nansum((then_cost + then_saved) - (now_cost + now_saved)))
    lost = saving_then - saving_now
    return {
        "calls": int(len(changed)),
        "calls_content_changed": int(content[changed].sum()),
        "calls_routed": int(routed[changed].sum()),
        "calls_losing_cache_reads": int((projection.read[changed] < pristine.read[other] - 0.5).sum()),
        "cache_read_tokens": float(projection.read[changed].sum()),
        "cache_read_tokens_unchanged": float(pristine.read[other].sum()),
        "cache_write_tokens": float(projection.write[changed].sum()),
        "cache_write_tokens_unchanged": float(pristine.write[other].sum()),
        "usd_cache_saving": saving_now,
        "usd_cache_saving_unchanged": saving_then,
        "usd_cache_saving_lost": lost,
        "usd_saved_by_changes_uncached": content_saving,
        "usd_net_saving_with_cache": content_saving - lost,
        "explanation": (
            f"On {len(changed)} call(s) whose prefix an earlier policy changed (content shortened or summarized: "
            f"{int(content[changed].sum())}, routed to another model: {int(routed[changed].sum())}), the changes "
            f"save ${content_saving:,.4f} at uncached prices; but prompt caching saved ${saving_then:,.4f} on these "
            f"calls as recorded and saves ${saving_now:,.4f} after the changes (less content, broken prefixes, cold "
            f"caches), so with caching the changes save ${content_saving - lost:,.4f}"
            + (" — a net loss." if lost > content_saving else ".")
        ),
    }
