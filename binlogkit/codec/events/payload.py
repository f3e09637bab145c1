"""TRANSACTION_PAYLOAD (40, MySQL 8.0.20+): a compressed run of events.

| field          | encoding                                           |
| -------------- | -------------------------------------------------- |
| header fields  | packed type, packed length, value (packed integer) |
|                | 2 compression type (0 ZSTD, 255 NONE),             |
|                | 3 uncompressed size, 1 payload size, 0 end mark    |
| payload        | payload-size bytes: the events, each with a 19-byte|
|                | header, log_pos 0 and no checksum                  |
"""

from __future__ import annotations

from typing import Any

import construct as c
from construct import this

from binlogkit.codec.primitives import BoundedBytes, Packed, Whole

PAYLOAD_SIZE = 1
COMPRESSION_TYPE = 2
UNCOMPRESSED_SIZE = 3


def header_field(fields: Any, code: int) -> int | None:
    for f in fields:
        if f.type == code and isinstance(f.value, int):
            return int(f.value)
    return None


TransactionPayload = c.Struct(
    "fields" / c.RepeatUntil(
        lambda item, lst, ctx: item.type == 0,
        c.Struct(
            "type" / Packed,
            "value" / c.If(this.type != 0, c.Prefixed(Packed, Whole(Packed))),
        ),
    ),
    "payload" / BoundedBytes(
        lambda ctx: header_field(ctx.fields, PAYLOAD_SIZE) or 0
    ),
    "rest" / c.GreedyBytes,
)
