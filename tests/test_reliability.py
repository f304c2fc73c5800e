"""Damaged input never crashes a run and is never dropped silently: each defect is a counted skip."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from costscope import load_steps
from costscope.errors import InputError

CALL = {
    "timestamp": "2026-10-01T10:00:00Z",
    "trace_id": "t1",
    "response": {
        "id": "r1",
        "object": "chat.completion",
        "model": "gpt-4o",
        "usage": {"prompt_tokens": 10, "completion_tokens": 2},
    },
}


def call(i: int) -> bytes:
    record = json.loads(json.dumps(CALL))
    record["response"]["id"] = f"r{i}"
    return json.dumps(record).encode()


def write(tmp_path: Path, data: bytes, name: str = "calls.jsonl") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_bom_and_crlf_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + call(1) + b"\r\n" + call(2) + b"\r\n")
    result = load_steps([path])
    assert result.table.num_rows == 2 and result.skips.total == 0


def test_truncated_last_line_invalid_utf8_and_deep_nesting_are_counted_skips(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    data = b"\n".join([call(1), b'{"response": {"usage": "\xff\xfe"}}', deep, call(2), call(3)[:40]])
    result = load_steps([write(tmp_path, data)])
    assert result.table.num_rows == 2
    assert result.skips.total == 3
    lines = sorted(int(example.split(":")[1]) for example in result.skips.examples)
    assert lines == [2, 3, 5]
    assert result.files[0].records == 5


def test_a_100_mb_line_is_read(tmp_path: Path) -> None:
    big = json.loads(json.dumps(CALL))
    big["request"] = {"messages": [{"role": "user", "content": "x" * 100_000_000}]}
    path = write(tmp_path, json.dumps(big).encode() + b"\n" + call(2) + b"\n")
    result = load_steps([path])
    assert result.table.num_rows == 2 and result.skips.total == 0


def test_corrupt_gzip_keeps_what_was_read_and_counts_the_rest(tmp_path: Path) -> None:
    lines = b"".join(call(i) + b"\n" for i in range(2000))
    packed = gzip.compress(lines)
    path = write(tmp_path, packed[: len(packed) // 2], "calls.jsonl.gz")
    result = load_steps([path])
    assert 0 < result.table.num_rows < 2000
    assert result.skips.total >= 1
    assert any("cannot read further" in reason for reason in result.skips.counts)
    with pytest.raises(InputError, match="cannot read further"):
        load_steps([path], strict=True)


def test_a_file_that_is_not_gzip_inside_is_an_unreadable_file(tmp_path: Path) -> None:
    good = write(tmp_path, call(1) + b"\n")
    bad = write(tmp_path, b"\x1f\x8b" + b"not really gzip", "broken.jsonl.gz")
    result = load_steps([good, bad])
    assert result.table.num_rows == 1
    assert result.skips.total == 1
    assert [f.format for f in result.files] == ["openai", "unreadable"]


def test_unrecognized_file_among_others_is_a_skip_but_alone_is_an_error(tmp_path: Path) -> None:
    good = write(tmp_path, call(1) + b"\n")
    odd = write(tmp_path, b'{"hello": "world"}\n', "odd.json")
    result = load_steps([good, odd])
    assert result.skips.counts == {"unrecognized trace format": 1}
    with pytest.raises(InputError, match="unrecognized trace format"):
        load_steps([odd])
