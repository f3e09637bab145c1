"""Control events: START_V3, FORMAT_DESCRIPTION, STOP, ROTATE, XID,
INCIDENT, HEARTBEAT, SLAVE, START_ENCRYPTION and raw (unknown) bodies."""

from __future__ import annotations

import construct as c
from construct import this

from binlogkit.codec.primitives import BoundedBytes, FixedText, Int8, Int16, Int32, Int64

ph = this._params.ph

# START_V3 (1), the first event of binlog versions 1 and 3.
#
# | offset | size | field                          |
# | ------ | ---- | ------------------------------ |
# | 0      | 2    | binlog_version (1 or 3)        |
# | 2      | 50   | server_version, NUL-padded     |
# | 52     | 4    | create_timestamp               |
StartV3 = c.Struct(
    "binlog_version" / Int16,
    "server_version" / FixedText(50),
    "create_timestamp" / Int32,
    "rest" / c.GreedyBytes,
)

# FORMAT_DESCRIPTION (15). The CRC32 trailer is framed by the event codec.
#
# | offset | size | field                                          |
# | ------ | ---- | ---------------------------------------------- |
# | 0      | 2    | binlog_version (4)                             |
# | 2      | 50   | server_version, NUL-padded                     |
# | 52     | 4    | create_timestamp                               |
# | 56     | 1    | header_length (common header length, >= 19)    |
# | 57     | n    | post_header_lengths, one byte per type 1..n    |
# | 57+n   | 1    | checksum_alg (0 off, 1 CRC32; checksum-aware   |
# |        |      | servers only: MySQL 5.6.1+, MariaDB 5.3+)      |
FormatDescription = c.Struct(
    "binlog_version" / Int16,
    "server_version" / FixedText(50),
    "create_timestamp" / Int32,
    "header_length" / Int8,
    "post_header_lengths" / BoundedBytes(
        lambda ctx: c.stream_size(ctx._io) - 57 - (1 if ctx._params.has_alg else 0)
    ),
    "checksum_alg" / c.If(this._params.has_alg, Int8),
)

# ROTATE (4): u64 position (absent in binlog v1), then the next file's name.
Rotate = c.Struct(
    "position" / c.If(ph >= 8, Int64),
    "post_extra" / BoundedBytes(lambda ctx: max(ctx._params.ph - 8, 0)),
    "next_file" / c.GreedyBytes,
)

# XID (16): u64 transaction id of the storage engine commit.
Xid = c.Struct("xid" / Int64, "rest" / c.GreedyBytes)

# INCIDENT (26): u16 incident number (1 LOST_EVENTS), u8 len + message.
Incident = c.Struct(
    "incident" / Int16,
    "message" / c.Prefixed(Int8, c.GreedyBytes),
    "rest" / c.GreedyBytes,
)

# HEARTBEAT (27): the source's current binlog file name (position in header).
Heartbeat = c.Struct("log_file" / c.GreedyBytes)

# SLAVE (7): never written by released servers; kept as its documented fields.
Slave = c.Struct(
    "master_pos" / Int64,
    "master_port" / Int16,
    "master_host" / c.NullTerminated(c.GreedyBytes),
    "master_log" / c.GreedyBytes,
)

# START_ENCRYPTION (164, MariaDB): scheme, key version, 12-byte nonce.
StartEncryption = c.Struct(
    "scheme" / Int8,
    "key_version" / Int32,
    "nonce" / c.Bytes(12),
    "rest" / c.GreedyBytes,
)

# STOP (3), IGNORABLE (28), types nobody defines: the body, kept raw.
Raw = c.Struct("data" / c.GreedyBytes)
