#!/usr/bin/env python3
"""Generate a deterministic Claude Code log tree (like `~/.claude/projects`) of N API requests for benchmarking.

Layout, as Claude Code 2.x writes it:

    <root>/projects/<project-dir>/<sessionId>.jsonl                               main thread of a session
    <root>/projects/<project-dir>/<sessionId>/subagents/agent-<agentId>.jsonl     Task subagents (isSidechain)
    <root>/projects/<project-dir>/<sessionId>/subagents/agent-acompact-<id>.jsonl  auto-compaction calls
    <root>/bench-manifest.json                                                     the true token totals

Every trap of FORMATS.md §1 is in the data: each API response is written as one `assistant` line per content
block (thinking / text / tool_use), all repeating `message.usage`, and about a third of the responses have
`output_tokens` growing across those lines (the last line holds the real count); subagent calls are written
twice, in their own file and embedded in the parent's `progress` lines (`data.type == "agent_progress"`); a
few `<synthetic>` messages have zero usage; the Task tool result carries the subagent's last `usage` again.
`user` lines carry tool results of realistic size (with the `toolUseResult` copy), and `system`, `summary`
and `file-history-snapshot` lines are mixed in.

A session is 10-300 requests (log-uniform, subagent and compaction calls included); `--requests` counts
distinct billed API responses. The manifest holds the totals a correct reader must find (one call per
`(message.id, requestId)`, last line's usage) and the output a keep-first reader finds instead.

Files are written as they are generated (one session's buffers at a time), so memory stays flat whatever N
is. The same `--requests` and `--seed` always produce byte-identical files.

    python benchmarks/gen_claude_tree.py --requests 100000 -o /tmp/bench/claude-tree --seed 7
"""

from __future__ import annotations

import argparse
import base64
import math
import random
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

START = datetime(2025, 11, 25, tzinfo=UTC)
DAYS = 30
MANIFEST = "bench-manifest.json"

SONNET = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-5-20251101"
HAIKU = "claude-haiku-4-5-20251001"
SYNTHETIC = "<synthetic>"
# Main-thread model of a session: mostly Sonnet.
SESSION_MODELS = ((SONNET, 0.72), (OPUS, 0.2), (HAIKU, 0.08))

PROJECTS = (
    "/home/dev/code/acme-api",
    "/home/dev/code/acme-web",
    "/home/dev/code/billing-service",
    "/home/dev/code/data-pipeline",
    "/home/dev/src/github.com/costscope/costscope",
    "/home/dev/code/infra.terraform",
    "/home/dev/notes",
    "/home/dev/code/mobile-app",
)
PROJECT_WEIGHTS = (0.22, 0.16, 0.14, 0.12, 0.12, 0.1, 0.06, 0.08)
BRANCHES = ("main", "main", "main", "feature/parser-fix", "fix/retry-timeouts", "chore/deps")
VERSIONS = tuple(f"2.0.{v}" for v in range(50, 77))
SUBAGENT_TYPES = (("Explore", 0.55), ("general-purpose", 0.3), ("Plan", 0.15))
TOOLS = (
    ("Read", 0.34),
    ("Bash", 0.24),
    ("Edit", 0.16),
    ("Grep", 0.12),
    ("Glob", 0.06),
    ("Write", 0.04),
    ("TodoWrite", 0.04),
)

MIN_SESSION, MAX_SESSION = 10, 300
COMPACT_AT = 150_000  # context tokens that trigger an auto-compaction (stays under the 200k long-context tier)
TASK_P = 0.03  # chance that a main-thread tool call is a Task (subagent) call
SYNTHETIC_P = 0.006  # chance per turn of an interrupted request answered by a <synthetic> message
GROW_P = 0.6  # chance that a multi-line response has growing output_tokens (about a third of all responses)
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

