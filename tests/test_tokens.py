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


# --- the OpenAI cookbook's worked examples (How_to_count_tokens_with_tiktoken.ipynb) ---------------------------

COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into "
        "plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]
COOKBOOK_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
COOKBOOK_TOOL_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


@pytest.mark.parametrize("model", ["gpt-4-0613", "gpt-4-0314", "gpt-3.5-turbo-0125"])
def test_cookbook_chat_example_gives_129_with_cl100k(model: str) -> None:
    tok = tokens.tokenizer_for(model)
    assert not tok.approximate
    assert tokens.chat_tokens(COOKBOOK_MESSAGES, tok) == 129


@pytest.mark.parametrize("model", ["gpt-4", "gpt-3.5-turbo"])
def test_cookbook_tools_example_gives_105_with_cl100k(model: str) -> None:
    tok = tokens.tokenizer_for(model)
    total = tokens.chat_tokens(COOKBOOK_TOOL_MESSAGES, tok) + tokens.tools_tokens(COOKBOOK_TOOLS, model, tok)
    assert total == 105


def _real_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
    tokens.tokenizer_for.cache_clear()
    if not tokens.is_cached("o200k_base"):
        pytest.skip("o200k_base is not in tiktoken's cache (offline)")


def test_cookbook_examples_with_o200k_when_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    _real_cache(monkeypatch)
    tok = tokens.tokenizer_for("gpt-4o-2024-08-06")
    assert (tok.name, tok.approximate) == ("o200k_base", False)
    assert tokens.chat_tokens(COOKBOOK_MESSAGES, tok) == 124
    total = tokens.chat_tokens(COOKBOOK_TOOL_MESSAGES, tok) + tokens.tools_tokens(COOKBOOK_TOOLS, "gpt-4o", tok)
    assert total == 101


def test_encoding_table_covers_the_issue_models() -> None:
    for model in ("gpt-4o", "gpt-4.1", "gpt-4.5-preview", "gpt-5.1", "o1", "o3-mini", "o4-mini"):
        assert tokens.native_encoding(model) == "o200k_base", model
    for model in ("gpt-4", "gpt-4-turbo", "gpt-3.5-turbo"):
        assert tokens.native_encoding(model) == "cl100k_base", model
    assert tokens.native_encoding("gpt-oss-120b") == "o200k_harmony"
    for model in ("claude-sonnet-4-5", "gemini-2.5-flash", "llama-3.1-70b"):
        assert tokens.native_encoding(model) is None


def test_long_texts_are_chunked_without_changing_the_count() -> None:
    tok = tokens.tokenizer_for("gpt-4")
    text = " ".join(f"word{i % 97} (x{i}),\n" if i % 5 else "  spaced   out\t" for i in range(40_000))
    assert len(tokens.chunks(text)) > 1
    assert tok.count(text) == len(tok.encoding.encode_ordinary(text))
    assert tok.count_batch([text, "hello world"]) == [len(tok.encoding.encode_ordinary(text)), 2]


def test_an_absurdly_long_text_is_estimated_quickly() -> None:
    tok = tokens.tokenizer_for("gpt-4")
    assert tok.count("x" * (tokens.ESTIMATE_ABOVE_CHARS * 2)) == 2 * tok.count("x" * tokens.ESTIMATE_ABOVE_CHARS)


def test_count_memo_tokenizes_each_distinct_content_once() -> None:
    tok = tokens.tokenizer_for("gpt-4")
    memo = tokens.CountMemo()
    for _ in range(50):
        memo.need(tok, "sys", ["You are a helpful assistant."])
        memo.need(tok, "framing", ["user", "assistant"], constant=9)
    memo.flush()
    assert memo.texts_counted == 3 and memo.lookups == 100
    assert memo.get(tok, "sys") == tok.count("You are a helpful assistant.")
    assert memo.get(tok, "framing") == 9 + tok.count("user") + tok.count("assistant")
