"""One binlog event: framing (header, body, CRC32 trailer), decode and encode.

``decode_event`` and ``encode_event`` are exact inverses for every event the
servers write: the body spec of the type runs forwards, then backwards.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import construct as c

from binlogkit.codec.context import (
    CHECKSUM_CRC32,
    CHECKSUM_OFF,
    FormatContext,
    fde_has_checksum_alg,
    is_permuted_table,
)
from binlogkit.codec.events.rows import parse_rows_common
from binlogkit.codec.header import (
    FLAGS_OFFSET,
    HEADER_V4_FIXED,
    MIN_HEADER_LEN,
    TYPE_OFFSET,
    HeaderV1,
    HeaderV4,
)
from binlogkit.codec.primitives import parse_error
from binlogkit.codec.registry import spec_for
from binlogkit.codec.types import (
    LOG_EVENT_BINLOG_IN_USE_F,
    LOG_EVENT_IGNORABLE_F,
    ROWS_EVENTS,
    TWO_BITMAPS,
    EventType,
    type_name,
)
from binlogkit.errors import BinlogError

FDE = EventType.FORMAT_DESCRIPTION
KNOWN_TYPES = frozenset(int(t) for t in EventType)
ENCRYPTED = -1  # pseudo type code of an event we cannot decrypt


@dataclass(slots=True)
class Event:
    """A decoded event. ``body`` holds the type's fields (a Construct
    Container); ``pos`` is the byte offset where the event starts (inside the
    decompressed payload for ``inner`` events)."""

    type_code: int
    timestamp: int
    server_id: int
    body: Any
    log_pos: int | None = None
    flags: int = 0
    extra_header: bytes = b""
    checksum: int | None = None
    pos: int = 0
    size: int = 0
    inner: bool = False
    ctx: FormatContext | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def type_name(self) -> str:
        return "ENCRYPTED" if self.type_code == ENCRYPTED else type_name(self.type_code)

    @property
    def next_pos(self) -> int:
        return self.pos + self.size


def _fde_checksum_alg(body: bytes) -> tuple[bool, int]:
    """(has_alg, alg) of an FDE body that still includes its 4-byte trailer."""
    version = body[2:52].split(b"\x00", 1)[0].decode("ascii", "replace")
    if not fde_has_checksum_alg(version) or len(body) < 57 + 5:
        return False, CHECKSUM_OFF
    return True, body[-5]


def event_crc(data: bytes | bytearray | memoryview, type_code: int) -> int:
    """CRC32 of an event without its trailer (FDE: computed with the in-use flag clear)."""
    if type_code == FDE and data[FLAGS_OFFSET] & LOG_EVENT_BINLOG_IN_USE_F:
        data = bytearray(data)
        data[FLAGS_OFFSET] &= ~LOG_EVENT_BINLOG_IN_USE_F & 0xFF
    return zlib.crc32(data) & 0xFFFFFFFF


_TABLE_MAPS: dict[tuple[bytes, int], c.Container] = {}


def _table_map(body: bytes, ph: int) -> c.Container:
    """TABLE_MAP bodies repeat in every transaction on a table: parse each
    distinct one once. Callers get a shallow copy; nested lists are shared,
    so treat a table map's metadata as read-only."""
    key = (body, ph)
    parsed = _TABLE_MAPS.get(key)
    if parsed is None:
        if len(_TABLE_MAPS) >= 4096:
            _TABLE_MAPS.clear()
        parsed = _TABLE_MAPS[key] = spec_for(EventType.TABLE_MAP).parse(body, ph=ph)
        parsed._raw = body  # lets TableMaps cache what it derives (one shared object)
    return c.Container(parsed)


