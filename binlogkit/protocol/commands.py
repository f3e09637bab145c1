"""The replica's commands, as payloads (frame them with
:func:`binlogkit.protocol.packets.frame`, sequence id 0).

COM_REGISTER_SLAVE (0x15)

| bytes | field                                   |
| ----- | --------------------------------------- |
| 1     | 0x15                                    |
| 4     | replica server_id                       |
| 1+n   | host (length-prefixed)                  |
| 1+n   | user (length-prefixed)                  |
| 1+n   | password (length-prefixed; sent empty)  |
| 2     | port                                    |
| 4     | replication rank (unused)               |
| 4     | source id (0)                           |

COM_BINLOG_DUMP (0x12): 1 command, 4 position (u32), 2 flags, 4 server_id,
then the file name (rest of the payload).

COM_BINLOG_DUMP_GTID (0x1e, MySQL)

| bytes | field                                               |
| ----- | --------------------------------------------------- |
| 1     | 0x1e                                                |
| 2     | flags (0x01 non-blocking, 0x04 through GTID)        |
| 4     | server_id                                           |
| 4     | file name length                                    |
| n     | file name                                           |
| 8     | position                                            |
| 4     | SID block length (with flag 0x04)                   |
| n     | SID block: the GTID set, encoded (tagged or not)    |

Semi-sync ACK: 0xEF, 8 position (u64), file name.
"""

from __future__ import annotations

COM_BINLOG_DUMP = 0x12
COM_REGISTER_SLAVE = 0x15
COM_BINLOG_DUMP_GTID = 0x1E

BINLOG_DUMP_NON_BLOCK = 0x01
BINLOG_SEND_ANNOTATE_ROWS_EVENT = 0x02  # MariaDB: send ANNOTATE_ROWS too
BINLOG_THROUGH_GTID = 0x04

SEMISYNC_MAGIC = 0xEF
SEMISYNC_NEED_ACK = 0x01


def _lenstr(text: bytes) -> bytes:
    if len(text) > 255:
        raise ValueError("at most 255 bytes")
    return bytes([len(text)]) + text


def register_replica(server_id: int, *, host: str = "", user: str = "", port: int = 0) -> bytes:
    """COM_REGISTER_SLAVE: what SHOW REPLICAS lists (the password is never sent)."""
    return (bytes([COM_REGISTER_SLAVE]) + server_id.to_bytes(4, "little")
            + _lenstr(host.encode()) + _lenstr(user.encode()) + _lenstr(b"")
            + port.to_bytes(2, "little") + (0).to_bytes(4, "little") + (0).to_bytes(4, "little"))


def binlog_dump(server_id: int, file: str, pos: int, flags: int = 0) -> bytes:
    """COM_BINLOG_DUMP: from ``file`` at ``pos`` (MariaDB with GTIDs: empty file, 4)."""
    if not 0 <= pos <= 0xFFFFFFFF:
        raise ValueError(f"position {pos} does not fit COM_BINLOG_DUMP (4 bytes)")
    return (bytes([COM_BINLOG_DUMP]) + pos.to_bytes(4, "little") + flags.to_bytes(2, "little")
            + server_id.to_bytes(4, "little") + file.encode())


def binlog_dump_gtid(server_id: int, sid_block: bytes, *, file: str = "", pos: int = 4,
                     flags: int = 0) -> bytes:
    """COM_BINLOG_DUMP_GTID: everything the server has that ``sid_block`` (an
    encoded GTID set, :meth:`binlogkit.gtid.GtidSet.encode`) lacks."""
    name = file.encode()
    return (bytes([COM_BINLOG_DUMP_GTID]) + (flags | BINLOG_THROUGH_GTID).to_bytes(2, "little")
            + server_id.to_bytes(4, "little") + len(name).to_bytes(4, "little") + name
            + pos.to_bytes(8, "little") + len(sid_block).to_bytes(4, "little") + sid_block)


def semisync_ack(file: str, pos: int) -> bytes:
    """The reply to an event the source flagged: received up to ``pos`` of ``file``."""
    return bytes([SEMISYNC_MAGIC]) + pos.to_bytes(8, "little") + file.encode()
