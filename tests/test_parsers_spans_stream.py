"""Span files in JSON Lines are read line by line, and give exactly what reading the whole text gives.

The whole-text reader is the reference (it copes with every layout and damage); the streamed reader must agree
with it on every file, mutated and damaged ones included, or hand the file back to it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parsers_otel_fuzz import CASES, DATA, damaged_text, mutated

from costscope import ingest
from costscope.io import InputFile
from costscope.parsers import spans


def _parse(path: Path, fmt: str, streamed: bool, strict: bool = False) -> ingest.FileResult:
    original = spans.SpanFileParser._streamed
    if not streamed:
        spans.SpanFileParser._streamed = lambda self, source, ctx: None  # type: ignore[method-assign]
    try:
        return ingest.parse_file(InputFile(str(path), path), fmt, strict=strict)
    finally:
        spans.SpanFileParser._streamed = original  # type: ignore[method-assign]


def _same(path: Path, fmt: str) -> None:
    whole, streamed = _parse(path, fmt, streamed=False), _parse(path, fmt, streamed=True)
    assert streamed.table.equals(whole.table)
    assert (streamed.records, streamed.skip_counts, streamed.skip_examples, streamed.notes) == (
        whole.records,
        whole.skip_counts,
        whole.skip_examples,
        whole.notes,
    )


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("rollup_agent.jsonl", "otlp-json"),
        ("legacy_names.json", "otlp-json"),
        ("console_dump.jsonl", "otel-console"),
        ("phoenix_spans.json", "phoenix"),
    ],
)
def test_fixtures_read_the_same_either_way(name: str, fmt: str) -> None:
    _same(DATA / name, fmt)


def test_json_lines_are_streamed_and_documents_are_not() -> None:
    from costscope.parsers.base import ParseContext, Skips
    from costscope.parsers.otlp_json import OtlpJsonParser

    parser = OtlpJsonParser()
    for name, streams in (("rollup_agent.jsonl", True), ("legacy_names.json", False)):
        path = DATA / name
        tree = parser._streamed(InputFile(name, path), ParseContext(skips=Skips()))
        assert (tree is not None) == streams


def test_strict_mode_fails_on_the_same_first_skip(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    lines = (DATA / "rollup_agent.jsonl").read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], '{"resourceSpans": 7}', *lines[1:]]) + "\n")
    errors = []
    for streamed in (False, True):
        with pytest.raises(Exception) as caught:
            _parse(path, "otlp-json", streamed, strict=True)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]


def _fuzz(fmt: str) -> Any:
    base, render = CASES[fmt]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(doc=mutated(base), pretty=st.booleans(), data=st.data())
    def run(doc: Any, pretty: bool, data: st.DataObject) -> None:
        text = data.draw(damaged_text(render(doc, pretty)))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "spans.jsonl"
            path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
            _same(path, fmt)

    return run


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_mutated_files_read_the_same_either_way(fmt: str) -> None:
    _fuzz(fmt)()