CODE_LINES = (
    "def {w}_{v}(self, {x}: {t}) -> {t}:",
    '    """Return the {w} {v} for the given {x}."""',
    "    if {x} is None:",
    '        raise ValueError(f"missing {x}: {{{x}!r}}")',
    "    result = self._{w}.get({x}, {n})",
    "    for item in {x}s:",
    "        total += item.{v} * {n}",
    "    return {w}_{v}({x}, strict=True)",
    "class {W}{V}({W}Base):",
    "import {w}.{v} as {v}",
    "from .{w} import {W}, {V}{W}",
    '    logger.debug("{w} {v} took %.2f ms", elapsed * 1000)',
    "        await self.{v}_{w}({x}, timeout={n})",
    "  {n} | const {x} = await fetch{W}({v}Id, {{ retries: {n} }});",
    "-rw-r--r--  1 dev dev  {n} Nov 26 10:{n2} src/{w}/{v}.py",
    "tests/test_{w}.py::test_{v}_{x} PASSED                                   [ {n2}%]",
    "src/{w}/{v}.py:{n}:    return self.{x}  # TODO: {w} the {v}",
    '    assert {w}_{v}({x}) == {n}, "{V} {x} mismatch"',
    "",
    "# {W} {v}: keep the {x} sorted by {w} so that lookups stay O(log n).",
    '{{"{w}": "{v}", "{x}": {n}, "enabled": true}}',
    "    {x} = [{w} for {w} in {v}_list if {w}.{x} > {n}]",
    "error[E0308]: mismatched types in {w}::{v} at line {n}",
    "    except ({W}Error, TimeoutError) as exc:",
    '        return {{"{x}": {x}, "{v}": self.{w}}}',
)
WORDS = (
    "parse",
    "price",
    "usage",
    "token",
    "cache",
    "model",
    "agent",
    "trace",
    "session",
    "record",
    "batch",
    "report",
    "merge",
    "filter",
    "config",
    "client",
    "retry",
    "stream",
    "buffer",
    "schema",
    "render",
    "table",
    "cost",
    "step",
    "index",
    "event",
    "span",
    "file",
    "path",
    "row",
    "column",
    "total",
    "tenant",
    "window",
    "limit",
    "state",
)
PROSE = (
    "I'll look at the parser first to see how it handles the trailing newline, then run the failing test. "
    "The issue is that the loop breaks before the last record is flushed, so the final call is dropped. "
    "Let me check the other callers of this function to make sure the change does not break them. "
    "All tests pass now. I also added a regression test covering an empty file and a file without a final "
    "newline. Next I will update the changelog and the documentation of the option. "
    "Looking at the stack trace, the timeout comes from the retry wrapper, which sleeps longer than the "
    "request deadline. Reducing the backoff cap fixes it without changing the public behaviour. "
    "The migration adds the index concurrently, so it will not lock the table during the deploy. "
).split(". ")


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


def _loguniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _text_pool(rng: random.Random, lines: int) -> str:
    """Code-, log- and listing-like text with newlines; tool results are slices of it."""
    out = []
    for _ in range(lines):
        w, v, x = rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS)
        out.append(
            rng.choice(CODE_LINES).format(
                w=w,
                v=v,
                x=x,
                W=w.title(),
                V=v.title(),
                t=rng.choice(("int", "str", "Path", "list[str]")),
                n=rng.randrange(1, 5000),
                n2=rng.randrange(10, 100),
            )
        )
    return "\n".join(out)


def _prose_pool(rng: random.Random, sentences: int) -> str:
    return ". ".join(rng.choice(PROSE) for _ in range(sentences)) + "."


