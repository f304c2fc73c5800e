"""OTLP protobuf traces: binary `ExportTraceServiceRequest` messages, as the collector's `file` exporter writes them
with `format: proto` (each message preceded by its length, 4 bytes big-endian), or one bare message in a file.

Each message is decoded with `opentelemetry-proto` (the optional extra `costscope[otlp]`) into protobuf's JSON
mapping (ids in base64, 64-bit integers as strings, enums as numbers), which the OTLP/JSON reader then reads like
any other export request; so GenAI/OpenInference attributes, roll-ups, agents and tools work the same. A binary file
has no lines: a skip names the message's number (1 for the first) in place of a line. A message cut short (a file
being written) or not decodable is a counted skip; the messages before it stand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa

from ..io import InputFile
from .base import ParseContext, RecordError
from .otlp_json import OtlpJsonParser
from .spans import SpanTree, batches_of

NAME = "otlp-proto"
FIELD_RESOURCE_SPANS = 0x0A
"""The first byte of an export request: field 1 (`resource_spans`), length-delimited."""
MAX_MESSAGE = 1 << 30
MISSING = "OTLP protobuf needs the otlp extra: pip install 'costscope[otlp]'"


def _varint(data: bytes, at: int) -> tuple[int, int] | None:
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    return None


def framed(prefix: bytes) -> bool:
    """True when the bytes start with a length-prefixed export request."""
    return (
        len(prefix) >= 5 and prefix[4] == FIELD_RESOURCE_SPANS and 0 < int.from_bytes(prefix[:4], "big") <= MAX_MESSAGE
    )


def bare(prefix: bytes) -> bool:
    """True when the bytes start like one export request: a `resource_spans` entry whose first field is a resource."""
    if not prefix or prefix[0] != FIELD_RESOURCE_SPANS:
        return False
    length = _varint(prefix, 1)
    return length is not None and length[1] < len(prefix) and prefix[length[1]] in (0x0A, 0x12)


Decoder = Callable[[bytes], dict[str, Any]]


def _decoder() -> tuple[Decoder, tuple[type[BaseException], ...]] | None:
    """A decoder of one export request into protobuf's JSON mapping, and the errors damaged bytes raise; None
    without `opentelemetry-proto`."""
    try:
        from google.protobuf.json_format import MessageToDict
        from google.protobuf.message import Error as ProtobufError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    except ImportError:
        return None

    def decode(payload: bytes) -> dict[str, Any]:
        message = ExportTraceServiceRequest.FromString(payload)
        result: dict[str, Any] = MessageToDict(message, use_integers_for_enums=True)
        return result

    return decode, (ProtobufError, ValueError, RecursionError, OverflowError)


Message = tuple[int, bytes | None, str | None]
"""(message number from 1, its bytes or None, why it cannot be read)."""


def messages(fh: BinaryIO) -> Iterator[Message]:
    """The messages of a file, read one at a time when they are length-prefixed (else the file is one message)."""
    carry = fh.read(5)  # bytes read beyond the last message
    if not framed(carry):
        yield 1, carry + fh.read(), None
        return
    number = 0
    while True:
        if len(carry) < 4:
            carry += fh.read(4 - len(carry))
        if not carry:
            return
        number += 1
        if len(carry) < 4:
            yield number, None, "message cut short (its length is incomplete)"
            return
        size = int.from_bytes(carry[:4], "big")
        payload = carry[4:]
        if len(payload) < size:
            payload += fh.read(size - len(payload))
        if len(payload) < size:
            yield number, None, f"message cut short ({len(payload):,} of {size:,} bytes)"
            return
        yield number, payload[:size], None
        carry = payload[size:]


class OtlpProtoParser:
    name = NAME
    description = "OpenTelemetry OTLP protobuf traces (collector file exporter, format: proto), with costscope[otlp]"

    def sniff(self, prefix: bytes) -> bool:
        return framed(prefix) or bare(prefix)

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[pa.RecordBatch]:
        decoder = _decoder()
        if decoder is None:
            ctx.records[source.name] += 1
            ctx.skips.skip(source.name, 1, MISSING)
            return
        decode, damaged = decoder
        tree = SpanTree(source.name, NAME, ctx)
        reader = OtlpJsonParser()

        def skip(number: int, reason: str) -> None:
            ctx.skips.skip(source.name, number, reason)

        number = 0
        try:
            with source.open() as fh:
                for number, payload, problem in messages(fh):
                    ctx.records[source.name] += 1
                    if payload is None:
                        skip(number, problem or "unreadable message")
                        continue
                    try:
                        record = decode(payload)
                    except damaged as exc:
                        skip(number, f"not an OTLP export request ({type(exc).__name__})")
                        continue
                    try:
                        for span in reader.spans(record, number, skip):
                            tree.add(span)
                    except RecordError as exc:
                        skip(number, str(exc))
        except (OSError, EOFError) as exc:
            ctx.records[source.name] += 1
            skip(number + 1, f"cannot read further: {exc}")
        yield from batches_of(tree, ctx)
