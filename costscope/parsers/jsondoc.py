"""What the whole-file JSON formats share (agent trajectories written as one JSON document): reading the
document with one counted skip when it is not JSON, sniffing the keys of a pretty-printed prefix, litellm
model names and the range checks that keep corrupt numbers out of int64 columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import orjson
import pyarrow as pa

from ..io import UTF8_BOM, InputFile, ReadError
from ..schema import TOKEN_COLUMNS
from . import openai
from .base import MAX_TOKENS, MAX_US, MIN_US, ParseContext, RecordError, RowBuffer

SCAN_BYTES = 64 * 1024

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"?|[][{}:,]')
"""A JSON string (an unterminated one runs to the end of the prefix) or a structural character."""

KeyPath = tuple[str, ...]


def scan_keys(prefix: bytes, max_depth: int = 3) -> tuple[str, dict[KeyPath, str]]:
    """The root character (`{`, `[` or other) of a JSON prefix and the keys found in it, cheaply.

    Keys are paths from the root (`"[]"` stands for any array element) up to `max_depth` long, mapped to
    their first value: the string itself, `{` or `[` for a container, `""` for another scalar. The scan
    stops when the root value closes, so a JSON Lines file costs only its first record.
    """
    body = prefix[:SCAN_BYTES].lstrip(b" \t\r\n")
    if body.startswith(UTF8_BOM):
        body = body[len(UTF8_BOM) :].lstrip(b" \t\r\n")
    root = body[:1].decode("latin-1")
    found: dict[KeyPath, str] = {}
    if root not in ("{", "["):
        return root, found
    stack: list[tuple[str, bool]] = []
    key: str | None = None
    in_value = False

    def record(value: str) -> None:
        path = tuple(name for name, _ in stack[1:]) + (key or "",)
        if len(path) <= max_depth:
            found.setdefault(path, value)

    for match in _TOKEN.finditer(body):
        token = match.group()
        if token[:1] == b'"':
            if stack and stack[-1][1]:
                if in_value:
                    record(_string(token))
                    in_value, key = False, None
                else:
                    key = _string(token)
            continue
        if token == b":":
            in_value = key is not None and bool(stack) and stack[-1][1]
            continue
        if in_value:
            record(token.decode() if token in (b"{", b"[") else "")
        if token in (b"{", b"["):
            name = "" if not stack else (key or "") if stack[-1][1] else "[]"
            stack.append((name, token == b"{"))
        elif token in (b"}", b"]"):
            if stack:
                stack.pop()
            if not stack:
                break
        in_value, key = False, None
    return root, found


def _string(token: bytes) -> str:
    try:
        value = orjson.loads(token)
    except orjson.JSONDecodeError:
        return token.strip(b'"').decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def read_document(source: InputFile, ctx: ParseContext, expected: Literal["array", "object"]) -> Any:
    """The whole file as one JSON array or object; None after one counted skip when it is neither."""
    with source.open() as fh:
        try:
            data = fh.read()
        except (OSError, EOFError) as exc:
            raise ReadError(source.name, 1, f"cannot read the file: {exc}") from exc
    try:
        document = orjson.loads(data.strip().removeprefix(UTF8_BOM))
    except orjson.JSONDecodeError as exc:
        ctx.records[source.name] += 1
        line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else 1
        ctx.skips.skip(source.name, line, f"not a valid JSON document ({exc.args[0].split(':')[0]})")
        return None
    if not isinstance(document, list if expected == "array" else dict):
        ctx.records[source.name] += 1
        ctx.skips.skip(source.name, 1, f"expected a JSON {expected}, got {type(document).__name__}")
        return None
    return document


def trace_stem(source: InputFile) -> str:
    """The file name without its trace endings (`.gz`, `.json`, `.traj`): the instance or session id."""
    name = (source.path.name if source.path is not None else source.name) or source.name
    for suffix in (".gz", ".json", ".traj"):
        name = name.removesuffix(suffix)
    return name or source.name


LITELLM_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "azure_ai": "azure",
    "anthropic": "anthropic",
    "bedrock": "aws",
    "gemini": "google",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "cohere": "cohere",
    "xai": "x-ai",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "databricks": "databricks",
    "litellm_proxy": "",
}
"""litellm routing prefixes (`openai/gpt-4o`) and the price-data provider each stands for ("" = unknown)."""


def split_model(logged: str | None) -> tuple[str | None, str | None]:
    """(provider, model) from a model name as an agent logged it, without litellm's routing prefix.

    `openai/gpt-4o` prices as OpenAI's `gpt-4o`; a bare name gets the provider its prefix implies.
    """
    if logged is None:
        return None, None
    head, sep, rest = logged.partition("/")
    if sep and rest and head.lower() in LITELLM_PROVIDERS:
        return LITELLM_PROVIDERS[head.lower()] or provider_of(rest), rest
    return provider_of(logged), logged


def provider_of(model: str | None) -> str | None:
    name = (model or "").lower()
    if name.startswith("claude"):
        return "anthropic"
    if name.startswith("gemini"):
        return "google"
    return openai.provider_of(model)


def model_tags(logged: str | None, model: str | None) -> list[tuple[str, str]]:
    """A `model_logged` tag when the model column differs from the name the agent logged."""
    return [("model_logged", logged)] if logged is not None and logged != model else []


def checked_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row, or RecordError when a count or time is too large to be real (it would overflow int64)."""
    for name in TOKEN_COLUMNS:
        value = row.get(name)
        if value is not None and value > MAX_TOKENS:
            raise RecordError(f"{name} is too large to be real: {value:.3g}")
    for name in ("start", "end"):
        value = row.get(name)
        if value is not None and not MIN_US <= value <= MAX_US:
            raise RecordError(f"{name} time is out of range")
    return row


def number_text(value: Any) -> str | None:
    """A logged number as tag text (`7141`, `0.01952`); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def non_negative(value: Any) -> float | None:
    """A reported dollar figure as float; None when absent or not a finite non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if 0 <= number < float("inf") else None


def batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[pa.RecordBatch]:
    buffer = RowBuffer(size)
    for row in rows:
        if (batch := buffer.add(row)) is not None:
            yield batch
    if (batch := buffer.flush()) is not None:
        yield batch
