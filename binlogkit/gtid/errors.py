"""The one exception type of :mod:`binlogkit.gtid`."""

from __future__ import annotations


class GtidError(ValueError):
    """Malformed GTID text or encoding, or an operation the model forbids.

    ``text`` is the text being parsed (None for binary input or non-parse errors),
    ``position`` the 0-based character (or byte) offset where parsing failed, and
    ``expected`` what would have been valid there.
    """

    def __init__(self, expected: str, text: str | None = None,
                 position: int | None = None) -> None:
        self.text = text
        self.position = position
        self.expected = expected
        super().__init__(self._render())

    def _render(self) -> str:
        if self.text is None and self.position is None:
            return self.expected
        if self.text is None:
            return f"at byte {self.position}: {self.expected}"
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        if self.position is None:
            return f"in {shown!r}: {self.expected}"
        return f"at character {self.position} of {shown!r}: expected {self.expected}"

    def __reduce__(self) -> tuple[type[GtidError], tuple[str, str | None, int | None]]:
        return (GtidError, (self.expected, self.text, self.position))
