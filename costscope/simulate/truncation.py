"""The truncation policy (being written)."""

from __future__ import annotations

from .policy import Settings
from .replay import Replay

NAME = "truncation"


class Config(Settings):
    pass


def apply(config: Config, replay: Replay) -> None:
    raise NotImplementedError(NAME)
