"""Tokenizer choice is offline and labelled: exact only when the model's own encoding is available."""

from __future__ import annotations

from pathlib import Path

import pytest

from costscope import tokens


@pytest.fixture(autouse=True)
def empty_tiktoken_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tokens.tokenizer_for.cache_clear()


def test_cl100k_models_count_exactly_offline() -> None:
    tok = tokens.tokenizer_for("gpt-4-0613")
    assert (tok.name, tok.approximate) == ("cl100k_base", False)
    assert tok.count("hello world") == 2
    assert tok.count_batch(["hello world", "", "tiktoken is great!"]) == [2, 0, 6]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-5", "o3", "claude-sonnet-4-5", "gemini-2.5-pro", None])
def test_other_models_are_marked_approximate_without_their_encoding(model: str | None) -> None:
    tok = tokens.tokenizer_for(model)
    assert tok.name == "cl100k_base" and tok.approximate
    assert tok.label == "cl100k_base (approximate)"


def test_native_encoding_table() -> None:
    assert tokens.native_encoding("gpt-4.1-mini") == "o200k_base"
    assert tokens.native_encoding("gpt-oss-20b") == "o200k_harmony"
    assert tokens.native_encoding("gpt-3.5-turbo") == "cl100k_base"
    assert tokens.native_encoding("claude-haiku-4-5") is None
    assert not tokens.is_cached("o200k_base")
