"""The policy-file contract: what every policy module provides, and the strict base of their settings."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from .replay import Replay


class Settings(BaseModel):
    """Base of every policy's settings: unknown keys are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PolicyModule(Protocol):
    """One policy = one module of `costscope.simulate` with these three names."""

    NAME: str
    """Its key in a policy file (`routing`, `truncation`, ...)."""
    Config: type[Settings]
    """Its settings, validated from the YAML mapping under NAME."""

    @staticmethod
    def apply(config: Settings, replay: Replay) -> None:
        """Rebuild the calls of `replay` under this policy and record its outcome in `replay.outcomes[NAME]`."""
