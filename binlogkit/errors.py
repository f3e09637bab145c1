"""The one exception type for malformed binlog input."""

from __future__ import annotations


class BinlogError(Exception):
    """Malformed or unreadable binlog input.

    Carries where it happened: ``file`` (path or None for in-memory data),
    ``offset`` (byte offset of the event, or of the bad byte when no event
    could be framed), ``event_type`` (type name when known) and ``expected``
    (what the reader needed to find there).
    """

    def __init__(
        self,
        expected: str,
        *,
        file: str | None = None,
        offset: int | None = None,
        event_type: str | None = None,
    ) -> None:
        self.expected = expected
        self.file = file
        self.offset = offset
        self.event_type = event_type
        super().__init__(self._text())

    def _text(self) -> str:
        where = self.file or "<bytes>"
        if self.offset is not None:
            where += f" at byte {self.offset}"
        what = f" in {self.event_type} event" if self.event_type else ""
        return f"{where}{what}: {self.expected}"

    def located(
        self, *, file: str | None = None, offset: int | None = None,
        event_type: str | None = None,
    ) -> BinlogError:
        """Return a copy with missing location fields filled in."""
        return BinlogError(
            self.expected,
            file=self.file or file,
            offset=self.offset if self.offset is not None else offset,
            event_type=self.event_type or event_type,
        )
