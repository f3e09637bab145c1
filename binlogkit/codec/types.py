"""Event type codes of MySQL and MariaDB, with the names binlogkit prints."""

from __future__ import annotations

from enum import IntEnum


class EventType(IntEnum):
    """Type code in byte 4 of the common header.

    MariaDB's own events (160+) carry a ``MARIADB_`` prefix only where the
    plain name is MySQL's (``GTID`` is 33, ``MARIADB_GTID`` is 162).
    """

    UNKNOWN = 0
    START_V3 = 1
    QUERY = 2
    STOP = 3
    ROTATE = 4
    INTVAR = 5
    LOAD = 6
    SLAVE = 7
    CREATE_FILE = 8
    APPEND_BLOCK = 9
    EXEC_LOAD = 10
    DELETE_FILE = 11
    NEW_LOAD = 12
    RAND = 13
    USER_VAR = 14
    FORMAT_DESCRIPTION = 15
    XID = 16
    BEGIN_LOAD_QUERY = 17
    EXECUTE_LOAD_QUERY = 18
    TABLE_MAP = 19
    PRE_GA_WRITE_ROWS = 20
    PRE_GA_UPDATE_ROWS = 21
    PRE_GA_DELETE_ROWS = 22
    WRITE_ROWS_V1 = 23
    UPDATE_ROWS_V1 = 24
    DELETE_ROWS_V1 = 25
    INCIDENT = 26
    HEARTBEAT = 27
    IGNORABLE = 28
    ROWS_QUERY = 29
    WRITE_ROWS_V2 = 30
    UPDATE_ROWS_V2 = 31
    DELETE_ROWS_V2 = 32
    GTID = 33
    ANONYMOUS_GTID = 34
    PREVIOUS_GTIDS = 35
    TRANSACTION_CONTEXT = 36
    VIEW_CHANGE = 37
    XA_PREPARE = 38
    PARTIAL_UPDATE_ROWS = 39
    TRANSACTION_PAYLOAD = 40
    HEARTBEAT_V2 = 41
    GTID_TAGGED = 42
    ANNOTATE_ROWS = 160
    BINLOG_CHECKPOINT = 161
    MARIADB_GTID = 162
    GTID_LIST = 163
    START_ENCRYPTION = 164
    QUERY_COMPRESSED = 165
    WRITE_ROWS_COMPRESSED_V1 = 166
    UPDATE_ROWS_COMPRESSED_V1 = 167
    DELETE_ROWS_COMPRESSED_V1 = 168
    WRITE_ROWS_COMPRESSED = 169
    UPDATE_ROWS_COMPRESSED = 170
    DELETE_ROWS_COMPRESSED = 171


_NAMES = {e.value: e.name for e in EventType}


def type_name(code: int) -> str:
    """Upper-case name of a type code; ``UNKNOWN_<n>`` for codes nobody defines."""
    return _NAMES.get(code) or f"UNKNOWN_{code}"


ROWS_EVENTS = frozenset({20, 21, 22, 23, 24, 25, 30, 31, 32, 39, 166, 167, 168, 169, 170, 171})
WRITE_ROWS = frozenset({20, 23, 30, 166, 169})
UPDATE_ROWS = frozenset({21, 24, 31, 39, 167, 170})
DELETE_ROWS = frozenset({22, 25, 32, 168, 171})
# Update events carrying a second (after-image) column bitmap; pre-GA ones do not.
TWO_BITMAPS = frozenset({24, 31, 39, 167, 170})
COMPRESSED_ROWS = frozenset({166, 167, 168, 169, 170, 171})

# Header flag bits (common header, bytes 17-18)
LOG_EVENT_BINLOG_IN_USE_F = 0x0001
LOG_EVENT_ARTIFICIAL_F = 0x0020
LOG_EVENT_RELAY_LOG_F = 0x0040
LOG_EVENT_IGNORABLE_F = 0x0080
