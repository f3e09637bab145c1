"""Events inside a TRANSACTION_PAYLOAD: decompress and frame them, or build
a new payload from events."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import construct as c

from binlogkit.codec.compression import NONE, ZSTD, read_exact, zstd_compress, zstd_stream
from binlogkit.codec.context import FormatContext
from binlogkit.codec.event import Event, decode_event, encode_event
from binlogkit.codec.events.payload import (
    COMPRESSION_TYPE,
    PAYLOAD_SIZE,
    UNCOMPRESSED_SIZE,
    header_field,
)
from binlogkit.codec.header import SIZE_OFFSET
from binlogkit.errors import BinlogError

MAX_INNER_EVENT = 1 << 30


def inner_events(
    ev: Event, ctx: FormatContext | None = None, *, verify: bool = True,
    file: str | None = None,
) -> Iterator[Event]:
    """Yield the events of a TRANSACTION_PAYLOAD, decompressing as it goes.

    ``ctx`` defaults to the context the payload event was decoded under.
    ``pos`` of each inner event is its offset in the uncompressed payload.
    Memory is bounded by the largest inner event.
    """
    fields = ev.body.fields
    ctype = header_field(fields, COMPRESSION_TYPE)
    declared = header_field(fields, UNCOMPRESSED_SIZE)

    def error(expected: str) -> BinlogError:
        return BinlogError(expected, file=file, offset=ev.pos, event_type="TRANSACTION_PAYLOAD")

    if ctype == ZSTD:
        stream = zstd_stream(bytes(ev.body.payload))
    elif ctype == NONE:
        import io

        stream = io.BytesIO(bytes(ev.body.payload))
    else:
        raise error(f"unknown compression type {ctype}")
    ictx = (ctx or ev.ctx or FormatContext()).inner()
    offset = 0
    try:
        while True:
            head = b"".join(read_exact(stream, ictx.header_len))
            if not head:
                break
            if len(head) < ictx.header_len:
                raise error(f"payload ends inside an event header at inner offset {offset}")
            size = int.from_bytes(head[SIZE_OFFSET : SIZE_OFFSET + 4], "little")
            if size < ictx.header_len or size > MAX_INNER_EVENT:
                raise error(f"inner event at {offset} has size {size}")
            data = head + b"".join(read_exact(stream, size - ictx.header_len))
            if len(data) != size:
                raise error(f"payload ends inside the inner event at {offset}")
            yield decode_event(data, ictx, pos=offset, verify=verify, inner=True, file=file)
            offset += size
    except BinlogError:
        raise
    except Exception as exc:  # zstd errors have no common base class
        raise error(f"cannot decompress payload: {exc}") from None
    if declared is not None and offset != declared:
        raise error(f"payload holds {offset} bytes, header says {declared}")


def build_payload(
    events: Iterable[Event], ctx: FormatContext, *, compression: int = ZSTD
) -> c.Container:
    """A TRANSACTION_PAYLOAD body holding ``events`` (re-encoded, compressed)."""
    ictx = ctx.inner()
    raw = b"".join(encode_event(e, ictx) for e in events)
    payload = zstd_compress(raw) if compression == ZSTD else raw
    fields = [c.Container(type=COMPRESSION_TYPE, value=compression)]
    if compression != NONE:
        fields.append(c.Container(type=UNCOMPRESSED_SIZE, value=len(raw)))
    fields += [c.Container(type=PAYLOAD_SIZE, value=len(payload)),
               c.Container(type=0, value=None)]
    return c.Container(fields=fields, payload=payload, rest=b"")
