"""SWE-agent `<instance_id>.traj` and mini-swe-agent `<instance_id>.traj.json` trajectories (one JSON object).

SWE-agent logs no per-call usage, only `info.model_stats` (instance_cost, tokens_sent, tokens_received,
api_calls). Each call is therefore rebuilt from the text and recounted offline (`usage_source =
"recounted"`, the tokenizer in tag `tokenizer`):

- when trajectory steps carry `query` (the messages actually sent, newer 1.x builds), one row per step:
  input = the tokens of its `query`, output = the tokens of its response;
- otherwise one row per assistant turn of `history` (demonstrations skipped: they were sent, never
  generated): input = the tokens of every earlier message of the same agent (the full history is re-sent
  each turn), output = the turn's text, tool calls and thinking. Trailing trajectory steps missing from
  `history` (the final `submit` step usually is) are calls too, sent the whole history.

Cache reads and writes are unknown (null). Each distinct message text is counted once. `info.model_stats`
becomes one `rollup` row (`reported_cost_usd` = instance_cost; the reported token counts in `tags`).
The model is `replay_config.agent.model.name` (1.x; `replay_config` may be a JSON string); pre-1.0 files
name it only in their directory, so their calls stay unpriced rather than guessed.

mini-swe-agent (`messages[]`, `info.config.model.model_name`): an assistant message whose
`extra.response.usage` was logged is a reported call (`record_id` = the response id); others are recounted
as above. `line` is the record's ordinal: history or messages first, then trajectory steps, then
`info.model_stats`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from ..io import InputFile
from ..schema import Kind, UsageSource
from ..tokens import Tokenizer, tokenizer_for
from . import openai
from .base import ParseContext, RecordError, text_or_none, timestamp_us
from .jsondoc import (
    batches,
    checked_row,
    model_tags,
    non_negative,
    number_text,
    read_document,
    scan_keys,
    split_model,
    trace_stem,
)

NAME = "swe-agent"
MINI_FORMAT = "mini-swe-agent"
STATS_TAGS = ("tokens_sent", "tokens_received", "api_calls", "total_cost")


@dataclass(frozen=True)
class Message:
    """One history message reduced to what a recount needs."""

    role: str
    agent: str
    demo: bool
    text: str
    """What is re-sent as input later: content, tool-call names and arguments."""
    thinking: str
    """Thinking blocks: billed as output of this turn only."""


def _content_text(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return parts
    raise RecordError("message content is neither text nor a list of parts")


def _tool_call_text(calls: Any) -> list[str]:
    parts: list[str] = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        for key in ("name", "arguments"):
            value = function.get(key)
            if isinstance(value, str):
                parts.append(value)
            elif value is not None:
                parts.append(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())
    return parts


def read_message(obj: Any) -> Message:
    if not isinstance(obj, dict):
        raise RecordError(f"message is not a JSON object, got {type(obj).__name__}")
    role = obj.get("role")
    if not isinstance(role, str) or not role:
        raise RecordError("message has no role")
    blocks = obj.get("thinking_blocks")
    blocks = blocks if isinstance(blocks, list) else []
    thoughts = [b["thinking"] for b in blocks if isinstance(b, dict) and isinstance(b.get("thinking"), str)]
    return Message(
        role=role,
        agent=text_or_none(obj.get("agent")) or "main",
        demo=obj.get("is_demo") is True or obj.get("message_type") == "demonstration",
        text="\n".join(_content_text(obj.get("content")) + _tool_call_text(obj.get("tool_calls"))),
        thinking="\n".join(thoughts),
    )


class Recount:
    """Token counts of message texts with one tokenizer, each distinct text counted once (by hash)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.by_hash: dict[bytes, int] = {}

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def prepare(self, texts: list[str]) -> None:
        """Count every new distinct text in one batch (tokenized on all cores)."""
        fresh: dict[bytes, str] = {}
        for text in texts:
            if text and (key := self._key(text)) not in self.by_hash:
                fresh.setdefault(key, text)
        if fresh:
            counts = self.tokenizer.count_batch([t.encode("utf-8", "replace").decode() for t in fresh.values()])
            self.by_hash.update(zip(fresh, counts, strict=True))

    def __call__(self, text: str) -> int:
        if not text:
            return 0
        key = self._key(text)
        if key not in self.by_hash:
            self.prepare([text])
        return self.by_hash[key]


