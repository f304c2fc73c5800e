"""What one span's flat attributes say about an LLM call: OTel GenAI or OpenInference, normalized.

OpenTelemetry data in the wild is mixed-version, so every spelling seen is accepted: GenAI semconv
names (`gen_ai.usage.input_tokens`, `…cache_read.input_tokens`, `…cache_creation.input_tokens`,
`…reasoning.output_tokens`), their deprecated forms (`gen_ai.usage.prompt_tokens`/`completion_tokens`,
`gen_ai.system`), vendor aliases (Traceloop/lmnr `gen_ai.usage.cache_read_input_tokens`, Sentry
`gen_ai.usage.input_tokens.cached`, `gen_ai.usage.cached_input_tokens`, legacy `llm.usage.*`), and
OpenInference (`llm.token_count.*`, `llm.model_name`, `llm.provider`/`llm.system`, `llm.cost.total`).

Token counts come from ONE family per span, never both added: OpenInference when any of its token
counts is present (its instrumentors define `llm.token_count.prompt` as input including cache reads
and writes), else GenAI. Both families are inclusive (input includes cache reads and writes; output
includes reasoning), but many Anthropic emitters copy Anthropic's raw uncached `input_tokens`: when
cache read + write exceed the input, the input cannot contain them, so it is taken as uncached-only
and they are added back (likewise reasoning larger than output is added to it). Each such repair is
listed in `SpanAttributes.repairs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .base import RecordError
from .usage import Usage

MAX_INT64 = (1 << 63) - 1


class Role(StrEnum):
    """What a span does, from `gen_ai.operation.name`, else OpenInference's span kind."""

    LLM = "llm"
    AGENT = "agent"
    TOOL = "tool"
    CHAIN = "chain"
    OTHER = "other"


OPERATION_ROLES = {
    "chat": Role.LLM,
    "text_completion": Role.LLM,
    "generate_content": Role.LLM,
    "embeddings": Role.LLM,
    "invoke_agent": Role.AGENT,
    "execute_tool": Role.TOOL,
    "invoke_workflow": Role.CHAIN,
    "create_agent": Role.OTHER,
    "retrieval": Role.OTHER,
}
OPENINFERENCE_ROLES = {
    "LLM": Role.LLM,
    "EMBEDDING": Role.LLM,
    "AGENT": Role.AGENT,
    "TOOL": Role.TOOL,
    "CHAIN": Role.CHAIN,
}
LEGACY_REQUEST_TYPES = {"chat", "completion", "embedding"}
"""Traceloop's pre-semconv `llm.request.type` values of a model call."""

GENAI_INPUT = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.usage.input_tokens",
    "llm.usage.prompt_tokens",
)
GENAI_OUTPUT = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.usage.output_tokens",
    "llm.usage.completion_tokens",
)
GENAI_CACHE_READ = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
    "gen_ai.usage.cached_input_tokens",
    "llm.usage.cache_read_input_tokens",
)
GENAI_CACHE_WRITE = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
    "llm.usage.cache_creation_input_tokens",
)
GENAI_REASONING = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.usage.output_tokens.reasoning",
    "llm.usage.reasoning_tokens",
)
OI_INPUT = ("llm.token_count.prompt",)
OI_OUTPUT = ("llm.token_count.completion",)
OI_CACHE_READ = ("llm.token_count.prompt_details.cache_read",)
OI_CACHE_WRITE = ("llm.token_count.prompt_details.cache_write",)
OI_REASONING = ("llm.token_count.completion_details.reasoning",)

GENAI_TOKENS = (GENAI_INPUT, GENAI_OUTPUT, GENAI_CACHE_READ, GENAI_CACHE_WRITE, GENAI_REASONING)
OI_TOKENS = (OI_INPUT, OI_OUTPUT, OI_CACHE_READ, OI_CACHE_WRITE, OI_REASONING)
_GENAI_TOKEN_KEYS = frozenset(key for keys in GENAI_TOKENS for key in keys)
_OI_TOKEN_KEYS = frozenset(key for keys in OI_TOKENS for key in keys)

GENAI_MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.response.model", "llm.request.model")
OI_MODEL = ("llm.model_name",)
GENAI_PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
OI_PROVIDER = ("llm.provider", "llm.system")
"""`llm.provider` is the host that bills (azure), `llm.system` the model vendor (openai): the host comes first."""
GENAI_COST = ("gen_ai.usage.cost", "gen_ai.cost.usd")
OI_COST = ("llm.cost.total",)
OPERATION = ("gen_ai.operation.name",)
OI_KIND = ("openinference.span.kind",)
AGENT = ("gen_ai.agent.name", "agent.name")
AGENT_ID = ("gen_ai.agent.id",)
CONVERSATION = ("gen_ai.conversation.id", "session.id")
TOOL = ("gen_ai.tool.name", "tool.name")
RESPONSE_ID = ("gen_ai.response.id",)
SERVICE_TIER = ("openai.response.service_tier", "gen_ai.openai.response.service_tier")
TENANT = ("tenant.id", "user.id", "enduser.id")
"""Tenant keys by priority (each looked up on the span, its ancestors, then the resource)."""

PROVIDER_IDS = {
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "gemini": "google",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
}
"""OTel / OpenInference provider values -> genai-prices provider ids (others are kept, lowercased)."""


