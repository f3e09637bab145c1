"""The common event header, in its binlog v1 and v3/v4 layouts.

| offset | size | field (v1: first four only, 13 bytes)                 |
| ------ | ---- | ----------------------------------------------------- |
| 0      | 4    | timestamp (seconds since the epoch)                   |
| 4      | 1    | type_code                                             |
| 5      | 4    | server_id                                             |
| 9      | 4    | event_size (header + body + checksum)                 |
| 13     | 4    | log_pos (offset of the next event in the source file) |
| 17     | 2    | flags                                                 |
| 19     | n    | extra header bytes (when the FDE's header length > 19)|
"""

from __future__ import annotations

import struct

import construct as c
from construct import this

from binlogkit.codec.primitives import Int8, Int16, Int32

HeaderV1 = c.Struct(
    "timestamp" / Int32,
    "type_code" / Int8,
    "server_id" / Int32,
    "event_size" / Int32,
)

HeaderV4 = c.Struct(
    "timestamp" / Int32,
    "type_code" / Int8,
    "server_id" / Int32,
    "event_size" / Int32,
    "log_pos" / Int32,
    "flags" / Int16,
    "extra_header" / c.Bytes(this._params.header_len - 19),
)

# The fixed part of HeaderV4 as one struct, for the reader's hot path; it
# yields the same six fields (tests/test_row_codec.py compares the two on
# every corpus event).
HEADER_V4_FIXED = struct.Struct("<IBIIIH")

TYPE_OFFSET = 4
SIZE_OFFSET = 9
FLAGS_OFFSET = 17
V1_HEADER_LEN = 13
MIN_HEADER_LEN = 19
