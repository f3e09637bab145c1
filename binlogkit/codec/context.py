"""The format context of a binlog stream, set by its FORMAT_DESCRIPTION event.

The FDE (or, in files of binlog versions 1 and 3, the START_V3 event) says
how long the common header is, how long each event type's post-header is,
whether events end with a CRC32, and which server wrote them. A relay log can
change all of this mid-file, so the context travels with the stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from binlogkit.codec.types import EventType as T

CHECKSUM_OFF = 0
CHECKSUM_CRC32 = 1
CHECKSUM_UNDEF = 255

# Post-header lengths a v4 server writes, for event types an FDE's table does
# not reach (an FDE lists only the types its server knew).
DEFAULT_POST_HEADER: dict[int, int] = {  # keyed by type code
    T.START_V3: 56, T.QUERY: 13, T.ROTATE: 8, T.LOAD: 18, T.CREATE_FILE: 4,
    T.APPEND_BLOCK: 4, T.EXEC_LOAD: 4, T.DELETE_FILE: 4, T.NEW_LOAD: 18,
    T.FORMAT_DESCRIPTION: 84, T.BEGIN_LOAD_QUERY: 4, T.EXECUTE_LOAD_QUERY: 26,
    T.TABLE_MAP: 8, T.PRE_GA_WRITE_ROWS: 8, T.PRE_GA_UPDATE_ROWS: 8,
    T.PRE_GA_DELETE_ROWS: 8, T.WRITE_ROWS_V1: 8, T.UPDATE_ROWS_V1: 8,
    T.DELETE_ROWS_V1: 8, T.INCIDENT: 2, T.WRITE_ROWS_V2: 10, T.UPDATE_ROWS_V2: 10,
    T.DELETE_ROWS_V2: 10, T.GTID: 42, T.ANONYMOUS_GTID: 42, T.TRANSACTION_CONTEXT: 18,
    T.VIEW_CHANGE: 52, T.PARTIAL_UPDATE_ROWS: 10, T.BINLOG_CHECKPOINT: 4,
    T.MARIADB_GTID: 19, T.GTID_LIST: 4, T.QUERY_COMPRESSED: 13,
    T.WRITE_ROWS_COMPRESSED_V1: 8, T.UPDATE_ROWS_COMPRESSED_V1: 8,
    T.DELETE_ROWS_COMPRESSED_V1: 8, T.WRITE_ROWS_COMPRESSED: 10,
    T.UPDATE_ROWS_COMPRESSED: 10, T.DELETE_ROWS_COMPRESSED: 10,
}

# Binlog versions 1 (MySQL 3.23) and 3 (4.0, 4.1) have no FDE; their
# post-header lengths are fixed by the version (types 1..14).
_V1_V3_POST_HEADER = (56, 11, 0, 8, 0, 18, 0, 4, 4, 4, 4, 18, 0, 0)


# WL#2325 trees wrote TABLE_MAP, the pre-GA row events, XID, BEGIN_LOAD_QUERY
# and EXECUTE_LOAD_QUERY as 16..22. They are told apart by their FDE: 22
# types, and a non-zero post-header for type 16 (XID's is always 0).
_OLD_TO_CANON: dict[int, int] = {16: T.TABLE_MAP, 17: T.PRE_GA_WRITE_ROWS, 18: T.PRE_GA_UPDATE_ROWS,
                 19: T.PRE_GA_DELETE_ROWS, 20: T.XID, 21: T.BEGIN_LOAD_QUERY,
                 22: T.EXECUTE_LOAD_QUERY}
_CANON_TO_OLD: dict[int, int] = {v: k for k, v in _OLD_TO_CANON.items()}


def is_permuted_table(post_header_lens: bytes) -> bool:
    return len(post_header_lens) == 22 and post_header_lens[15] != 0


def version_tuple(version: str) -> tuple[int, int, int]:
    """The leading ``major.minor.patch`` of a server version string."""
    nums = [int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3]]
    while len(nums) < 3:
        nums.append(0)
    return (nums[0], nums[1], nums[2])


def is_mariadb(version: str) -> bool:
    return "MariaDB" in version or "-maria-" in version


def fde_has_checksum_alg(version: str) -> bool:
    """Whether an FDE written by this server version ends with alg + CRC bytes.

    MySQL since 5.6.1 and MariaDB since 5.3 are checksum-aware; their FDE
    always carries the algorithm byte and a 4-byte checksum field, even when
    checksums are off.
    """
    split = version_tuple(version)
    return split >= ((5, 3, 0) if is_mariadb(version) else (5, 6, 1))


@dataclass(frozen=True, slots=True)
class FormatContext:
    """How to frame and parse the events that follow."""

    binlog_version: int = 4
    header_len: int = 19
    post_header_lens: bytes = b""
    checksum_alg: int = CHECKSUM_OFF
    server_version: str = ""
    # Development trees of 5.1/5.2 (WL#2325) numbered types 16..22 differently.
    permuted: bool = False
    _ph_cache: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def flavor(self) -> str:
        return "mariadb" if is_mariadb(self.server_version) else "mysql"

    @property
    def crc(self) -> bool:
        """True when every event but the FDE ends with a CRC32."""
        return self.checksum_alg == CHECKSUM_CRC32

    def post_header_len(self, type_code: int) -> int:
        """Post-header length of a type (canonical code)."""
        ph = self._ph_cache.get(type_code)
        if ph is None:
            disk = _CANON_TO_OLD.get(type_code, type_code) if self.permuted else type_code
            if 1 <= disk <= len(self.post_header_lens):
                ph = self.post_header_lens[disk - 1]
            else:
                ph = DEFAULT_POST_HEADER.get(type_code, 0)
            self._ph_cache[type_code] = ph
        return ph

    def canonical(self, disk_code: int) -> int:
        """The type code binlogkit uses for a code as written in the file."""
        return _OLD_TO_CANON.get(disk_code, disk_code) if self.permuted else disk_code

    def on_disk(self, type_code: int) -> int:
        return _CANON_TO_OLD.get(type_code, type_code) if self.permuted else type_code

    @classmethod
    def for_old_version(cls, binlog_version: int, server_version: str) -> FormatContext:
        """Context of a v1 or v3 file, as set by its START_V3 event."""
        table = bytearray(_V1_V3_POST_HEADER)
        if binlog_version == 1:
            table[T.ROTATE - 1] = 0
        return cls(
            binlog_version=binlog_version,
            header_len=13 if binlog_version == 1 else 19,
            post_header_lens=bytes(table),
            server_version=server_version,
        )

    def inner(self) -> FormatContext:
        """Context of the events inside a TRANSACTION_PAYLOAD (no checksums)."""
        return FormatContext(4, 19, self.post_header_lens, CHECKSUM_OFF, self.server_version)