@dataclass(frozen=True, slots=True)
class SpanAttributes:
    """The cost-relevant facts of one span; None means the span does not say."""

    role: Role
    operation: str | None
    model: str | None
    provider: str | None
    agent: str | None
    """The span's own agent name attribute (not inherited)."""
    agent_id: str | None
    conversation_id: str | None
    tool: str | None
    usage: Usage | None
    family: str | None
    """`gen_ai` or `openinference`: where the token counts were read; None without token counts."""
    reported_cost_usd: float | None
    response_id: str | None
    service_tier: str | None
    tenant: tuple[str | None, ...]
    """The span's own values of the `TENANT` keys, in that order."""
    repairs: tuple[str, ...] = ()

    @property
    def has_usage(self) -> bool:
        return self.usage is not None and self.usage.reported


def text_value(value: Any, name: str) -> str | None:
    """An attribute as text: numbers become their decimal form; None for absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RecordError(f"{name} is not valid UTF-8 text") from None
        return value
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    raise RecordError(f"{name} is not text: {value!r:.60}")


def first_text(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        text = text_value(attrs.get(key), key)
        if text is not None:
            return text
    return None


def count_value(value: Any, name: str) -> int | None:
    """A token count: a non-negative int64 (a decimal string is accepted); None when absent."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{name} is not a whole number: {value!r:.60}")
    if value < 0:
        raise RecordError(f"{name} is negative: {value}")
    if value > MAX_INT64:
        raise RecordError(f"{name} is too large: {value}")
    return value


def first_count(attrs: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    """The first key present of one bucket's spellings: alternatives, never added together."""
    for key in keys:
        if attrs.get(key) is not None:
            return count_value(attrs[key], key)
    return None


def _present(attrs: dict[str, Any], keys: frozenset[str]) -> bool:
    return any(attrs[key] is not None for key in attrs.keys() & keys)


def _usage(attrs: dict[str, Any], buckets: tuple[tuple[str, ...], ...]) -> tuple[Usage, tuple[str, ...]]:
    input_tokens, output, read, write, reasoning = (first_count(attrs, keys) for keys in buckets)
    repairs: list[str] = []
    cached = (read or 0) + (write or 0)
    if cached > (input_tokens or 0):
        if input_tokens is not None:
            repairs.append("input tokens excluded cache tokens (added back)")
        input_tokens = (input_tokens or 0) + cached
    if (reasoning or 0) > (output or 0):
        if output is not None:
            repairs.append("output tokens excluded reasoning tokens (added back)")
        output = (output or 0) + (reasoning or 0)
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
    )
    return usage, tuple(repairs)


def _cost(attrs: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = attrs.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise RecordError(f"{key} is not a non-negative number: {value!r:.60}")
        return float(value)
    return None


def provider_id(name: str | None) -> str | None:
    if name is None:
        return None
    lowered = name.lower()
    return PROVIDER_IDS.get(lowered, lowered)


def role_of(operation: str | None, oi_kind: str | None, request_type: str | None) -> Role:
    if operation is not None and operation in OPERATION_ROLES:
        return OPERATION_ROLES[operation]
    if oi_kind is not None and oi_kind.upper() in OPENINFERENCE_ROLES:
        return OPENINFERENCE_ROLES[oi_kind.upper()]
    if request_type is not None and request_type in LEGACY_REQUEST_TYPES:
        return Role.LLM
    return Role.OTHER


def read_attributes(attrs: dict[str, Any], span_kind: str | None = None) -> SpanAttributes:
    """The facts of one span from its flat attributes; RecordError names the attribute that is unusable.

    `span_kind` is an OpenInference kind given outside the attributes (Phoenix's `span_kind`).
    """
    if _present(attrs, _OI_TOKEN_KEYS):
        family: str | None = "openinference"
        usage, repairs = _usage(attrs, OI_TOKENS)
    elif _present(attrs, _GENAI_TOKEN_KEYS):
        family = "gen_ai"
        usage, repairs = _usage(attrs, GENAI_TOKENS)
    else:
        family, usage, repairs = None, None, ()
    oi_first = family == "openinference" or (family is None and "llm.model_name" in attrs)

    def keys(genai: tuple[str, ...], oi: tuple[str, ...]) -> tuple[str, ...]:
        """The family the tokens came from first; model, provider and cost may fall back to the other."""
        return oi + genai if oi_first else genai + oi

    operation = first_text(attrs, OPERATION)
    oi_kind = first_text(attrs, OI_KIND) or span_kind
    request_type = text_value(attrs.get("llm.request.type"), "llm.request.type")
    return SpanAttributes(
        role=role_of(operation, oi_kind, request_type),
        operation=operation or (oi_kind.lower() if oi_kind else None) or request_type,
        model=first_text(attrs, keys(GENAI_MODEL, OI_MODEL)),
        provider=provider_id(first_text(attrs, keys(GENAI_PROVIDER, OI_PROVIDER))),
        agent=first_text(attrs, AGENT),
        agent_id=first_text(attrs, AGENT_ID),
        conversation_id=first_text(attrs, CONVERSATION),
        tool=first_text(attrs, TOOL),
        usage=usage,
        family=family,
        reported_cost_usd=_cost(attrs, keys(GENAI_COST, OI_COST)),
        response_id=first_text(attrs, RESPONSE_ID),
        service_tier=first_text(attrs, SERVICE_TIER),
        tenant=tuple(text_value(attrs.get(key), key) for key in TENANT),
        repairs=repairs,
    )
