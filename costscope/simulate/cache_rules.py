"""Provider prompt-cache rules as data: minimum cacheable prefixes, TTLs, lookback, storage rates.

Every figure is dated (`checked`) and sourced (`/work/shared/PROVIDERS.md` sections 1-3 quote the provider docs):
several of them changed between versions of the docs, so they live here as rows, never as constants in the code.
Prices of cache reads and writes are NOT here: they come from genai-prices through the price book (per model and
date), so only the rules deciding *which* tokens are read or written, and the storage fee genai-prices lacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MINUTE_US = 60_000_000.0
"""One minute in the replay's time unit (microseconds)."""


@dataclass(frozen=True)
class MinimumRule:
    """The smallest prefix (tokens) a provider caches for models whose name matches `pattern` (first match wins)."""

    pattern: str
    tokens: int
    checked: str
    source: str

    def matches(self, model: str) -> bool:
        return re.search(self.pattern, model) is not None


# ------------------------------------------------------------------ Anthropic (PROVIDERS.md section 1)

ANTHROPIC_LOOKBACK_BLOCKS = 20
"""A breakpoint finds a cache entry at most this many content blocks before it (docs: "up to 20 blocks")."""
ANTHROPIC_MAX_BREAKPOINTS = 4
ANTHROPIC_TTL_MINUTES = {"5m": 5.0, "1h": 60.0}
"""Entry lifetime after its last write or read (a read refreshes it at no cost)."""
ANTHROPIC_MULTIPLIERS = {"write_5m": 1.25, "write_1h": 2.0, "read": 0.1}
"""Of the base input price; informational (the money comes from genai-prices' per-model cache rates)."""

_FEB26 = "PROVIDERS.md §1, prompt-caching doc copy of Feb 2026"
ANTHROPIC_MINIMUMS = (
    MinimumRule(r"opus-5", 512, "2026-03", "PROVIDERS.md §1, later doc copies (dev.to/creeta, litellm docs)"),
    MinimumRule(r"opus-4-8|sonnet-5", 1024, "2026-03", "PROVIDERS.md §1, later doc copies"),
    MinimumRule(r"opus-4-7", 4096, "2026-03", "PROVIDERS.md §1: 2048 in one copy, 4096 in another; the larger kept"),
    MinimumRule(r"opus-4-6|opus-4-5", 4096, "2026-02", _FEB26),
    MinimumRule(r"sonnet-4-6", 2048, "2026-02", _FEB26 + " (another copy: 1024; observed ~2048)"),
    MinimumRule(r"haiku-4-5", 4096, "2026-02", _FEB26),
    MinimumRule(r"haiku-3|3-5-haiku|3-haiku", 2048, "2026-02", _FEB26),
    MinimumRule(r"sonnet-4-5|opus-4-1|opus-4|sonnet-4|3-7-sonnet|sonnet-3-7", 1024, "2026-02", _FEB26),
    MinimumRule(r"claude-3|3-5-sonnet|3-opus", 1024, "2026-02", "PROVIDERS.md §1, older copies (Sonnet/Opus 3.x)"),
    MinimumRule(r".", 1024, "2026-02", "default for an unlisted Claude model (the most common floor)"),
)

# ------------------------------------------------------------------ OpenAI (PROVIDERS.md section 2)

OPENAI_MINIMUM = MinimumRule(r".", 1024, "2026-03", "PROVIDERS.md §2: automatic caching from 1,024 prompt tokens")
OPENAI_INCREMENT = 128
"""Cache hits grow in 128-token steps above 1,024 (2024 guide; the current guide no longer says so [volatile])."""
OPENAI_CACHED_MODELS = r"gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-[6-9]|chatgpt-4o|(^|/)o[1-9]"
"""Families with automatic caching ("gpt-4o and newer"); older ones (gpt-4, gpt-3.5) never cache."""
OPENAI_WRITE_BILLED_MODELS = r"gpt-5\.([6-9]|\d\d)|gpt-[6-9]"
"""GPT-5.6 and later bill cache writes (1.25x input, reported in cache_write_tokens); earlier models write free."""
OPENAI_RETENTION_MINUTES = {"in_memory": 60.0, "24h": 24 * 60.0}
"""Maximum lifetime of a cached prefix, whatever its use (in-memory: "up to a maximum of one hour")."""
OPENAI_IN_MEMORY_IDLE_MINUTES = 5.0
"""Default inactivity window of in-memory retention: the guide says "generally 5 to 10 minutes"; the low end."""

# ------------------------------------------------------------------ Gemini (PROVIDERS.md section 3)

