"""The small exception hierarchy shared by every package.

Everything netsec-arena raises on purpose derives from :class:`ArenaError`, so a
caller can catch "our" failures without catching programming errors.
:class:`ProtocolError` also derives from :class:`ValueError`, because NetSecGame
raises ``ValueError`` for malformed input and its users catch that.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ArenaError", "ProtocolError", "describe"]


class ArenaError(Exception):
    """Base class of every error netsec-arena raises deliberately."""


def describe(value: Any, limit: int = 60) -> str:
    """Say what a value is, briefly: its type and a truncated repr.

    Used in error messages so a hostile or huge input never floods a log line.
    """
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"


class ProtocolError(ArenaError, ValueError):
    """Malformed input: names the field, what was expected and what came.

    >>> str(ProtocolError("parameters.source_host", "an IP address", "str 'x'"))
    "parameters.source_host: expected an IP address, got str 'x'"
    """

    def __init__(self, field: str, expected: str, got: str) -> None:
        self.field = field
        self.expected = expected
        self.got = got
        super().__init__(f"{field}: expected {expected}, got {got}")

    def within(self, prefix: str) -> ProtocolError:
        """The same error with its field path prefixed (``prefix.field``)."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return ProtocolError(field, self.expected, self.got)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ProtocolError, (self.field, self.expected, self.got))
