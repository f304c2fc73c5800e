"""A request body split into what its input tokens are made of, and the per-file recount of those parts.

Kinds (in the order providers build the prompt prefix: tools, system, then the messages):
- `tools`: the tool schemas (OpenAI function tools counted as the cookbook does; other schemas as JSON);
- `system`: system / developer instructions, wherever they appear;
- `history`: every turn up to and including the last assistant turn (the context re-sent from earlier calls);
- `user`: the new input after the last assistant turn;
- `tool_result`: a tool's output, new or re-sent in the history: tool results keep their kind (and tool
  name) wherever they appear, so that `costscope tokens` can follow each one across the calls re-sending it;
- `framing`: chat framing as the OpenAI cookbook counts it (3 per message + its role, 1 per name, 3 to
  prime the reply), exact for OpenAI chat models and an estimate for the others;
- `output`: the response's text and tool calls (reasoning tokens have no text and are not in it).

Each segment is keyed by a hash of its content only, so the same text has the same key in every call and
every file. The step table stores kind, hash, chars, tokens and tool per segment, never the text. Images,
audio and files are not text and are not counted (a call with them shows a reported/recounted ratio above 1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from .. import tokens
from ..schema import TEXT_KEEP_CHARS, UsageSource

SYSTEM, TOOLS, HISTORY, USER, TOOL_RESULT, FRAMING, OUTPUT = (
    "system",
    "tools",
    "history",
    "user",
    "tool_result",
    "framing",
    "output",
)
INPUT_KINDS = (SYSTEM, TOOLS, HISTORY, USER, TOOL_RESULT, FRAMING)
KINDS = (*INPUT_KINDS, OUTPUT)


@dataclass(slots=True)
class Segment:
    kind: str
    text: str
    """What the hash and `chars` describe (the schema JSON for tools, the roles and names for framing)."""
    tool: str | None = None
    pieces: tuple[str, ...] | None = None
    """The texts tokenized (default: `text` itself)."""
    constant: int = 0
    """Tokens added to those of the pieces (cookbook constants)."""
    key: str = field(default="", init=False)

    def __post_init__(self) -> None:
        prefix = b"" if self.pieces is None else self.kind.encode() + b"\0"
        self.key = hashlib.blake2b(prefix + self.text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


@dataclass(slots=True)
class _Message:
    role: str
    parts: list[tuple[str, str | None, bool]]
    """(text, tool name, is a tool result)."""
    name: str | None = None


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _text(content: Any) -> str:
    """The text of a content value: a string, or the text parts of a list of blocks/parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_text_of_block(b) for b in content) if t)
    if isinstance(content, dict):
        return _text_of_block(content)
    return _dumps(content)


