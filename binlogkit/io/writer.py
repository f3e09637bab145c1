"""Write events to a binlog file, encoding each from its fields."""

from __future__ import annotations

import os
from typing import BinaryIO

from binlogkit.codec.context import FormatContext
from binlogkit.codec.event import Event, context_after, encode_event
from binlogkit.io.reader import MAGIC


class BinlogWriter:
    """Append events to a new binlog file (magic first).

    The writer keeps its own format context, set by the FORMAT_DESCRIPTION
    events it writes, and encodes every event under it. With
    ``fix_positions`` each event's ``log_pos`` becomes its end offset in the
    output (what a server writes); otherwise ``log_pos`` is written as given,
    which keeps relay logs (whose log_pos refer to the source's file) intact.
    """

    def __init__(self, target: str | os.PathLike[str] | BinaryIO, *,
                 fix_positions: bool = False) -> None:
        if isinstance(target, str | os.PathLike):
            self._f: BinaryIO = open(target, "wb")  # noqa: SIM115
            self._owned = True
        else:
            self._f = target
            self._owned = False
        self.fix_positions = fix_positions
        self.ctx = FormatContext()
        self.pos = 4
        self._f.write(MAGIC)

    def write(self, ev: Event) -> bytes:
        """Encode and write one event; return its bytes."""
        fix = self.fix_positions and self.ctx.header_len >= 19
        data = encode_event(ev, self.ctx, at=self.pos if fix else None)
        if fix:
            ev.log_pos = self.pos + len(data)
        self._f.write(data)
        self.pos += len(data)
        self.ctx = context_after(ev, self.ctx)
        return data

    def close(self) -> None:
        if self._owned:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> BinlogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