def decode_event(
    data: bytes,
    ctx: FormatContext,
    *,
    pos: int = 0,
    verify: bool = True,
    inner: bool = False,
    file: str | None = None,
) -> Event:
    """Decode one whole event (header through checksum).

    Raises BinlogError naming ``file``, ``pos`` and what was expected.
    """
    hlen = ctx.header_len
    if hlen > MIN_HEADER_LEN and len(data) > TYPE_OFFSET and data[TYPE_OFFSET] == FDE:
        hlen = MIN_HEADER_LEN  # an FDE's header is always 19 bytes (its body starts at 19)
    if len(data) < hlen:
        raise BinlogError(f"event shorter than its {hlen}-byte header", file=file, offset=pos)
    if hlen < MIN_HEADER_LEN:
        h = HeaderV1.parse(data[:hlen])
        timestamp, type_code, server_id, event_size = \
            h.timestamp, h.type_code, h.server_id, h.event_size
        log_pos, flags, extra = None, 0, b""
    else:
        timestamp, type_code, server_id, event_size, log_pos, flags = \
            HEADER_V4_FIXED.unpack_from(data)
        extra = data[MIN_HEADER_LEN:hlen]
    code = ctx.canonical(type_code)
    if event_size != len(data):
        raise BinlogError(
            f"event_size {event_size} but {len(data)} bytes framed",
            file=file, offset=pos, event_type=type_name(code),
        )
    params: dict[str, Any] = {"ph": ctx.post_header_len(code), "has_alg": False}
    trailer = 0
    alg = ctx.checksum_alg
    if code == FDE:
        params["has_alg"], alg = _fde_checksum_alg(data[hlen:])
        trailer = 4 if params["has_alg"] else 0
    elif ctx.crc and not inner:
        trailer = 4
    if len(data) < hlen + trailer:
        raise BinlogError("event too short for its checksum", file=file, offset=pos,
                          event_type=type_name(code))
    checksum = int.from_bytes(data[-4:], "little") if trailer else None
    if verify and trailer and alg == CHECKSUM_CRC32:
        actual = event_crc(data[:-4], code)
        if actual != checksum:
            raise BinlogError(
                f"CRC32 mismatch: expected 0x{actual:08x} (computed), stored 0x{checksum:08x}",
                file=file, offset=pos, event_type=type_name(code),
            )
    body_bytes = data[hlen : len(data) - trailer]
    try:
        body = None
        if code == EventType.TABLE_MAP:
            body = _table_map(body_bytes, params["ph"])
        elif code in ROWS_EVENTS:
            body = parse_rows_common(body_bytes, params["ph"], code in TWO_BITMAPS)
        if body is None:
            body = spec_for(code).parse(body_bytes, **params)
    except (c.ConstructError, ValueError, OverflowError) as exc:
        raise BinlogError(
            f"malformed body: {parse_error(exc)}", file=file, offset=pos,
            event_type=type_name(code),
        ) from None
    ev = Event(
        type_code=code,
        timestamp=timestamp,
        server_id=server_id,
        body=body,
        log_pos=log_pos,
        flags=flags,
        extra_header=extra,
        checksum=checksum,
        pos=pos,
        size=len(data),
        inner=inner,
        ctx=ctx,
    )
    if code not in KNOWN_TYPES and not flags & LOG_EVENT_IGNORABLE_F:
        ev.warnings.append(
            f"unknown event type {code} is not marked ignorable (header flag 0x80);"
            " a server would stop here; kept as raw bytes"
        )
    return ev


def encode_event(
    ev: Event, ctx: FormatContext | None = None, *, at: int | None = None
) -> bytes:
    """Build the event's bytes from its fields: header, body, CRC32 trailer.

    ``event_size`` is computed; ``log_pos`` is taken as given, or, when ``at``
    (the offset the event will start at) is given, written as the event's end
    offset. The CRC is recomputed when the stream (or, for an FDE, the event)
    uses CRC32.
    """
    ctx = ctx or ev.ctx or FormatContext()
    code = ev.type_code
    if code == ENCRYPTED:
        return bytes(ev.body.data)
    params: dict[str, Any] = {"ph": ctx.post_header_len(code), "has_alg": False}
    trailer = 0
    crc = ctx.crc and not ev.inner
    if code == FDE:
        params["has_alg"] = ev.body.checksum_alg is not None
        trailer = 4 if params["has_alg"] else 0
        crc = ev.body.checksum_alg == CHECKSUM_CRC32
    elif crc:
        trailer = 4
    body = spec_for(code).build(ev.body, **params)
    hlen = MIN_HEADER_LEN if code == FDE and ctx.header_len > MIN_HEADER_LEN else ctx.header_len
    size = hlen + len(body) + trailer
    if hlen < MIN_HEADER_LEN:
        head = HeaderV1.build(
            {"timestamp": ev.timestamp, "type_code": ctx.on_disk(code), "server_id": ev.server_id,
             "event_size": size}
        )
    else:
        head = HeaderV4.build(
            {"timestamp": ev.timestamp, "type_code": ctx.on_disk(code), "server_id": ev.server_id,
             "event_size": size,
             "log_pos": at + size if at is not None else ev.log_pos or 0, "flags": ev.flags,
             "extra_header": ev.extra_header.ljust(hlen - MIN_HEADER_LEN, b"\x00")},
            header_len=hlen,
        )
    data = head + body
    if trailer:
        value = event_crc(data, code) if crc else (ev.checksum or 0)
        data += value.to_bytes(4, "little")
    return data


def context_after(ev: Event, ctx: FormatContext) -> FormatContext:
    """The context that governs the events following ``ev``."""
    if ev.type_code == FDE:
        b = ev.body
        version = b.server_version if isinstance(b.server_version, str) else b.server_version.split(
            b"\x00", 1)[0].decode("ascii", "replace")
        return FormatContext(
            binlog_version=b.binlog_version,
            header_len=b.header_length,
            post_header_lens=bytes(b.post_header_lengths),
            checksum_alg=b.checksum_alg if b.checksum_alg is not None else CHECKSUM_OFF,
            server_version=version,
            permuted=is_permuted_table(bytes(b.post_header_lengths)),
        )
    if ev.type_code == EventType.START_V3 and not ev.inner:
        b = ev.body
        version = b.server_version if isinstance(b.server_version, str) else ""
        return FormatContext.for_old_version(b.binlog_version if b.binlog_version == 1 else 3,
                                             version)
    return ctx