def _text_of_block(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    for key in ("text", "output", "content"):
        value = block.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return _text(value)
    return ""


def _call_text(name: Any, arguments: Any) -> str:
    args = arguments if isinstance(arguments, str) else _dumps(arguments if arguments is not None else {})
    return f"{name or ''}{args}"


# ---------------------------------------------------------------- request shapes -> messages


def _openai_chat(request: dict[str, Any]) -> list[_Message]:
    out: list[_Message] = []
    names: dict[str, str] = {}
    for m in request.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role = str(m.get("role") or "user")
        parts: list[tuple[str, str | None, bool]] = []
        if role in ("tool", "function"):
            tool = m.get("name") or names.get(str(m.get("tool_call_id")))
            parts.append((_text(m.get("content")), str(tool) if tool else None, True))
        else:
            text = _text(m.get("content"))
            if text:
                parts.append((text, None, False))
            for call in m.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    name = function.get("name")
                    if call.get("id") and name:
                        names[str(call["id"])] = str(name)
                    parts.append((_call_text(name, function.get("arguments")), str(name) if name else None, False))
        name = m.get("name") if role not in ("tool", "function") else None
        out.append(_Message(role, parts, str(name) if isinstance(name, str) else None))
    return out


def _openai_responses(request: dict[str, Any]) -> list[_Message]:
    out: list[_Message] = []
    if isinstance(request.get("instructions"), str):
        out.append(_Message("system", [(request["instructions"], None, False)]))
    items = request.get("input")
    if isinstance(items, str):
        return [*out, _Message("user", [(items, None, False)])]
    names: dict[str, str] = {}
    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call":
            name = item.get("name")
            if item.get("call_id") and name:
                names[str(item["call_id"])] = str(name)
            out.append(_Message("assistant", [(_call_text(name, item.get("arguments")), name, False)]))
        elif kind == "function_call_output":
            tool = names.get(str(item.get("call_id")))
            out.append(_Message("tool", [(_text(item.get("output")), tool, True)]))
        elif "role" in item:
            out.append(_Message(str(item["role"]), [(_text(item.get("content")), None, False)]))
    return out


def _anthropic(request: dict[str, Any]) -> list[_Message]:
    out: list[_Message] = []
    system = _text(request.get("system"))
    if system:
        out.append(_Message("system", [(system, None, False)]))
    names: dict[str, str] = {}
    for m in request.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role = str(m.get("role") or "user")
        content = m.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": _text(content)}]
        parts: list[tuple[str, str | None, bool]] = []
        for block in blocks:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "tool_use":
                name = block.get("name")
                if block.get("id") and name:
                    names[str(block["id"])] = str(name)
                parts.append((_call_text(name, block.get("input")), str(name) if name else None, False))
            elif kind == "tool_result":
                parts.append((_text(block.get("content")), names.get(str(block.get("tool_use_id"))), True))
            elif kind in ("text", "thinking"):
                text = block.get("text") if kind == "text" else block.get("thinking")
                if isinstance(text, str) and text:
                    parts.append((text, None, False))
        out.append(_Message(role, parts))
    return out


def _gemini(request: dict[str, Any]) -> list[_Message]:
    out: list[_Message] = []
    system = request.get("systemInstruction", request.get("system_instruction"))
    if isinstance(system, dict):
        text = _text(system.get("parts"))
        if text:
            out.append(_Message("system", [(text, None, False)]))
    for content in request.get("contents") or []:
        if not isinstance(content, dict):
            continue
        role = "assistant" if content.get("role") == "model" else str(content.get("role") or "user")
        parts: list[tuple[str, str | None, bool]] = []
        for part in content.get("parts") or []:
            if not isinstance(part, dict):
                continue
            call = part.get("functionCall", part.get("function_call"))
            response = part.get("functionResponse", part.get("function_response"))
            if isinstance(call, dict):
                parts.append((_call_text(call.get("name"), call.get("args")), call.get("name"), False))
            elif isinstance(response, dict):
                parts.append((_dumps(response.get("response")), response.get("name"), True))
            elif isinstance(part.get("text"), str) and part["text"]:
                parts.append((part["text"], None, False))
        if parts and all(is_result for _, _, is_result in parts):
            role = "tool"
        out.append(_Message(role, parts))
    return out


def _messages(family: str, request: dict[str, Any]) -> list[_Message]:
    if family == "anthropic":
        return _anthropic(request)
    if family == "gemini":
        return _gemini(request)
    if "messages" in request:
        return _openai_chat(request)
    return _openai_responses(request)


def _tools(family: str, request: dict[str, Any], model: str | None) -> Segment | None:
    if family == "gemini":
        declared = [
            d for t in request.get("tools") or [] if isinstance(t, dict) for d in t.get("functionDeclarations", [])
        ]
    else:
        declared = [t for t in request.get("tools") or [] if t is not None]
    if not declared:
        return None
    text = _dumps(declared)
    if family == "openai":
        rendered = tokens.tool_schema_pieces(declared, tokens.tool_constants(model))
        if rendered is not None:
            return Segment(TOOLS, text, pieces=tuple(rendered[0]), constant=rendered[1])
    return Segment(TOOLS, text)


def request_segments(family: str, request: dict[str, Any], model: str | None) -> list[Segment]:
    """The input segments of one request, in prompt order, with one `framing` segment last."""
    messages = _messages(family, request)
    last_assistant = max((i for i, m in enumerate(messages) if m.role in ("assistant", "model")), default=-1)
    out: list[Segment] = []
    tools_segment = _tools(family, request, model)
    if tools_segment is not None:
        out.append(tools_segment)
    framing: list[str] = []
    names = 0
    for i, message in enumerate(messages):
        framing.append(message.role)
        if message.name:
            framing.append(message.name)
            names += 1
        for text, tool, is_result in message.parts:
            if message.role in ("system", "developer"):
                kind = SYSTEM
            elif is_result:
                kind = TOOL_RESULT
            else:
                kind = HISTORY if i <= last_assistant else USER
            out.append(Segment(kind, text, tool))
    if messages:
        constant = tokens.TOKENS_PER_MESSAGE * len(messages) + tokens.TOKENS_PER_NAME * names + tokens.REPLY_PRIMING
        out.append(Segment(FRAMING, "\n".join(framing), pieces=tuple(framing), constant=constant))
    return out


def response_segments(family: str, response: dict[str, Any]) -> list[Segment]:
    """The output segment of a response (its text and tool calls), if it has any text."""
    texts: list[str] = []
    if family == "anthropic":
        for block in response.get("content") or []:
            if isinstance(block, dict):
                if block.get("type") == "tool_use":
                    texts.append(_call_text(block.get("name"), block.get("input")))
                elif isinstance(block.get("text"), str):
                    texts.append(block["text"])
    elif family == "gemini":
        for candidate in response.get("candidates") or []:
            content = candidate.get("content") if isinstance(candidate, dict) else None
            for part in (content or {}).get("parts") or []:
                if isinstance(part, dict) and not part.get("thought"):
                    call = part.get("functionCall")
                    if isinstance(call, dict):
                        texts.append(_call_text(call.get("name"), call.get("args")))
                    elif isinstance(part.get("text"), str):
                        texts.append(part["text"])
    else:
        for choice in response.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict):
                texts.extend(text for m in _openai_chat({"messages": [message]}) for text, _, _ in m.parts)
        for item in response.get("output") or []:
            if isinstance(item, dict):
                if item.get("type") == "function_call":
                    texts.append(_call_text(item.get("name"), item.get("arguments")))
                elif item.get("type") == "message":
                    texts.append(_text(item.get("content")))
    text = "\n".join(t for t in texts if t)
    return [Segment(OUTPUT, text)] if text else []


