"""OTLP protobuf files (the collector's file exporter with `format: proto`) read like their OTLP/JSON twins."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("opentelemetry.proto")

from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costscope import load_steps
from costscope.parsers import otlp_proto

DATA = Path(__file__).parent / "data" / "otel"
COMPARED = [
    "kind",
    "agent",
    "tenant",
    "tool",
    "trace_id",
    "span_id",
    "parent_id",
    "start",
    "end",
    "model",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
]


def _binary_ids(node: Any) -> Any:
    """OTLP/JSON writes ids in hex, protobuf's JSON mapping in base64: convert before `ParseDict`."""
    if isinstance(node, dict):
        return {k: _id(v) if k in IDS else _binary_ids(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_binary_ids(v) for v in node]
    return node


IDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _id(value: Any) -> Any:
    if isinstance(value, str) and value and all(c in "0123456789abcdefABCDEF" for c in value) and len(value) % 2 == 0:
        return base64.b64encode(bytes.fromhex(value)).decode()
    return value  # base64 already (protobuf's JSON mapping)


def _messages(json_file: Path) -> list[bytes]:
    text = json_file.read_text(encoding="utf-8")
    docs = (
        [json.loads(line) for line in text.splitlines() if line.strip()]
        if json_file.suffix == ".jsonl"
        else [json.loads(text)]
    )
    return [ParseDict(_binary_ids(doc), ExportTraceServiceRequest()).SerializeToString() for doc in docs]


def _framed(messages: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(m)) + m for m in messages)


@pytest.mark.parametrize("name", ["rollup_agent.jsonl", "legacy_names.json"])
def test_a_proto_file_reads_like_its_json_twin(tmp_path: Path, name: str) -> None:
    proto = tmp_path / "traces.pb"
    proto.write_bytes(_framed(_messages(DATA / name)))
    expected, got = load_steps([str(DATA / name)]), load_steps([str(proto)])
    assert got.files[0].format == "otlp-proto"
    assert got.files[0].records == len(_messages(DATA / name))
    assert got.table.select(COMPARED).to_pylist() == expected.table.select(COMPARED).to_pylist()
    assert got.table.num_rows > 0 and got.skips.total == 0


def test_one_bare_message(tmp_path: Path) -> None:
    (message,) = _messages(DATA / "legacy_names.json")
    proto = tmp_path / "one.binpb"
    proto.write_bytes(message)
    got = load_steps([str(tmp_path)])  # a directory scan picks up .pb and .binpb
    assert got.files[0].format == "otlp-proto" and got.files[0].records == 1
    assert (
        got.table.select(COMPARED).to_pylist()
        == load_steps([str(DATA / "legacy_names.json")]).table.select(COMPARED).to_pylist()
    )


def test_a_message_cut_short_is_a_skip_and_the_ones_before_stand(tmp_path: Path) -> None:
    data = _framed(_messages(DATA / "rollup_agent.jsonl"))
    proto = tmp_path / "partial.pb"
    proto.write_bytes(data[:-10])
    got = load_steps([str(proto)])
    assert got.files[0].records == 2
    assert got.skips.examples == [
        f"{proto}:2: message cut short ({len(_messages(DATA / 'rollup_agent.jsonl')[1]) - 10:,} of "
        f"{len(_messages(DATA / 'rollup_agent.jsonl')[1]):,} bytes)"
    ]
    assert got.table.num_rows > 0


def test_damaged_bytes_are_a_skip(tmp_path: Path) -> None:
    first, second = _messages(DATA / "rollup_agent.jsonl")
    proto = tmp_path / "damaged.pb"
    proto.write_bytes(_framed([first, b"\x0a\xff\xff\xff\xff\x0f" + second[6:]]))
    got = load_steps([str(proto)])
    assert got.files[0].records == 2
    assert got.skips.total == 1 and "not an OTLP export request" in got.skips.examples[0]


def test_without_the_extra_the_file_is_a_skip_that_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    proto = tmp_path / "traces.pb"
    proto.write_bytes(_framed(_messages(DATA / "rollup_agent.jsonl")))
    monkeypatch.setattr(otlp_proto, "_decoder", lambda: None)
    got = load_steps([str(proto)])
    assert got.table.num_rows == 0
    assert got.skips.examples == [f"{proto}:1: {otlp_proto.MISSING}"]


def test_json_files_are_not_taken_for_protobuf(tmp_path: Path) -> None:
    text = "\n\n\n" + (DATA / "rollup_agent.jsonl").read_text(encoding="utf-8")  # starts with 0x0a bytes
    path = tmp_path / "spans.jsonl"
    path.write_text(text, encoding="utf-8")
    assert load_steps([str(path)]).files[0].format == "otlp-json"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_bytes_never_escape_a_counted_skip(tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(_framed(_messages(DATA / "rollup_agent.jsonl")))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(5, len(raw)))]
    proto = tmp_path / "fuzz.pb"
    proto.write_bytes(bytes(raw))
    got = load_steps([str(proto)], format_in="otlp-proto")
    report = got.files[0]
    assert report.format == "otlp-proto" and report.records >= 1
    assert all(example.startswith(f"{proto}:") for example in got.skips.examples)
    for row in got.table.to_pylist():
        assert (row["input_tokens"] or 0) >= (row["cache_read_tokens"] or 0) + (row["cache_write_tokens"] or 0)
