"""Row changes of binlog files as Python values: the fast path for readers
that want rows and nothing else.

Only TABLE_MAP, row events and TRANSACTION_PAYLOAD (whose inner events are
read) are parsed; every other event is framed and CRC-checked but its body is
not decoded. A row event that cannot be decoded raises :class:`BinlogError`
(file, offset, what was expected): rows are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from binlogkit.codec.columns import Column, Schemas
from binlogkit.codec.compression import CompressionError
from binlogkit.codec.describe import TableMaps
from binlogkit.codec.event import Event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.rowcodec import Row, decode_rows
from binlogkit.codec.rowimage import RowFramingError
from binlogkit.codec.types import ROWS_EVENTS, EventType
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader

_WANTED = ROWS_EVENTS | {EventType.TABLE_MAP, EventType.TRANSACTION_PAYLOAD}


@dataclass(slots=True)
class RowEvent:
    """The rows of one row event, with where it was and what table it changed."""

    event: Event
    schema: str
    table: str
    columns: tuple[Column, ...]
    rows: list[Row]
    file: str | None

    @property
    def type_name(self) -> str:
        return self.event.type_name

    @property
    def pos(self) -> int:
        return self.event.pos


def row_events(
    source: str | os.PathLike[str] | BinaryIO | bytes,
    *,
    schemas: Schemas | None = None,
    verify_checksum: bool = True,
    tables: TableMaps | None = None,
    **reader_options: Any,
) -> Iterator[RowEvent]:
    """Every row event of a binlog file, decoded to values, in file order.

    ``schemas`` completes what the binlog does not say (names with
    binlog_row_metadata=MINIMAL, everything on servers before MySQL 8.0 /
    MariaDB 10.5); ``tables`` carries table maps across files.
    """
    reader = BinlogReader(source, verify_checksum=verify_checksum, types=_WANTED,
                          **reader_options)
    maps = tables if tables is not None else TableMaps(schemas)
    for ev in reader:
        if ev.type_code == EventType.TRANSACTION_PAYLOAD:
            for inner in inner_events(ev, verify=verify_checksum, file=reader.name):
                out = handle_event(inner, maps, reader.name)
                if out is not None:
                    yield out
            continue
        out = handle_event(ev, maps, reader.name)
        if out is not None:
            yield out


def handle_event(ev: Event, maps: TableMaps, file: str | None) -> RowEvent | None:
    """Remember a TABLE_MAP (None), decode a row event (its RowEvent, ``file``
    naming where it came from), pass over anything else (None). Shared with
    :mod:`binlogkit.protocol.rows`."""
    if ev.type_code == EventType.TABLE_MAP:
        maps.see(ev)
        return None
    if ev.type_code not in ROWS_EVENTS:
        return None
    tid = ev.body.table_id
    try:
        codec = maps.codec(tid)
        if codec is None:
            raise RowFramingError(f"a TABLE_MAP for table id {tid} before its rows")
        rows = decode_rows(ev.type_code, ev.body, codec)
    except (RowFramingError, CompressionError) as exc:
        raise BinlogError(str(exc), file=file, offset=ev.pos, event_type=ev.type_name) from None
    schema, table = maps.name(tid)
    return RowEvent(ev, schema or "", table or "", codec.columns, rows, file)
