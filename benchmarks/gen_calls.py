#!/usr/bin/env python3
"""Generate a deterministic request/response JSON Lines file of N LLM calls for benchmarking costscope.

Each line is one call in the wrapper form costscope's call-log parser reads:

    {"timestamp", "trace_id", "agent", "tenant", "operation", "provider",
     "request": {"model", "messages": [...]}, "response": {... provider body with usage ...}}

The responses mix three provider shapes, decided per call: Anthropic Messages (~40%), OpenAI Chat
Completions (~40%) and Gemini generateContent (~20%). Calls are grouped in traces of 1-40 steps in time
order, spread over 30 days; the prompt context grows along a trace and later steps read it from cache.

The file is streamed: random draws are made per chunk of traces with numpy, each record is serialized with
orjson and every chunk is written in one call, so memory stays flat whatever N is. The same `--seed`
and `--calls` always produce byte-identical output.

    python benchmarks/gen_calls.py --calls 1000000 -o /tmp/bench/calls-1m.jsonl --seed 7
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 30
SPAN_MS = DAYS * 86_400_000

AGENTS = ("planner", "researcher", "coder", "reviewer", "support-bot", "summarizer")
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka")
OPERATIONS = ("chat", "plan", "tool_call", "summarize")

# (family, provider, model, weight of the model among all calls)
MODELS = (
    ("anthropic", "anthropic", "claude-sonnet-4-5-20250929", 0.22),
    ("anthropic", "anthropic", "claude-haiku-4-5-20251001", 0.18),
    ("openai", "openai", "gpt-4.1-mini", 0.24),
    ("openai", "openai", "gpt-5", 0.16),
    ("gemini", "google", "gemini-2.5-flash", 0.20),
)
ANTHROPIC, OPENAI, GEMINI = 0, 1, 2
FAMILY_CODE = {"anthropic": ANTHROPIC, "openai": OPENAI, "gemini": GEMINI}

MIN_INPUT, MAX_INPUT = 500, 80_000
MIN_OUTPUT, MAX_OUTPUT = 20, 3_000
MAX_TRACE = 40

WORDS = (
    "please review the failing test and propose a minimal fix for the parser when the input file has a "
    "trailing newline summarize the customer ticket history and draft a polite reply explaining the refund "
    "policy search the knowledge base for the latest deployment runbook and list the rollback steps compare "
    "these two quarterly reports highlight revenue changes by region translate the release notes into plain "
    "language for non technical users extract every invoice number date and amount from the attached text "
    "plan the next three tool calls needed to answer the question about shipping delays check the database "
    "schema migration for missing indexes write unit tests covering edge cases empty input unicode large values"
).split()


def _prompt_pool(rng: np.random.Generator, size: int = 1024) -> list[str]:
    """`size` user prompts of ~100-300 characters made of task-like words."""
    pool = []
    for _ in range(size):
        target = int(rng.integers(100, 290))
        words: list[str] = []
        length = 0
        while length < target:
            word = WORDS[int(rng.integers(len(WORDS)))]
            words.append(word)
            length += len(word) + 1
        text = " ".join(words)
        pool.append(text[0].upper() + text[1:] + ".")
    return pool


def _loguniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


class Generator:
    """Deterministic chunked generator of call records (as JSON lines)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.prompts = _prompt_pool(self.rng)
        self.day_prefix = [(START + timedelta(days=d)).strftime("%Y-%m-%dT") for d in range(DAYS + 1)]
        self.start_epoch_s = int(START.timestamp())
        weights = np.array([m[3] for m in MODELS])
        self.model_cdf = np.cumsum(weights / weights.sum())
        self.model_family = np.array([FAMILY_CODE[m[0]] for m in MODELS])
        self.next_trace = 0
        self.next_call = 0

    def _iso(self, offset_ms: int) -> str:
        day, ms = divmod(offset_ms, 86_400_000)
        sec, ms = divmod(ms, 1000)
        hour, sec = divmod(sec, 3600)
        minute, sec = divmod(sec, 60)
        return f"{self.day_prefix[day]}{hour:02d}:{minute:02d}:{sec:02d}.{ms:03d}Z"

    def chunk(self, max_calls: int, traces: int = 4096) -> tuple[bytearray, int]:
        """(JSON Lines bytes, call count) of up to `max_calls` calls, whole traces except possibly the last one."""
        rng = self.rng
        # Trace shapes: lengths 1-40 (skewed short, mean ~8), a start time, an agent/tenant/operation.
        lengths = np.minimum(rng.geometric(0.12, traces), MAX_TRACE)
        ends = np.cumsum(lengths)
        keep = int(np.searchsorted(ends, max_calls, side="left")) + 1
        lengths = lengths[:keep]
        lengths[-1] -= max(0, int(lengths.sum()) - max_calls)
        t = len(lengths)
        n = int(lengths.sum())
        first = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        trace_of = np.repeat(np.arange(t), lengths)
        step = np.arange(n) - first[trace_of]

        main_agent = rng.integers(len(AGENTS), size=t)
        tenant = rng.integers(len(TENANTS), size=t)
        operation = rng.integers(len(OPERATIONS), size=t)
        base_ctx = _loguniform(rng, MIN_INPUT, 8_000, t)
        growth = _loguniform(rng, 150, 3_000, t)
        # Traces start anywhere in the window but finish inside it (at most 40 steps x 90 s apart).
        trace_start = rng.integers(0, SPAN_MS - MAX_TRACE * 90_000, size=t)

        # Per call: time gap to the previous step, agent (mostly the trace's own), model, token counts.
        gaps = rng.integers(300, 90_000, size=n)
        gaps[first] = 0
        csum = np.cumsum(gaps)
        offset_ms = trace_start[trace_of] + csum - csum[first][trace_of]
        agent = np.where(rng.random(n) < 0.8, main_agent[trace_of], rng.integers(len(AGENTS), size=n))
        model = np.searchsorted(self.model_cdf, rng.random(n), side="right").clip(0, len(MODELS) - 1)
        family = self.model_family[model]

        total_in = base_ctx[trace_of] + step * growth[trace_of] * rng.uniform(0.7, 1.3, n)
        total_in = np.clip(np.rint(total_in), MIN_INPUT, MAX_INPUT).astype(np.int64)
        out = np.rint(_loguniform(rng, MIN_OUTPUT, MAX_OUTPUT, n)).astype(np.int64)

        # Anthropic: the first step writes the prefix to cache, later ones read it and write the new turn.
        caching = rng.random(n) < 0.9
        read_share = np.where(step > 0, rng.uniform(0.6, 0.95, n), 0.0)
        a_read = np.where(caching, np.floor(total_in * read_share), 0).astype(np.int64)
        rest = total_in - a_read
        a_write = np.where(caching, np.floor(rest * rng.uniform(0.3, 0.95, n)), 0).astype(np.int64)
        a_uncached = total_in - a_read - a_write
        # OpenAI: automatic caching of >=1024-token prefixes in 128-token increments; gpt-5 reasons.
        o_cached = np.where(
            (step > 0) & (total_in >= 1024), np.floor(total_in * rng.uniform(0.4, 0.95, n) / 128) * 128, 0
        ).astype(np.int64)
        o_reasoning = np.where(model == 3, np.floor(out * rng.uniform(0.2, 0.85, n)), 0).astype(np.int64)
        # Gemini: implicit caching on about half the later steps; thoughts are billed outside candidates.
        g_cached = np.where(
            (step > 0) & (rng.random(n) < 0.5), np.floor(total_in * rng.uniform(0.3, 0.9, n)), 0
        ).astype(np.int64)
        g_thoughts = np.where(rng.random(n) < 0.7, np.floor(out * rng.uniform(0.1, 1.5, n)), 0).astype(np.int64)
        ids = rng.integers(0, 2**62, size=n)
        prompt = rng.integers(len(self.prompts), size=n)

        # Appended record by record: orjson's result bytes are over-allocated, so holding a list of them would
        # cost several times the chunk's size.
        buf = bytearray()
        dumps = orjson.dumps
        trace_base = self.next_trace
        tenant_of, operation_of = tenant.tolist(), operation.tolist()
        columns = zip(
            trace_of.tolist(),
            step.tolist(),
            offset_ms.tolist(),
            agent.tolist(),
            model.tolist(),
            family.tolist(),
            total_in.tolist(),
            out.tolist(),
            a_read.tolist(),
            a_write.tolist(),
            a_uncached.tolist(),
            o_cached.tolist(),
            o_reasoning.tolist(),
            g_cached.tolist(),
            g_thoughts.tolist(),
            ids.tolist(),
            prompt.tolist(),
            strict=True,
        )
        for tr, st, off, ag, mo, fam, tin, o, ar, aw, au, oc, orz, gc, gt, rid, pr in columns:
            _, provider, model_name, _ = MODELS[mo]
            if fam == ANTHROPIC:
                response = {
                    "id": f"msg_01{rid:016x}",
                    "type": "message",
                    "role": "assistant",
                    "model": model_name,
                    "stop_reason": "end_turn",
                    "usage": {
                        "input_tokens": au,
                        "cache_creation_input_tokens": aw,
                        "cache_read_input_tokens": ar,
                        "cache_creation": {"ephemeral_5m_input_tokens": aw, "ephemeral_1h_input_tokens": 0},
                        "output_tokens": o,
                    },
                }
            elif fam == OPENAI:
                response = {
                    "id": f"chatcmpl-{rid:016x}",
                    "object": "chat.completion",
                    "created": self.start_epoch_s + off // 1000,
                    "model": model_name,
                    "usage": {
                        "prompt_tokens": tin,
                        "completion_tokens": o,
                        "total_tokens": tin + o,
                        "prompt_tokens_details": {"cached_tokens": oc},
                        "completion_tokens_details": {"reasoning_tokens": orz},
                    },
                }
            else:
                response = {
                    "responseId": f"{rid:016x}",
                    "modelVersion": model_name,
                    "usageMetadata": {
                        "promptTokenCount": tin,
                        "cachedContentTokenCount": gc,
                        "candidatesTokenCount": o,
                        "thoughtsTokenCount": gt,
                        "totalTokenCount": tin + o + gt,
                    },
                }
            record = {
                "timestamp": self._iso(off),
                "trace_id": f"tr-{trace_base + tr}",
                "agent": AGENTS[ag],
                "tenant": TENANTS[tenant_of[tr]],
                "operation": OPERATIONS[operation_of[tr]],
                "provider": provider,
                "request": {
                    "model": model_name,
                    "messages": [{"role": "user", "content": f"{self.prompts[pr]} (step {st + 1})"}],
                },
                "response": response,
            }
            buf += dumps(record)
            buf += b"\n"
        self.next_trace += t
        self.next_call += n
        return buf, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="number of calls (lines) to write")
    parser.add_argument("-o", "--output", required=True, help="output .jsonl path (parent directories are created)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")

    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = Generator(args.seed)
    started = time.perf_counter()
    written = 0
    size = 0
    with open(path, "wb", buffering=1 << 20) as fh:
        while written < args.calls:
            data, calls = gen.chunk(args.calls - written)
            fh.write(data)
            written += calls
            size += len(data)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {written:,} lines ({gen.next_trace:,} traces), {size:,} bytes ({size / 2**20:.1f} MiB) "
        f"to {path} in {elapsed:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
