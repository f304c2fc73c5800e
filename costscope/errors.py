"""The one error type that reaches the user: a message plus an optional hint."""

from __future__ import annotations


class CostscopeError(Exception):
    """An error the user can act on; the CLI prints it once as `Error: message` and exits 2."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self) -> tuple[type[CostscopeError], tuple[str, str | None]]:
        # keeps the hint when the error crosses a process boundary (parallel parsing)
        return (type(self), (self.message, self.hint))

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\nHint: {self.hint}"


class InputError(CostscopeError):
    """A trace file that cannot be read or a record that cannot be used."""


class ConfigError(CostscopeError):
    """An invalid option, price file or policy file."""
