"""Typed views of the Claude Code log lines the fast path reads (`claude_fast`), decoded by msgspec.

A line is decoded straight into these structs: the fields named here are checked and built, everything else
(prompts, tool output, thinking, snapshots: most of a log's bytes) is skipped by the decoder without becoming
Python objects. The types are as strict as the fast path is: a value of any other type fails the decoding, and
the file goes to the reference path (`claude_code`), which judges it. Fields that need not be objects (a
record's `message`, a progress line's `data`, `toolUseResult`, a tool call's `input`) take any value, and the
fields read from them when they are objects.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

Other = str | list[Any] | int | float | bool | None
"""Any value that is not an object (the object case is a struct of the fields read)."""

Count = Annotated[int, msgspec.Meta(ge=0, le=1 << 40)]
"""A token count: a JSON integer (not a bool, not a float) within the range the fast path accepts."""


class Split(msgspec.Struct, gc=False):
    """`usage.cache_creation`: the cache writes by TTL."""

    ephemeral_5m_input_tokens: Count | None = None
    ephemeral_1h_input_tokens: Count | None = None


class Usage(msgspec.Struct, gc=False):
    """`message.usage`; the four counts must all be there (else the reference path judges the usage)."""

    input_tokens: Count
    output_tokens: Count
    cache_read_input_tokens: Count
    cache_creation_input_tokens: Count
    cache_creation: Split | None = None
    service_tier: Any = None


class TaskInput(msgspec.Struct, gc=False):
    """The part of a tool call's `input` that tells a subagent's type."""

    subagent_type: Any = None


class Block(msgspec.Struct, gc=False):
    """A content block: a tool use (`id`, `name`, `input`), a tool result (`tool_use_id`) or anything else."""

    type: Any = None
    id: str | None = None
    name: str | None = None
    input: TaskInput | Other = None
    tool_use_id: Any = None


class Message(msgspec.Struct, gc=False):
    """`message` of an assistant or user record."""

    id: str | None = None
    model: str | None = None
    usage: Usage | None = None
    content: str | list[Block] | None = None


class ToolUseResult(msgspec.Struct, gc=False):
    """A user record's `toolUseResult` when it is an object: a finished subagent names itself here."""

    agentId: Any = None


class ProgressCall(msgspec.Struct, gc=False):
    """`data.message.message` of a progress line: a subagent's message; only whether it has a usage matters."""

    usage: Any = None


class ProgressMessage(msgspec.Struct, gc=False):
    """`data.message` of a progress line."""

    type: Any = None
    message: ProgressCall | Other = None


class Progress(msgspec.Struct, gc=False):
    """`data` of a progress line: a subagent's line copied into its session (`agent_progress`), a hook's or a
    command's output, ..."""

    type: Any = None
    agentId: Any = None
    message: ProgressMessage | Other = None


class Line(msgspec.Struct, gc=False):
    """One record of a Claude Code project log."""

    type: str | None = None
    message: Message | Other = None
    requestId: str | None = None  # the log spells these in camelCase
    sessionId: str | None = None
    agentId: str | None = None
    isSidechain: bool | None = None
    costUSD: Annotated[float, msgspec.Meta(ge=0)] | None = None
    timestamp: str | None = None
    parentToolUseID: Any = None
    data: Progress | Other = None
    toolUseResult: ToolUseResult | Other = None


decode_line = msgspec.json.Decoder(Line).decode
"""bytes -> Line; raises msgspec.DecodeError (including ValidationError) on anything else."""