def _config(value: Any) -> dict[str, Any]:
    """replay_config as an object (1.x writes it as a JSON string or an object); {} when unreadable."""
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def model_name(doc: dict[str, Any]) -> str | None:
    """The model as logged: SWE-agent 1.x replay_config, mini-swe-agent info.config; None before 1.0."""
    agent = _get(_config(doc.get("replay_config")), "agent")
    candidates = [_get(agent, "model", "name"), _get(doc, "info", "config", "model", "model_name")]
    configs = _get(agent, "agent_configs")
    if isinstance(configs, list) and configs:
        candidates.append(_get(configs[0], "model", "name"))
    return next((c for c in candidates if isinstance(c, str) and c), None)


class SweAgentParser:
    name = NAME
    description = "SWE-agent .traj / mini-swe-agent .traj.json trajectory (recounted calls + reported totals)"

    def sniff(self, prefix: bytes) -> bool:
        root, keys = scan_keys(prefix)
        if root != "{":
            return False
        if keys.get(("trajectory_format",), "").startswith(MINI_FORMAT) or ("info", "model_stats") in keys:
            return True
        return keys.get(("trajectory",)) == "[" and any(
            k in keys
            for k in (
                ("history",),
                ("info",),
                ("environment",),
                ("replay_config",),
                ("trajectory", "[]", "action"),
                ("trajectory", "[]", "response"),
            )
        )

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[pa.RecordBatch]:
        doc = read_document(source, ctx, "object")
        if doc is None:
            return
        yield from batches(_Trajectory(doc, source, ctx).rows(), ctx.batch_rows)


