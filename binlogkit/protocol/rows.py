"""Row changes of a live server's binlog as Python values: the streaming
counterpart of :func:`binlogkit.io.rows.row_events`.

    from binlogkit.protocol.blocking import BinlogStream
    from binlogkit.protocol.replica import Start
    from binlogkit.protocol.rows import stream_row_events

    with BinlogStream(connect, Start("binlog.000001", 4), blocking=False,
                      types=ROW_STREAM_TYPES) as stream:
        for rev in stream_row_events(stream):
            for row in rev.rows:
                ...

The events come from anything that yields :class:`StreamEvent` (a
:class:`BinlogStream`, or a loop over :class:`ReplicaProtocol`) or plain
:class:`Event` objects. TABLE_MAP events are remembered, row events are
decoded to values with the same code as ``row_events`` (one generated loop
per table and event kind), and the events of a TRANSACTION_PAYLOAD are
read; every other event is passed over. A row event that cannot be decoded
raises :class:`BinlogError` naming the binlog file and offset on the
source. :class:`Discard` markers from a reconnecting stream are passed
through unchanged: drop the row events yielded since ``Discard.file``,
``Discard.pos``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from binlogkit.codec.columns import Schemas
from binlogkit.codec.describe import TableMaps
from binlogkit.codec.event import Event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.types import ROWS_EVENTS, EventType
from binlogkit.io.rows import RowEvent, handle_event
from binlogkit.protocol.blocking import Discard
from binlogkit.protocol.replica import StreamEvent

__all__ = ["ROW_STREAM_TYPES", "RowEvent", "stream_row_events"]

_WANTED = frozenset(ROWS_EVENTS | {EventType.TABLE_MAP})
# what a stream feeding stream_row_events needs (BinlogStream(types=...)):
# other events are framed and CRC-checked but not decoded or returned
ROW_STREAM_TYPES = _WANTED | {EventType.TRANSACTION_PAYLOAD}
_PAYLOAD = EventType.TRANSACTION_PAYLOAD


def stream_row_events(
    events: Iterable[StreamEvent | Event | Discard],
    *,
    schemas: Schemas | None = None,
    tables: TableMaps | None = None,
    verify_checksum: bool = True,
) -> Iterator[RowEvent | Discard]:
    """Every row event of ``events``, decoded to values, in stream order.

    ``schemas`` completes what the binlog does not say (as for
    ``row_events``); ``tables`` carries table maps across calls (e.g. from
    one stream to the next when resuming mid-transaction).
    ``verify_checksum`` applies to the events inside a TRANSACTION_PAYLOAD
    (the stream verifies the outer events itself).

    ``RowEvent.file`` is the source's binlog file; ``RowEvent.pos`` its
    offset there (inside a TRANSACTION_PAYLOAD: the offset in the
    uncompressed payload, as for files).
    """
    maps = tables if tables is not None else TableMaps(schemas)
    wanted = _WANTED
    for item in events:
        if type(item) is StreamEvent:
            ev, file = item.event, item.file or None
        elif isinstance(item, Event):
            ev, file = item, None
        elif isinstance(item, StreamEvent):
            ev, file = item.event, item.file or None
        else:
            yield item  # Discard
            continue
        code = ev.type_code
        if code in wanted:
            out = handle_event(ev, maps, file)
            if out is not None:
                yield out
        elif code == _PAYLOAD:
            for inner in inner_events(ev, verify=verify_checksum, file=file):
                out = handle_event(inner, maps, file)
                if out is not None:
                    yield out