_GEMINI_DOC = "PROVIDERS.md §3, ai.google.dev caching doc, 2026 copies"
GEMINI_MINIMUMS = (
    MinimumRule(r"gemini-[3-9]", 4096, "2026", _GEMINI_DOC),
    MinimumRule(r"gemini-2\.5", 2048, "2026", _GEMINI_DOC + " (mid-2025: 1024 Flash / 2048 Pro)"),
    MinimumRule(r".", 4096, "2026", "default for other Gemini models (unlisted; the largest current floor)"),
)
GEMINI_IMPLICIT_MODELS = r"gemini-(2\.5|[3-9])"
"""Implicit caching is on by default for Gemini 2.5 and later (effective 2025-05-08)."""
GEMINI_IMPLICIT_IDLE_MINUTES = 5.0
"""Implicit-cache lifetime is undocumented ("no guarantee"): this window is an assumption, a policy setting."""


@dataclass(frozen=True)
class StorageRule:
    """Explicit (`cachedContents`) storage fee, USD per million tokens per hour."""

    pattern: str
    usd_per_mtok_hour: float
    checked: str
    source: str


_GEMINI_PRICES = "PROVIDERS.md §3, ai.google.dev/gemini-api/docs/pricing copy"
GEMINI_STORAGE = (
    StorageRule(r"gemini-2\.5-pro", 4.50, "2026", _GEMINI_PRICES),
    StorageRule(r"gemini-2\.5-flash", 1.00, "2026", _GEMINI_PRICES + " (Flash and Flash-Lite)"),
    StorageRule(r"gemini-3(\.\d)?-pro", 4.50, "2026", _GEMINI_PRICES + " (3 Pro Preview)"),
)


def family(provider: str | None, model: str | None) -> str | None:
    """Whose caching rules a call follows: `anthropic`, `openai`, `google` (Gemini), or None (not modeled).

    The model's vendor decides, not the host: Claude on Bedrock or Vertex caches like Anthropic, GPT models on
    Azure like OpenAI (hosts may differ in details, e.g. Bedrock/Vertex keep org-level caches)."""
    name, host = (model or "").lower(), (provider or "").lower()
    if "claude" in name or host == "anthropic":
        return "anthropic"
    if "gemini" in name:
        return "google"
    if host in ("openai", "azure") or re.search(OPENAI_CACHED_MODELS, name):
        return "openai"
    return None


def minimum_tokens(rules_family: str, model: str) -> int:
    """Smallest cacheable prefix (tokens) of `model` under `rules_family`'s rules."""
    rules: tuple[MinimumRule, ...] = {
        "anthropic": ANTHROPIC_MINIMUMS,
        "openai": (OPENAI_MINIMUM,),
        "google": GEMINI_MINIMUMS,
    }[rules_family]
    name = model.lower()
    return next(rule.tokens for rule in rules if rule.matches(name))


def storage_rate(model: str) -> float | None:
    """Gemini explicit-cache storage, USD per million tokens per hour (None: not known for this model)."""
    name = model.lower()
    return next((rule.usd_per_mtok_hour for rule in GEMINI_STORAGE if re.search(rule.pattern, name)), None)


def automatic_caching(rules_family: str, model: str) -> bool:
    """Does the provider cache this model's prefixes without being asked (OpenAI, Gemini implicit)?"""
    name = model.lower()
    if rules_family == "openai":
        return re.search(OPENAI_CACHED_MODELS, name) is not None
    if rules_family == "google":
        return re.search(GEMINI_IMPLICIT_MODELS, name) is not None
    return False


def bills_writes(rules_family: str, model: str) -> bool:
    """Does automatic caching bill its writes (OpenAI GPT-5.6 and later)?"""
    return rules_family == "openai" and re.search(OPENAI_WRITE_BILLED_MODELS, model.lower()) is not None


def rules_summary() -> dict[str, object]:
    """The rules in force, for the policy's details (JSON): what a reader needs to check a figure."""
    return {
        "anthropic": {
            "lookback_blocks": ANTHROPIC_LOOKBACK_BLOCKS,
            "max_breakpoints": ANTHROPIC_MAX_BREAKPOINTS,
            "ttl_minutes": ANTHROPIC_TTL_MINUTES,
            "multipliers": ANTHROPIC_MULTIPLIERS,
            "minimums": [r.__dict__ for r in ANTHROPIC_MINIMUMS],
        },
        "openai": {
            "minimum": OPENAI_MINIMUM.tokens,
            "increment": OPENAI_INCREMENT,
            "cached_models": OPENAI_CACHED_MODELS,
            "write_billed_models": OPENAI_WRITE_BILLED_MODELS,
            "max_lifetime_minutes": OPENAI_RETENTION_MINUTES,
        },
        "google": {
            "implicit_models": GEMINI_IMPLICIT_MODELS,
            "minimums": [r.__dict__ for r in GEMINI_MINIMUMS],
            "storage_usd_per_mtok_hour": [r.__dict__ for r in GEMINI_STORAGE],
        },
    }