class Tree:
    """Writes sessions one at a time, keeping the totals the manifest reports."""

    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.projects_dir = root / "projects"
        self.rng = random.Random(seed)
        rng = self.rng
        self.code = _text_pool(rng, 60_000)
        self.prose = _prose_pool(rng, 20_000)
        self.sig = base64.b64encode(rng.randbytes(300_000)).decode()
        self.day_prefix = [(START + timedelta(days=d)).strftime("%Y-%m-%dT") for d in range(DAYS + 40)]
        self.dumps = orjson.dumps
        # Totals: per model [calls, input, output (last line), output (first line), cw, cw 5m, cw 1h, cr].
        self.by_model: dict[str, list[int]] = {}
        self.requests = self.lines = self.bytes = self.files = 0
        self.sessions = self.subagent_files = self.compactions = 0
        self.synthetic = self.progress_lines = self.multi_line = self.growing = 0

    # ----------------------------------------------------------------------------------------------- ids & text
    def uuid(self) -> str:
        x = self.rng.getrandbits(128)
        return (
            f"{x >> 96:08x}-{(x >> 80) & 0xFFFF:04x}-4{(x >> 68) & 0xFFF:03x}-"
            f"{8 | ((x >> 66) & 3):x}{(x >> 52) & 0xFFF:03x}-{x & 0xFFFFFFFFFFFF:012x}"
        )

    def b62(self, prefix: str, n: int) -> str:
        return prefix + "".join(self.rng.choices(BASE62, k=n))

    def iso(self, ms: int) -> str:
        day, ms = divmod(ms, 86_400_000)
        sec, ms = divmod(ms, 1000)
        hour, sec = divmod(sec, 3600)
        minute, sec = divmod(sec, 60)
        return f"{self.day_prefix[day]}{hour:02d}:{minute:02d}:{sec:02d}.{ms:03d}Z"

    def slice(self, pool: str, size: int) -> str:
        start = self.rng.randrange(len(pool) - size - 1)
        return pool[start : start + size]

    def code_text(self, low: int, high: int) -> str:
        return self.slice(self.code, int(_loguniform(self.rng, low, high)))

    def prose_text(self, low: int, high: int) -> str:
        """Sentences of about the drawn size, starting at a sentence start."""
        size = int(_loguniform(self.rng, low, high))
        start = self.prose.find(". ", self.rng.randrange(len(self.prose) - size - 400)) + 2
        return self.prose[start : start + size].rstrip()

    # ------------------------------------------------------------------------------------------------- output
    def emit(self, buf: bytearray, obj: dict[str, Any]) -> bytes:
        line = self.dumps(obj)
        buf += line
        buf += b"\n"
        self.lines += 1
        return line

    def write(self, path: Path, buf: bytearray, mode: str = "wb") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, mode) as fh:
            fh.write(buf)
        self.bytes += len(buf)
        buf.clear()

    def count(self, model: str, usage: dict[str, Any], first_output: int) -> None:
        t = self.by_model.setdefault(model, [0] * 8)
        cc = usage["cache_creation"]
        t[0] += 1
        t[1] += usage["input_tokens"]
        t[2] += usage["output_tokens"]
        t[3] += first_output
        t[4] += usage["cache_creation_input_tokens"]
        t[5] += cc["ephemeral_5m_input_tokens"]
        t[6] += cc["ephemeral_1h_input_tokens"]
        t[7] += usage["cache_read_input_tokens"]
        self.requests += 1

    # -------------------------------------------------------------------------------------------- a session
    def session(self, budget: int, start_ms: int) -> None:
        rng = self.rng
        p = rng.choices(range(len(PROJECTS)), PROJECT_WEIGHTS)[0]
        cwd = PROJECTS[p]
        project_dir = self.projects_dir / cwd.replace("/", "-").replace(".", "-")
        sid = self.uuid()
        path = project_dir / f"{sid}.jsonl"
        version = VERSIONS[min(len(VERSIONS) - 1, start_ms * len(VERSIONS) // (DAYS * 86_400_000))]
        base = {
            "parentUuid": None,
            "isSidechain": False,
            "userType": "external",
            "cwd": cwd,
            "sessionId": sid,
            "version": version,
            "gitBranch": rng.choice(BRANCHES),
        }
        thread = Thread(
            self,
            base,
            model=_weighted(rng, SESSION_MODELS),
            ttl_1h=rng.random() < 0.6,
            thinking=rng.random() < 0.6,
            ctx=rng.randrange(14_000, 26_000),
            clock=start_ms,
        )
        buf = bytearray()
        self.sessions += 1
        self.files += 1
        if rng.random() < 0.3:
            self.emit(buf, {"type": "summary", "summary": self.prose_text(30, 90), "leafUuid": self.uuid()})
        session_dir = project_dir / sid / "subagents"
        left = budget
        while left > 0:
            # One turn: a prompt, then tool-using requests until a final answer (or the budget runs out).
            turn = min(left, 1 + int(rng.expovariate(1 / 7)))
            thread.user_prompt(buf, self.prose_text(40, 600))
            if rng.random() < SYNTHETIC_P:
                thread.synthetic(buf)
            for i in range(turn):
                if left <= 0:
                    break
                if thread.ctx > COMPACT_AT:
                    thread.compact(buf, session_dir)
                    left -= 1
                    if left <= 0:
                        break
                last = i == turn - 1
                if not last and left >= 4 and rng.random() < TASK_P:
                    left -= thread.task(buf, session_dir, left - 1)
                else:
                    thread.request(buf, tool=not last)
                left -= 1
                if len(buf) > 1 << 22:
                    self.write(path, buf, "ab")
            if rng.random() < 0.05:
                thread.system_line(buf)
        self.write(path, buf, "ab")


class Thread:
    """One conversation thread (a session's main thread or a subagent) and its growing cached context."""

    def __init__(
        self, tree: Tree, base: dict[str, Any], *, model: str, ttl_1h: bool, thinking: bool, ctx: int, clock: int
    ) -> None:
        self.tree = tree
        self.rng = tree.rng
        self.base = base
        self.model = model
        self.ttl_1h = ttl_1h
        self.thinking = thinking
        self.ctx = ctx  # tokens of the prompt prefix the next request sends
        self.cached = 0  # tokens of that prefix already in the cache
        self.clock = clock
        self.parent_uuid: str | None = None
        self.pending: list[tuple[str, str, str]] = []  # (tool_use id, tool name, tool input summary)
        self.sink: list[tuple[dict[str, Any], dict[str, Any]]] | None = None  # subagent lines to embed in progress
        self.last_usage: dict[str, Any] = {}

    def line(self, buf: bytearray, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        uid = self.tree.uuid()
        obj = dict(self.base)
        obj["parentUuid"] = self.parent_uuid
        obj["type"] = kind
        obj.update(fields)
        obj["uuid"] = uid
        obj["timestamp"] = self.tree.iso(self.clock)
        self.tree.emit(buf, obj)
        self.parent_uuid = uid
        return obj

    def tick(self, low_ms: int, high_ms: int) -> None:
        self.clock += self.rng.randrange(low_ms, high_ms)

    # ----------------------------------------------------------------------------------------- user side
    def user_prompt(self, buf: bytearray, text: str) -> None:
        tree = self.tree
        if not self.base["isSidechain"]:
            msg_uuid = tree.uuid()
            snapshot = {"messageId": msg_uuid, "trackedFileBackups": {}, "timestamp": tree.iso(self.clock)}
            if self.rng.random() < 0.5:
                snapshot["trackedFileBackups"] = {
                    f"{self.base['cwd']}/src/{self.rng.choice(WORDS)}.py": {
                        "backupFileName": f"{tree.uuid()[:16]}@v{self.rng.randrange(1, 9)}",
                        "version": self.rng.randrange(1, 9),
                        "backupTime": tree.iso(self.clock),
                    }
                }
            tree.emit(
                buf,
                {
                    "type": "file-history-snapshot",
                    "messageId": msg_uuid,
                    "snapshot": snapshot,
                    "isSnapshotUpdate": False,
                },
            )
        self.tick(20_000, 600_000)
        fields = {"message": {"role": "user", "content": text}}
        if not self.base["isSidechain"]:
            fields["thinkingMetadata"] = {
                "level": "high" if self.thinking else "none",
                "disabled": not self.thinking,
                "triggers": [],
            }
            fields["todos"] = []
        self.line(buf, "user", fields)
        self.ctx += len(text) // 4 + 10

    def tool_results(self, buf: bytearray) -> None:
        """One user line per pending tool call, with the result text and Claude Code's `toolUseResult` copy."""
        rng = self.rng
        for tool_id, name, target in self.pending:
            self.tick(50, 8_000)
            if name == "Read":
                text = self.tree.code_text(100, 1_600)
                result: dict[str, Any] = {
                    "type": "text",
                    "file": {
                        "filePath": target,
                        "content": text,
                        "numLines": text.count("\n") + 1,
                        "startLine": 1,
                        "totalLines": text.count("\n") + 1 + rng.randrange(0, 400),
                    },
                }
            elif name == "Bash":
                text = self.tree.code_text(20, 1_000)
                result = {"stdout": text, "stderr": "", "interrupted": False, "isImage": False}
            elif name in ("Grep", "Glob"):
                files = [
                    f"{self.base['cwd']}/src/{rng.choice(WORDS)}/{rng.choice(WORDS)}.py"
                    for _ in range(rng.randrange(1, 10))
                ]
                text = f"Found {len(files)} files\n" + "\n".join(files)
                result = {
                    "mode": "files_with_matches",
                    "filenames": files,
                    "numFiles": len(files),
                    "durationMs": rng.randrange(5, 900),
                }
            elif name == "TodoWrite":
                text = "Todos have been modified successfully. Ensure that you continue to use the todo list."
                result = {
                    "oldTodos": [],
                    "newTodos": [
                        {"content": self.tree.prose_text(20, 80), "status": "pending", "activeForm": "Working"}
                    ],
                }
            else:  # Edit / Write
                snippet = self.tree.code_text(80, 800)
                text = f"The file {target} has been updated. Here's the result of running `cat -n` on a snippet:\n"
                text += snippet
                result = {
                    "filePath": target,
                    "oldString": snippet[: len(snippet) // 3],
                    "newString": snippet[: len(snippet) // 2],
                    "originalFile": None,
                    "userModified": False,
                    "replaceAll": False,
                    "structuredPatch": [
                        {"oldStart": 1, "oldLines": 3, "newStart": 1, "newLines": 4, "lines": snippet.split("\n")[:4]}
                    ],
                }
            is_error = rng.random() < 0.03
            content = {"tool_use_id": tool_id, "type": "tool_result", "content": text}
            if is_error:
                content["is_error"] = True
            self.line(buf, "user", {"message": {"role": "user", "content": [content]}, "toolUseResult": result})
            self.ctx += len(text) // 4 + 20
        self.pending = []

    # ------------------------------------------------------------------------------------- assistant side
    def usage(self, output: int) -> dict[str, Any]:
        """Usage of the next request: the cached prefix is read, the rest of the context written to cache."""
        rng = self.rng
        if self.cached and rng.random() < 0.03:  # cache expired / invalidated: rewrite the whole prefix
            self.cached = 0
        read = self.cached
        uncached = rng.randrange(1, 12) if read else rng.randrange(3, 9)
        write = max(0, self.ctx - read - uncached)
        self.cached = self.ctx
        return {
            "input_tokens": uncached,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 0 if self.ttl_1h else write,
                "ephemeral_1h_input_tokens": write if self.ttl_1h else 0,
            },
            "output_tokens": output,
            "service_tier": "standard",
        }

    def blocks(self, tool: bool, thinking: bool) -> list[dict[str, Any]]:
        rng, tree = self.rng, self.tree
        out: list[dict[str, Any]] = []
        if thinking:
            out.append(
                {
                    "type": "thinking",
                    "thinking": tree.prose_text(60, 1_200),
                    "signature": tree.slice(tree.sig, rng.randrange(200, 800)),
                }
            )
        if not tool or rng.random() < 0.4:
            out.append({"type": "text", "text": tree.prose_text(20, 500 if tool else 1_200)})
        if tool:
            for _ in range(1 if rng.random() < 0.88 else rng.randrange(2, 4)):
                name = _weighted(rng, TOOLS)
                target = f"{self.base['cwd']}/src/{rng.choice(WORDS)}/{rng.choice(WORDS)}.py"
                if name == "Read":
                    args: dict[str, Any] = {"file_path": target}
                elif name == "Bash":
                    args = {
                        "command": rng.choice(
                            ("pytest -q", "git status", "ruff check .", "ls -la src", "python -m build")
                        ),
                        "description": "Run a check",
                    }
                elif name in ("Grep", "Glob"):
                    args = {"pattern": rng.choice(WORDS), "path": self.base["cwd"], "output_mode": "files_with_matches"}
                elif name == "TodoWrite":
                    args = {
                        "todos": [
                            {"content": tree.prose_text(20, 80), "status": "in_progress", "activeForm": "Working"}
                        ]
                    }
                else:
                    snippet = tree.code_text(60, 800)
                    args = {"file_path": target, "old_string": snippet[: len(snippet) // 2], "new_string": snippet}
                tool_id = tree.b62("toolu_01", 22)
                out.append({"type": "tool_use", "id": tool_id, "name": name, "input": args})
                self.pending.append((tool_id, name, target))
        return out

    def respond(self, buf: bytearray, blocks: list[dict[str, Any]], output: int, model: str | None = None) -> str:
        """Write one API response as one assistant line per content block; returns the last line's uuid."""
        rng, tree = self.rng, self.tree
        model = model or self.model
        usage = self.usage(output)
        message_id = tree.b62("msg_01", 22)
        request_id = tree.b62("req_011C", 20)
        n = len(blocks)
        outputs = [output] * n
        if n > 1:
            tree.multi_line += 1
            if rng.random() < GROW_P:
                # Streaming: the first lines carry a placeholder count, the last one the real total.
                tree.growing += 1
                steps = sorted(rng.randrange(1, max(2, output)) for _ in range(n - 2))
                outputs = [min(output, rng.randrange(1, 12)), *steps, output]
        self.tick(1_500, 25_000)
        for block, out in zip(blocks, outputs, strict=True):
            u = dict(usage)
            u["output_tokens"] = out
            message = {
                "model": model,
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "content": [block],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": u,
            }
            obj = self.line(buf, "assistant", {"message": message, "requestId": request_id})
            if self.sink is not None:
                self.sink.append(
                    (
                        {
                            "type": "assistant",
                            "message": message,
                            "requestId": request_id,
                            "uuid": obj["uuid"],
                            "timestamp": obj["timestamp"],
                        },
                        obj,
                    )
                )
            self.tick(100, 4_000)
        tree.count(model, usage, outputs[0])
        self.ctx += output
        self.last_usage = usage
        return self.parent_uuid or ""

    def request(self, buf: bytearray, tool: bool) -> None:
        rng = self.rng
        thinking = self.thinking and self.model != HAIKU and rng.random() < 0.5
        blocks = self.blocks(tool, thinking)
        output = int(_loguniform(rng, 20, 1_800 if tool else 3_000))
        if thinking:
            output += int(_loguniform(rng, 80, 4_000))
        self.respond(buf, blocks, output)
        self.tool_results(buf)

    def synthetic(self, buf: bytearray) -> None:
        """An interrupted request: Claude Code writes a placeholder `<synthetic>` message with zero usage."""
        tree = self.tree
        self.line(
            buf,
            "user",
            {"message": {"role": "user", "content": [{"type": "text", "text": "[Request interrupted by user]"}]}},
        )
        zero = {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "server_tool_use": {"web_search_requests": 0},
            "service_tier": None,
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        }
        message = {
            "id": tree.uuid(),
            "container": None,
            "model": SYNTHETIC,
            "role": "assistant",
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "type": "message",
            "usage": zero,
            "content": [{"type": "text", "text": "No response requested."}],
        }
        self.line(buf, "assistant", {"message": message, "isApiErrorMessage": False})
        tree.synthetic += 1

    def system_line(self, buf: bytearray) -> None:
        self.line(
            buf,
            "system",
            {"subtype": "informational", "content": "Model switched for this turn", "isMeta": False, "level": "info"},
        )

    # -------------------------------------------------------------------------------- subagents, compaction
    def child_base(self, agent_id: str) -> dict[str, Any]:
        base = dict(self.base)
        base["isSidechain"] = True
        base["agentId"] = agent_id
        return base

    def task(self, buf: bytearray, session_dir: Path, budget: int) -> int:
        """A Task call: the parent's request, the subagent's own file, progress copies, the tool result.

        Returns the subagent requests made (the parent's Task request itself is counted by the caller)."""
        rng, tree = self.rng, self.tree
        kind = _weighted(rng, SUBAGENT_TYPES)
        prompt = tree.prose_text(80, 700)
        tool_id = tree.b62("toolu_01", 22)
        blocks = []
        if rng.random() < 0.6:
            blocks.append({"type": "text", "text": tree.prose_text(40, 300)})
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_id,
                "name": "Task",
                "input": {"description": f"{kind} {rng.choice(WORDS)} code", "prompt": prompt, "subagent_type": kind},
            }
        )
        output = int(_loguniform(rng, 80, 900))
        task_uuid = self.respond(buf, blocks, output)

        agent_id = f"{rng.getrandbits(32):08x}"
        model = HAIKU if kind == "Explore" and rng.random() < 0.6 else self.model
        child = Thread(
            tree,
            self.child_base(agent_id),
            model=model,
            ttl_1h=rng.random() < 0.3,
            thinking=self.thinking and kind != "Explore",
            ctx=rng.randrange(5_000, 13_000),
            clock=self.clock,
        )
        child.sink = []
        sub = bytearray()
        calls = min(budget, 2 + int(rng.expovariate(1 / 10)))
        child.user_prompt(sub, prompt)
        for i in range(calls):
            child.request(sub, tool=i < calls - 1)
        tree.write(session_dir / f"agent-{agent_id}.jsonl", sub)
        tree.files += 1
        tree.subagent_files += 1

        # The parent's copies: one progress line per subagent line, then the Task result.
        self.clock = child.clock
        for inner, line in child.sink:
            obj = dict(self.base)
            obj.update(
                parentUuid=task_uuid,
                type="progress",
                data={
                    "message": inner,
                    "normalizedMessages": [],
                    "type": "agent_progress",
                    "prompt": prompt,
                    "agentId": agent_id,
                },
                toolUseID=tree.b62("agent_msg_01", 22),
                parentToolUseID=tool_id,
                uuid=tree.uuid(),
                timestamp=line["timestamp"],
            )
            tree.emit(buf, obj)
            tree.progress_lines += 1
        report = tree.prose_text(200, 2_500)
        usage = child.last_usage
        result = {
            "status": "completed",
            "prompt": prompt,
            "agentId": agent_id,
            "content": [{"type": "text", "text": report}],
            "totalDurationMs": child.clock - self.clock + 1,
            "totalTokens": sum(
                usage[k]
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
            ),
            "totalToolUseCount": calls - 1,
            "usage": usage,
        }
        self.pending = []
        self.tick(10, 500)
        self.line(
            buf,
            "user",
            {
                "message": {
                    "role": "user",
                    "content": [
                        {"tool_use_id": tool_id, "type": "tool_result", "content": [{"type": "text", "text": report}]}
                    ],
                },
                "toolUseResult": result,
            },
        )
        self.ctx += len(report) // 4 + 20
        return calls

    def compact(self, buf: bytearray, session_dir: Path) -> None:
        """Auto-compaction: the summary call goes to `agent-acompact-*.jsonl`, the context restarts small."""
        rng, tree = self.rng, self.tree
        agent_id = f"acompact-{rng.getrandbits(24):06x}"
        child = Thread(
            tree,
            self.child_base(agent_id),
            model=self.model,
            ttl_1h=self.ttl_1h,
            thinking=False,
            ctx=self.ctx,
            clock=self.clock,
        )
        child.cached = self.cached
        sub = bytearray()
        child.user_prompt(
            sub, "Your task is to create a detailed summary of the conversation so far. " + tree.prose_text(200, 800)
        )
        summary = tree.prose_text(2_000, 9_000)
        child.respond(sub, [{"type": "text", "text": summary}], int(_loguniform(rng, 1_500, 6_000)))
        tree.write(session_dir / f"agent-{agent_id}.jsonl", sub)
        tree.files += 1
        tree.subagent_files += 1
        tree.compactions += 1
        self.clock = child.clock
        pre = self.ctx
        self.parent_uuid, logical = None, self.parent_uuid
        self.line(
            buf,
            "system",
            {
                "logicalParentUuid": logical,
                "subtype": "compact_boundary",
                "content": "Conversation compacted",
                "isMeta": False,
                "level": "info",
                "compactMetadata": {"trigger": "auto", "preTokens": pre},
            },
        )
        self.line(
            buf,
            "user",
            {
                "message": {
                    "role": "user",
                    "content": "This session is being continued from a "
                    "previous conversation that ran out of context. " + summary,
                },
                "isVisibleInTranscriptOnly": True,
                "isCompactSummary": True,
            },
        )
        self.ctx = rng.randrange(14_000, 26_000) + len(summary) // 4
        self.cached = 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="distinct API requests to write")
    parser.add_argument("-o", "--output", required=True, help="root directory (like ~/.claude); projects/ inside")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error("--requests must be at least 1")

    root = Path(args.output)
    projects = root / "projects"
    if projects.exists():
        if not (root / MANIFEST).is_file():
            parser.error(f"{projects} exists and was not written by this script (no {MANIFEST}); remove it first")
        shutil.rmtree(projects)
    projects.mkdir(parents=True)
    tree = Tree(root, args.seed)
    started = time.perf_counter()
    rng = tree.rng
    left = args.requests
    while left > 0:
        budget = min(left, int(_loguniform(rng, MIN_SESSION, MAX_SESSION + 1)))
        before = tree.requests
        tree.session(budget, rng.randrange(0, DAYS * 86_400_000))
        left -= tree.requests - before
    elapsed = time.perf_counter() - started

    names = (
        "calls",
        "input_tokens",
        "output_tokens",
        "output_tokens_first_line",
        "cache_creation_input_tokens",
        "ephemeral_5m_input_tokens",
        "ephemeral_1h_input_tokens",
        "cache_read_input_tokens",
    )
    by_model = {m: dict(zip(names, v, strict=True)) for m, v in sorted(tree.by_model.items())}
    totals = {k: sum(m[k] for m in by_model.values()) for k in names}
    manifest = {
        "generator": "benchmarks/gen_claude_tree.py",
        "seed": args.seed,
        "requests": tree.requests,
        "lines": tree.lines,
        "bytes": tree.bytes,
        "files": tree.files,
        "sessions": tree.sessions,
        "subagent_files": tree.subagent_files,
        "compactions": tree.compactions,
        "synthetic_messages": tree.synthetic,
        "progress_lines": tree.progress_lines,
        "multi_line_responses": tree.multi_line,
        "growing_output_responses": tree.growing,
        "totals": totals,
        "by_model": by_model,
    }
    (root / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    print(
        f"wrote {tree.requests:,} requests, {tree.lines:,} lines, {tree.bytes:,} bytes ({tree.bytes / 2**20:.1f} MiB) "
        f"in {tree.files:,} files ({tree.sessions:,} sessions, {tree.subagent_files:,} subagent files) "
        f"to {projects} in {elapsed:.2f} s"
    )
    print(
        f"  {tree.growing:,} of {tree.requests:,} responses have growing output_tokens "
        f"({tree.multi_line:,} span several lines); {tree.progress_lines:,} progress lines; "
        f"{tree.synthetic:,} <synthetic> messages; {tree.compactions:,} compactions; manifest {root / MANIFEST}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
