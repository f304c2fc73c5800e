"""Fuzz: real-shaped span files, mutated at random, never make `load_steps` raise; damage is counted skips.

Each example starts from one of the hand-written fixtures, replaces, deletes or duplicates values
anywhere in it, sometimes cuts the text short or splices in garbage, and checks that loading it with
the format forced (so the parser sees whatever a mutation left) returns a well-formed step table whose
calls keep the inclusive-bucket invariants.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costscope import load_steps

DATA = Path(__file__).parent / "data" / "otel"

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "0x",
            "0x0000000000000000",
            "AQID",
            "AAECAwQFBgc=",
            "NaN",
            "Infinity",
            "12",
            "-3",
            "1e400",
            "99999999999999999999999",
            "SpanKind.CLIENT",
            "invoke_agent",
            "execute_tool",
            "chat",
            "LLM",
            "AGENT",
            "TOOL",
            "2025-13-45T99:00:00Z",
            "c1c1c1c1c1c1c1c1",
            "a1a1a1a1a1a1a1a1",
            "aa00000000000002",
            "0x1111111111111111",
        ]
    ),
    st.sampled_from(
        [
            {"intValue": "-7"},
            {"intValue": "1" * 30},
            {"doubleValue": "NaN"},
            {"stringValue": 5},
            {"arrayValue": {"values": [{"kvlistValue": {"values": [{"key": 1}]}}]}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "5"}},
            {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "50"}},
            {"key": "gen_ai.usage.reasoning.output_tokens", "value": {"intValue": "500"}},
        ]
    ),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)

Path_ = tuple[Any, ...]


def paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every location in a JSON document (the root is the empty path)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(paths(value, (*prefix, index)))
    return found


def _set(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


def _delete(doc: Any, path: Path_) -> Any:
    if not path:
        return doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return doc


def _get(doc: Any, path: Path_) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        path = draw(st.sampled_from(paths(doc)))
        action = draw(st.sampled_from(["replace", "replace", "delete", "copy"]))
        if action == "replace":
            doc = _set(doc, path, copy.deepcopy(draw(VALUES)))  # sampled constants must stay pristine
        elif action == "delete":
            doc = _delete(doc, path)
        else:
            source = draw(st.sampled_from(paths(doc)))
            doc = _set(doc, path, copy.deepcopy(_get(doc, source)))
    return doc


@st.composite
def damaged_text(draw: st.DrawFn, text: str) -> str:
    choice = draw(st.sampled_from(["keep", "keep", "cut", "splice"]))
    if choice == "cut":
        return text[: draw(st.integers(min_value=0, max_value=len(text)))]
    if choice == "splice":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        junk = draw(st.sampled_from(["}", "]", "{", "[", '"', ",", "\n{\n", "\n]\n", "\x00", "\ud800", "garbage\n"]))
        return text[:at] + junk + text[at:]
    return text


def _otlp_text(doc: Any, pretty: bool) -> str:
    if pretty or not isinstance(doc, list):
        return json.dumps(doc, indent=2)
    return "".join(json.dumps(line) + "\n" for line in doc)


def _console_text(doc: Any, pretty: bool) -> str:
    if not isinstance(doc, list):
        return json.dumps(doc, indent=4)
    return ("\n\n" if pretty else "\n").join(json.dumps(span, indent=4 if pretty else None) for span in doc)


def _phoenix_text(doc: Any, pretty: bool) -> str:
    return json.dumps(doc, indent=2 if pretty else None)


OTLP_BASE = [json.loads(line) for line in (DATA / "rollup_agent.jsonl").read_text(encoding="utf-8").splitlines()]
OTLP_BASE.append(json.loads((DATA / "legacy_names.json").read_text(encoding="utf-8")))
CONSOLE_TEXT = (DATA / "console_dump.jsonl").read_text(encoding="utf-8")
CONSOLE_BASE = [json.loads(chunk) for chunk in CONSOLE_TEXT.split("\n\n")]
PHOENIX_BASE = json.loads((DATA / "phoenix_spans.json").read_text(encoding="utf-8"))

CASES = {
    "otlp-json": (OTLP_BASE, _otlp_text),
    "otel-console": (CONSOLE_BASE, _console_text),
    "phoenix": (PHOENIX_BASE, _phoenix_text),
}


def _check(text: str, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.json"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        result = load_steps([str(path)], format_in=fmt)
    rows = result.table.to_pylist()
    assert result.files[0].format == (fmt if text else "empty")
    assert result.files[0].rows == len(rows) + len(result.duplicates)  # a repeated response id is kept once
    for row in rows:
        assert row["kind"] in {"llm", "tool", "agent"}
        read, write = row["cache_read_tokens"] or 0, row["cache_write_tokens"] or 0
        assert (row["input_tokens"] or 0) >= read + write
        assert (row["output_tokens"] or 0) >= (row["reasoning_tokens"] or 0)


def fuzz(fmt: str) -> Any:
    base, render = CASES[fmt]

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(doc=mutated(base), pretty=st.booleans(), data=st.data())
    def run(doc: Any, pretty: bool, data: st.DataObject) -> None:
        _check(data.draw(damaged_text(render(doc, pretty))), fmt)

    return run


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_mutated_spans_never_raise(fmt: str) -> None:
    fuzz(fmt)()