# ---------------------------------------------------------------- per-file recount

FLUSH_ROWS = 2048
FLUSH_CHARS = 32 << 20


MEMO_LIMIT = 2_000_000
"""Distinct contents remembered by one process before its memo starts afresh (bounds memory)."""
_process_memo = tokens.CountMemo()


def process_memo() -> tokens.CountMemo:
    """The memo shared by every file a process parses: content re-sent across files (the same system prompt
    in every session) is tokenized once per process, not once per file. Counts do not depend on it."""
    global _process_memo
    if len(_process_memo.counts) > MEMO_LIMIT:
        _process_memo = tokens.CountMemo()
    return _process_memo


class Recount:
    """Counts the segments of a file's calls, each distinct content once per process, in batches.

    Rows wait (holding only the texts not counted yet) until FLUSH_ROWS rows or FLUSH_CHARS new characters
    are pending; then every new text is tokenized in one multi-threaded batch and the rows are released with
    their `segments` and `tokenizer` filled in, and recounted usage where the log reported none.
    """

    def __init__(self, memo: tokens.CountMemo | None = None) -> None:
        self.memo = memo if memo is not None else process_memo()
        self._rows: list[tuple[dict[str, Any], tokens.Tokenizer | None, list[Segment]]] = []

    def add(self, row: dict[str, Any], segments: list[Segment]) -> list[dict[str, Any]]:
        """Queue a row; returns the rows ready to be emitted (in order)."""
        if not segments:
            if not self._rows:
                return [row]
            self._rows.append((row, None, segments))
            return []
        tokenizer = tokens.tokenizer_for(row.get("model"))
        for segment in segments:
            self.memo.need(tokenizer, segment.key, segment.pieces or (segment.text,), segment.constant)
        self._rows.append((row, tokenizer, segments))
        if len(self._rows) >= FLUSH_ROWS or self.memo.pending_chars >= FLUSH_CHARS:
            return self.flush()
        return []

    def flush(self) -> list[dict[str, Any]]:
        self.memo.flush()
        out = []
        for row, tokenizer, segments in self._rows:
            if tokenizer is not None:
                _fill(row, tokenizer, segments, self.memo)
            out.append(row)
        self._rows = []
        return out


def _fill(row: dict[str, Any], tokenizer: tokens.Tokenizer, segments: list[Segment], memo: tokens.CountMemo) -> None:
    structs = [
        {
            "kind": s.kind,
            "hash": s.key,
            "chars": len(s.text),
            "tokens": memo.get(tokenizer, s.key),
            "tool": s.tool,
        }
        for s in segments
    ]
    row["segments"] = structs
    row["tokenizer"] = tokenizer.label
    row["prompt_text"] = _kept("\n".join(s.text for s in segments if s.kind == USER))
    row["output_text"] = _kept("\n".join(s.text for s in segments if s.kind == OUTPUT))
    if row.get("usage_source") is None:
        row["input_tokens"] = sum(s["tokens"] for s in structs if s["kind"] != OUTPUT)
        row["output_tokens"] = sum(s["tokens"] for s in structs if s["kind"] == OUTPUT)
        row["usage_source"] = UsageSource.RECOUNTED.value


def _kept(text: str) -> str | None:
    return text[:TEXT_KEEP_CHARS] if text else None


def all_segments(
    family: str, request: dict[str, Any] | None, response: dict[str, Any], model: str | None
) -> list[Segment]:
    """Input segments (when the request body was logged) and the output segment."""
    if request is None:
        return []
    return [*request_segments(family, request, model), *response_segments(family, response)]
