"""Shared test helpers: write small JSON Lines inputs into the test's tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

WriteJsonl = Callable[..., str]


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a test read or write the user's real cache directory."""
    monkeypatch.setenv("COSTSCOPE_CACHE_DIR", str(tmp_path_factory.mktemp("costscope-cache")))


@pytest.fixture
def jsonl_file(tmp_path: Path) -> WriteJsonl:
    """`jsonl_file(records, name="calls.jsonl")` writes one record per line and returns the path as str.

    A record that is a `str` is written verbatim (for malformed lines); anything else is JSON-encoded.
    """

    def write(records: Iterable[Any], name: str = "calls.jsonl") -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [r if isinstance(r, str) else orjson.dumps(r).decode() for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(path)

    return write
