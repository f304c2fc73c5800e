"""Golden files: reports compared byte for byte with tests/golden/; COSTSCOPE_UPDATE_GOLDEN=1 rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("COSTSCOPE_UPDATE_GOLDEN") == "1"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"golden file {name} was missing and has been written; re-run the tests")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; COSTSCOPE_UPDATE_GOLDEN=1 rewrites it"