class _Trajectory:
    """One trajectory document being turned into rows."""

    def __init__(self, doc: dict[str, Any], source: InputFile, ctx: ParseContext) -> None:
        self.doc, self.source, self.ctx = doc, source, ctx
        self.mini = (isinstance(doc.get("messages"), list) and not isinstance(doc.get("history"), list)) or str(
            doc.get("trajectory_format") or ""
        ).startswith(MINI_FORMAT)
        logged = model_name(doc)
        self.provider, self.model = split_model(logged)
        self.model_tags = model_tags(logged, self.model)
        self.recount = Recount(tokenizer_for(self.model))
        instance = doc.get("instance_id")
        self.trace_id = instance if isinstance(instance, str) and instance else trace_stem(source)
        self.agent = "mini-swe-agent" if self.mini else "swe-agent"
        self.line = 0
        self.rows_out: list[dict[str, Any]] = []

    def next_record(self) -> int:
        self.line += 1
        self.ctx.records[self.source.name] += 1
        return self.line

    def skip(self, line: int, reason: str) -> None:
        self.ctx.skips.skip(self.source.name, line, reason)

    def emit(self, line: int, row: dict[str, Any]) -> None:
        row.update(source=self.source.name, line=line, format=NAME, trace_id=self.trace_id, agent=self.agent)
        row.setdefault("provider", self.provider)
        row.setdefault("model", self.model)
        self.rows_out.append(row)

    def recounted(self, input_tokens: int, output_tokens: int, basis: str) -> dict[str, Any]:
        return {
            "kind": Kind.LLM.value,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "usage_source": UsageSource.RECOUNTED.value,
            "tags": [("recount", basis), ("tokenizer", self.recount.tokenizer.label), *self.model_tags],
        }

    def rows(self) -> list[dict[str, Any]]:
        messages = self.read_messages("messages" if self.mini else "history")
        steps = self.read_steps()
        if self.mini:
            self.mini_calls(messages)
        elif steps and all(isinstance(step.get("query"), list) and step["query"] for _, step in steps):
            self.query_calls(steps, messages)
        elif messages is not None:
            self.history_calls(messages, steps)
        elif steps:
            self.ctx.notes["swe-agent trajectories without history (calls not rebuilt)"] += 1
        self.rollup()
        return self.rows_out

    def read_messages(self, key: str) -> list[tuple[int, Message, dict[str, Any]]] | None:
        raw = self.doc.get(key)
        if not isinstance(raw, list):
            return None
        out = []
        for obj in raw:
            line = self.next_record()
            try:
                out.append((line, read_message(obj), obj))
            except RecordError as exc:
                self.skip(line, str(exc))
        self.recount.prepare([m.text for _, m, _ in out] + [m.thinking for _, m, _ in out])
        return out

    def read_steps(self) -> list[tuple[int, dict[str, Any]]]:
        raw = self.doc.get("trajectory")
        out = []
        for step in raw if isinstance(raw, list) else ():
            line = self.next_record()
            if isinstance(step, dict):
                out.append((line, step))
            else:
                self.skip(line, f"trajectory step is not a JSON object, got {type(step).__name__}")
        return out

    def history_calls(self, messages: list[tuple[int, Message, dict[str, Any]]], steps: list[Any]) -> None:
        sent: defaultdict[str, int] = defaultdict(int)
        answered: set[str] = set()
        last_agent = "main"
        turns = 0
        for line, message, obj in messages:
            tokens = self.recount(message.text)
            if message.role == "assistant" and not message.demo:
                output = tokens + self.recount(message.thinking)
                self.emit(line, self.recounted(sent[message.agent], output, "history"))
                answered.add(_content(message.text, obj))
                last_agent = message.agent
                turns += 1
            sent[message.agent] += tokens
        self.unanswered_steps(steps[turns:], answered, sent[last_agent])

    def unanswered_steps(self, steps: list[tuple[int, dict[str, Any]]], answered: set[str], sent: int) -> None:
        """Trailing trajectory steps whose response is not in history: calls sent the whole history.

        Only steps beyond the number of assistant turns are candidates, so a build whose history words a
        response differently from its trajectory cannot have every call counted twice.
        """
        tail: list[tuple[int, dict[str, Any]]] = []
        for line, step in reversed(steps):
            response = step.get("response")
            if not isinstance(response, str) or response in answered:
                break
            tail.append((line, step))
        for line, step in reversed(tail):
            output = self.recount(step["response"])
            self.emit(line, self.recounted(sent, output, "trajectory step missing from history"))
            observation = step.get("observation")
            sent += output + (self.recount(observation) if isinstance(observation, str) else 0)

    def query_calls(
        self, steps: list[tuple[int, dict[str, Any]]], messages: list[tuple[int, Message, dict[str, Any]]] | None
    ) -> None:
        by_response = {_content(m.text, obj): m for _, m, obj in messages or () if m.role == "assistant" and not m.demo}
        for line, step in steps:
            try:
                query = [read_message(m) for m in step["query"]]
            except RecordError as exc:
                self.skip(line, f"trajectory step query: {exc}")
                continue
            self.recount.prepare([m.text for m in query])
            response = step.get("response")
            response = response if isinstance(response, str) else ""
            answer = by_response.get(response)
            output = self.recount(answer.text) + self.recount(answer.thinking) if answer else self.recount(response)
            self.emit(line, self.recounted(sum(self.recount(m.text) for m in query), output, "trajectory query"))

    def mini_calls(self, messages: list[tuple[int, Message, dict[str, Any]]] | None) -> None:
        sent = 0
        for line, message, obj in messages or ():
            tokens = self.recount(message.text)
            if message.role == "assistant" and not message.demo:
                try:
                    row = self.reported_call(obj)
                except RecordError as exc:
                    self.skip(line, str(exc))
                    row = None
                if row is None:
                    row = self.recounted(sent, tokens + self.recount(message.thinking), "messages")
                self.emit(line, row)
            sent += tokens

    def reported_call(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The row of a mini-swe-agent message whose provider response (with usage) was logged, else None."""
        extra = message.get("extra")
        response = extra.get("response") if isinstance(extra, dict) else None
        if not isinstance(response, dict) or not isinstance(response.get("usage"), dict):
            return None
        usage = openai.extract_usage(response)
        if usage is None or not usage.reported:
            return None
        logged = text_or_none(response.get("model"))
        provider, model = split_model(logged) if logged else (self.provider, self.model)
        assert isinstance(extra, dict)
        start = timestamp_us(extra.get("timestamp"))
        if start is None:
            start = timestamp_us(openai.created(response))
        return checked_row(
            {
                "kind": Kind.LLM.value,
                "record_id": text_or_none(response.get("id")),
                "start": start,
                "provider": provider,
                "model": model,
                **usage.columns(),
                "usage_source": UsageSource.REPORTED.value,
                "reported_cost_usd": non_negative(extra.get("cost")),
                "tags": model_tags(logged, model) or None,
            }
        )

    def rollup(self) -> None:
        stats = _get(self.doc, "info", "model_stats")
        if stats is None:
            return
        line = self.next_record()
        if not isinstance(stats, dict):
            self.skip(line, "info.model_stats is not an object")
            return
        cost = non_negative(stats.get("instance_cost"))
        if cost is None:
            self.skip(line, "info.model_stats.instance_cost is not a non-negative number")
            return
        tags = [("reported_by", "info.model_stats.instance_cost")]
        tags += [(k, text) for k in STATS_TAGS if (text := number_text(stats.get(k))) is not None]
        self.emit(line, {"kind": Kind.ROLLUP.value, "reported_cost_usd": cost, "tags": tags + self.model_tags})


def _content(text: str, obj: Any) -> str:
    """The plain content of an assistant message, as a trajectory step's `response` repeats it."""
    content = obj.get("content") if isinstance(obj, dict) else None
    return "\n".join(_content_text(content)) if isinstance(content, str | list) else text
