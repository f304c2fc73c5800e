"""Deduplicated token recount vs a naive per-call recount on generated agent traces.

    python benchmarks/bench_recount.py --traces 2000 --steps 40 --max-context 60000 --naive-traces 40

Each generated trace is one agent loop in OpenAI chat form: a system prompt (one of a few agents'), tool schemas,
the task, then per step an assistant tool call and a new tool result, so the context re-sent by every call grows
linearly to about `--max-context` tokens at the last step. Every call is split into segments exactly as the
call-log parser does (`costscope.parsers.segments.request_segments`) and counted two ways:

- dedup: the parser's `Recount` (one per `--traces-per-file` traces, as the parser keeps one per file): each segment
  is hashed, and only contents not seen before are tokenized, in multi-threaded batches;
- naive: every segment of every call tokenized again (same batching and threads, no memo). The naive recount is
  quadratic in trace length, so it runs on the first `--naive-traces` traces and is extrapolated linearly to all
  traces (traces are independent draws of the same generator); the counts of those traces are checked to be equal.

It also times the unique texts of the first file with `Tokenizer.count_batch` (chunked, all cores) against
single-thread `encoding.encode_ordinary` on the same texts and reports both in MB/s.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any

from costscope import tokens
from costscope.parsers.segments import Recount, request_segments

MODEL = "gpt-4.1"
WORDS = (
    "the of and to in is for on that with as this by be are from at or it an def return self if else import "
    "class None True False value result error file line test data config request response user agent tool "
    "= == ( ) [ ] { } : , . -> # 0 1 2 42 100 2026 http api json path os sys print assert raise"
).split()


def corpus(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        line = " ".join(rng.choices(WORDS, k=rng.randrange(4, 16)))
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def tool_schemas(agent: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": f"{name}_{agent}",
                "description": f"{name.replace('_', ' ')} for agent {agent}.",
                "parameters": {
                    "type": "object",
                    "properties": {"path": {"type": "string", "description": "Path relative to the repository."}},
                },
            },
        }
        for name in ("read_file", "grep", "run_tests", "apply_patch")
    ]


def traces(args: argparse.Namespace) -> Any:
    """Yield each trace as its list of chat requests (sharing message objects, as a parsed log would not)."""
    rng = random.Random(args.seed)
    text = corpus(rng, 8 << 20)
    prompts = [f"Agent {a}. " + corpus(rng, 8000) for a in range(4)]
    per_step_chars = args.max_context * 37 // 10 // args.steps  # ~3.4 characters per cl100k token, sizes 3/4..1
    for t in range(args.traces):
        agent = rng.randrange(4)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": prompts[agent]},
            {"role": "user", "content": f"Task {t}: fix the failing test."},
        ]
        requests = []
        for step in range(args.steps):
            requests.append({"model": MODEL, "messages": list(messages), "tools": tool_schemas(agent)})
            call_id = f"call_{t}_{step}"
            name = rng.choice(("read_file", "grep", "run_tests"))
            call = {"id": call_id, "type": "function", "function": {"name": f"{name}_{agent}", "arguments": "{}"}}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            size = rng.randrange(per_step_chars * 3 // 4, per_step_chars)
            start = rng.randrange(len(text) - size)
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": f"[{t}/{step}]\n" + text[start : start + size]}
            )
        yield requests


def split(requests: list[dict[str, Any]]) -> list[Any]:
    return [request_segments("openai", r, MODEL) for r in requests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--max-context", type=int, default=60_000, help="tokens re-sent by a trace's last call")
    parser.add_argument("--naive-traces", type=int, default=40)
    parser.add_argument("--traces-per-file", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    tok = tokens.tokenizer_for(MODEL)
    print(f"tokenizer {tok.label}, {os.cpu_count()} cores; {args.traces} traces x {args.steps} steps")

    dedup_s = naive_s = 0.0
    calls = segments = seg_chars = 0
    unique_chars = unique_texts = 0
    naive_counts: list[list[int]] = []
    dedup_counts: list[list[int]] = []
    first_file_texts: dict[str, None] = {}
    recount = Recount(tokens.CountMemo())
    max_context = 0
    for t, requests in enumerate(traces(args)):
        if t % args.traces_per_file == 0:
            unique_chars += recount.memo.chars_counted
            unique_texts += recount.memo.texts_counted
            recount = Recount(tokens.CountMemo())
        split_start = time.perf_counter()
        per_call = split(requests)
        rows = [{"model": MODEL, "usage_source": "reported"} for _ in requests]
        for row, segs in zip(rows, per_call, strict=True):
            recount.add(row, segs)
        recount.flush()
        dedup_s += time.perf_counter() - split_start
        calls += len(requests)
        segments += sum(len(s) for s in per_call)
        seg_chars += sum(len(x.text) for s in per_call for x in s)
        max_context = max(max_context, sum(s["tokens"] for s in rows[-1]["segments"]))
        if t < args.naive_traces:
            naive_start = time.perf_counter()
            for segs in split(requests):
                flat = [p for s in segs for p in (s.pieces or (s.text,))]
                counts = tok.count_batch(flat)
                out, i = [], 0
                for s in segs:
                    n = len(s.pieces or (s.text,))
                    out.append(s.constant + sum(counts[i : i + n]))
                    i += n
                naive_counts.append(out)
            naive_s += time.perf_counter() - naive_start
            dedup_counts += [[s["tokens"] for s in row["segments"]] for row in rows]
        if t < args.traces_per_file:
            for segs in per_call:
                for s in segs:
                    for p in s.pieces or (s.text,):
                        first_file_texts[p] = None
    unique_chars += recount.memo.chars_counted
    unique_texts += recount.memo.texts_counted
    assert naive_counts == dedup_counts, "dedup and naive recounts differ"

    naive_all = naive_s * args.traces / max(1, min(args.naive_traces, args.traces))
    print(f"calls {calls:,}; segments {segments:,} ({seg_chars / 1e6:,.0f} MB of text sent); largest context "
          f"{max_context:,} tokens")  # fmt: skip
    print(
        f"distinct texts tokenized {unique_texts:,} ({unique_chars / 1e6:,.1f} MB): "
        f"{seg_chars / unique_chars:.1f}x less"
    )
    print(f"dedup recount (split + hash + memo + batch tokenize): {dedup_s:,.1f} s")
    print(f"naive recount: {naive_s:,.1f} s on {args.naive_traces} traces -> {naive_all:,.0f} s for all (extrapolated)")
    print(f"speed-up: {naive_all / dedup_s:,.1f}x (counts identical on the {args.naive_traces} traces checked)")

    texts = list(first_file_texts)
    size = sum(len(x.encode()) for x in texts) / 1e6
    start = time.perf_counter()
    tok.count_batch(texts)
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    for x in texts:
        tok.encoding.encode_ordinary(x)
    single_s = time.perf_counter() - start
    print(f"unique text of the first file ({size:,.1f} MB): count_batch {size / batch_s:,.1f} MB/s, "
          f"single-thread encode_ordinary {size / single_s:,.1f} MB/s")  # fmt: skip


if __name__ == "__main__":
    main()
