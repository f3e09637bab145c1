"""The replica side of binlog streaming, sans-I/O (in the manner of h11):
the driver runs :meth:`ReplicaProtocol.setup_queries` over SQL, sends
:meth:`ReplicaProtocol.register_packet` (expects OK) and
:meth:`ReplicaProtocol.dump_packet`, then feeds every received byte to
:meth:`ReplicaProtocol.receive_data` and takes what :meth:`next_event`
gives: a :class:`StreamEvent`, :data:`NEED_DATA` or :data:`END`. When an
event carries the semi-sync "ACK wanted" flag, :meth:`ack_packet` gives
the bytes to send once the event is safely handed on.

Each packet of the dump is ``00`` + [``EF`` flag] + one event exactly as in
the source's file, or ``FE`` (end of a non-blocking dump) or ``FF`` (an
error: code, SQL state, message). Events are decoded with the format
context of the stream, set by each FORMAT_DESCRIPTION as in a file.

Positions: :attr:`ReplicaProtocol.resume` is where to reconnect from so
that no transaction is replayed half: the file and position after the last
event that ended a transaction, and the GTIDs of every transaction ended.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from binlogkit.codec.context import CHECKSUM_CRC32, FormatContext
from binlogkit.codec.describe import gtid_text, uuid_text
from binlogkit.codec.event import Event, context_after, decode_event, event_crc
from binlogkit.codec.events.rows import parse_rows_common
from binlogkit.codec.header import HEADER_V4_FIXED, MIN_HEADER_LEN
from binlogkit.codec.types import LOG_EVENT_ARTIFICIAL_F, ROWS_EVENTS, TWO_BITMAPS, EventType
from binlogkit.errors import BinlogError
from binlogkit.gtid import GtidSet, GtidSetBuilder, MariadbGtidState
from binlogkit.protocol.commands import (
    BINLOG_DUMP_NON_BLOCK,
    BINLOG_SEND_ANNOTATE_ROWS_EVENT,
    SEMISYNC_MAGIC,
    SEMISYNC_NEED_ACK,
    binlog_dump,
    binlog_dump_gtid,
    register_replica,
    semisync_ack,
)
from binlogkit.protocol.packets import ConnectionClosed, PacketReader, ProtocolError, frame

T = EventType
Flavor = Literal["mysql", "mariadb"]
# events decoded even when the caller did not ask for them: they set the
# format context, name files, or start and end transactions
_CONTROL = frozenset({T.FORMAT_DESCRIPTION, T.ROTATE, T.STOP, T.START_V3, T.GTID, T.GTID_TAGGED,
                      T.ANONYMOUS_GTID, T.MARIADB_GTID, T.QUERY, T.QUERY_COMPRESSED, T.XID,
                      T.TRANSACTION_PAYLOAD, T.XA_PREPARE, T.PREVIOUS_GTIDS, T.GTID_LIST,
                      T.BINLOG_CHECKPOINT, T.START_ENCRYPTION})
# control events _pass_over_control tracks from their bytes
_LIGHT = frozenset({T.XID, T.GTID, T.ANONYMOUS_GTID, T.MARIADB_GTID, T.QUERY})
# events that belong to the statement or transaction around them
_IN_GROUP = ROWS_EVENTS | {T.TABLE_MAP, T.ROWS_QUERY, T.ANNOTATE_ROWS, T.INTVAR, T.RAND,
                           T.USER_VAR, T.BEGIN_LOAD_QUERY, T.APPEND_BLOCK}


class StreamError(Exception):
    """The server ended the dump with an error (code and message are the
    server's, e.g. 1236 for a purged or unknown start position)."""

    def __init__(self, code: int, message: str, state: str = "") -> None:
        super().__init__(f"server error {code}" + (f" ({state})" if state else "")
                         + f": {message}")
        self.code, self.message, self.state = code, message, state


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Marker("NEED_DATA")
END = _Marker("END")


@dataclass(frozen=True)
class Start:
    """Where the stream starts: a file and position, or (MySQL) a GTID set /
    (MariaDB) a GTID position the replica already has."""

    file: str = ""
    pos: int = 4
    gtids: str | None = None

    def __post_init__(self) -> None:
        if self.gtids is None and not self.file:
            raise ValueError("start from a file and position, or from GTIDs")


@dataclass
class StreamEvent:
    """One event of the stream. ``raw`` is the event's bytes as in the
    source's file; ``in_file`` is False for what the server makes up for the
    stream (the first artificial ROTATE, a FORMAT_DESCRIPTION re-sent with
    log_pos 0, heartbeats, MariaDB's fake GTID_LIST). ``pos`` is its offset in
    ``file``; ``ack`` is set when the source wants a semi-sync ACK for it."""

    event: Event
    raw: bytes
    file: str
    pos: int
    in_file: bool
    ack: bool = False

    @property
    def next_pos(self) -> int:
        return self.pos + len(self.raw)

    @property
    def type_name(self) -> str:
        return self.event.type_name


@dataclass
class Resume:
    """A safe restart point: the first event after the last complete
    transaction, and the GTIDs of every complete transaction so far."""

    file: str
    pos: int
    mysql_gtids: GtidSet = field(default_factory=GtidSet)
    mariadb_gtids: str = ""

    def start(self, use_gtids: bool) -> Start:
        if use_gtids:
            return Start(file=self.file, pos=self.pos,
                         gtids=self.mariadb_gtids or str(self.mysql_gtids))
        return Start(file=self.file, pos=self.pos)


class ReplicaProtocol:
    """One dump session's state. ``flavor`` picks the setup and the dump
    command; ``blocking`` False asks for a non-blocking dump (the server ends
    it with an EOF at the end of its last file)."""

    def __init__(self, flavor: Flavor, start: Start, *, server_id: int,
                 blocking: bool = True, heartbeat: float | None = 30.0,
                 semi_sync: bool = False, verify_checksum: bool = True,
                 host: str = "", user: str = "", port: int = 0,
                 types: Collection[int] | None = None) -> None:
        if not 1 <= server_id <= 0xFFFFFFFF:
            raise ValueError("server_id must be 1 .. 2^32-1")
        self.types = None if types is None else frozenset(types)
        self.flavor = flavor
        self.start = start
        self.server_id = server_id
        self.blocking = blocking
        self.heartbeat = heartbeat
        self.semi_sync = semi_sync
        self.verify = verify_checksum
        self._register = (host, user, port)
        self._reader = PacketReader()
        self.ctx = FormatContext()
        self._fde_seen = False
        self.file = start.file
        self.pos = start.pos
        self._ended = False
        # transaction tracking for resume points
        self._in_txn = False
        self._gtid: str | None = None
        self._opened = False  # a GTID event was seen, its transaction not ended
        self._mariadb_gtid = False
        self._mysql = GtidSetBuilder(GtidSet.parse(start.gtids) if (
            start.gtids is not None and flavor == "mysql") else None)
        self._mariadb = MariadbGtidState.parse(start.gtids) if (
            start.gtids and flavor == "mariadb") else MariadbGtidState()
        self._resume_at = (start.file, start.pos)

    # ---------------------------------------------------------------- requests

    def setup_queries(self) -> list[str]:
        """SQL to run on the connection before the dump."""
        q = []
        if self.flavor == "mysql":
            q += ["SET @source_binlog_checksum = @@global.binlog_checksum",
                  "SET @master_binlog_checksum = @@global.binlog_checksum"]
        else:
            q += ["SET @master_binlog_checksum = @@global.binlog_checksum",
                  "SET @mariadb_slave_capability = 4"]
            if self.start.gtids is not None:
                q += [f"SET @slave_connect_state = '{_quote(self.start.gtids)}'",
                      "SET @slave_gtid_strict_mode = 0", "SET @slave_gtid_ignore_duplicates = 0"]
        if self.heartbeat:
            ns = int(self.heartbeat * 1e9)
            q += [f"SET @master_heartbeat_period = {ns}"]
            if self.flavor == "mysql":
                q += [f"SET @source_heartbeat_period = {ns}"]
        if self.semi_sync:
            q += ["SET @rpl_semi_sync_replica = 1" if self.flavor == "mysql"
                  else "SET @rpl_semi_sync_slave = 1"]
            if self.flavor == "mysql":
                q += ["SET @rpl_semi_sync_slave = 1"]
        return q

    def register_packet(self) -> bytes:
        host, user, port = self._register
        return frame(register_replica(self.server_id, host=host, user=user, port=port), 0)

    def dump_packet(self) -> bytes:
        """The dump command; after it, everything received goes to :meth:`receive_data`."""
        self._reader.reset_sequence()
        flags = 0 if self.blocking else BINLOG_DUMP_NON_BLOCK
        s = self.start
        if self.flavor == "mariadb":
            if self.types is None or T.ANNOTATE_ROWS in self.types:
                flags |= BINLOG_SEND_ANNOTATE_ROWS_EVENT
            if s.gtids is not None:
                return frame(binlog_dump(self.server_id, "", 4, flags), 0)
            return frame(binlog_dump(self.server_id, s.file, s.pos, flags), 0)
        if s.gtids is not None:
            block = GtidSet.parse(s.gtids).encode()
            return frame(binlog_dump_gtid(self.server_id, block, file=s.file,
                                          pos=s.pos if s.file else 4, flags=flags), 0)
        return frame(binlog_dump(self.server_id, s.file, s.pos, flags), 0)

    def ack_packet(self, ev: StreamEvent) -> bytes:
        """The semi-sync ACK for ``ev`` (send it once ``ev`` is safely handed on)."""
        return frame(semisync_ack(ev.file, ev.next_pos), 0)

    # ---------------------------------------------------------------- responses

    def expect_ok(self, data: bytes) -> None:
        """Check the reply to COM_REGISTER_SLAVE (one packet: OK or ERR)."""
        reader = PacketReader()
        reader.feed(data)
        payload = reader.next_payload()
        if payload is None:
            raise ProtocolError("an OK packet expected, found a partial packet")
        if payload[:1] == b"\xff":
            raise _error(payload)
        if payload[:1] != b"\x00":
            raise ProtocolError(f"an OK packet expected, found 0x{payload[0]:02x}")

    def receive_data(self, data: bytes) -> None:
        if not data:
            raise ConnectionClosed("the server closed the connection")
        self._reader.feed(data)

    def next_event(self) -> StreamEvent | _Marker:
        while True:
            if self._ended:
                return END
            if not self.semi_sync:
                raw = self._reader.next_event_bytes()
                if raw is not None and len(raw) > 4:
                    if self.types is not None and raw[4] not in self.types:
                        self._pass_over(raw)
                        continue
                    return self._event(raw, False)
            payload = self._reader.next_payload()
            if payload is None:
                return NEED_DATA
            head = payload[:1]
            if head == b"\xff":
                self._ended = True
                raise _error(payload)
            if head == b"\xfe" and len(payload) < 9:
                self._ended = True
                return END
            if head != b"\x00":
                raise ProtocolError(f"a binlog event packet (00) expected,"
                                    f" found 0x{payload[0]:02x}")
            body = payload[1:]
            ack = False
            if self.semi_sync and _has_semisync_header(body):
                ack = bool(body[1] & SEMISYNC_NEED_ACK)
                body = body[2:]
                if ack:
                    # the source restarts its packet numbering after an event it
                    # wants an ACK for (the ACK comes in as a new command)
                    self._reader.reset_sequence()
            raw = bytes(body)
            if self.types is not None and not ack and raw[4:5] and raw[4] not in self.types:
                self._pass_over(raw)
                continue
            return self._event(raw, ack)

    def _pass_over(self, raw: bytes) -> None:
        """An event the caller did not ask for (``types``): not returned, but
        its CRC is checked and its position kept; control events are still
        decoded, for the resume points."""
        code = raw[4]
        if code in _LIGHT and len(raw) >= MIN_HEADER_LEN and self._pass_over_control(raw, code):
            return
        if code in _CONTROL or not self._fde_seen or len(raw) < MIN_HEADER_LEN \
                or self.ctx.header_len != MIN_HEADER_LEN:
            self._event(raw, False)
            return
        _, _, _, size, log_pos, flags = HEADER_V4_FIXED.unpack_from(raw)
        if size != len(raw) or (self.ctx.crc and self.verify and zlib.crc32(
                memoryview(raw)[:-4]) != int.from_bytes(raw[-4:], "little")):
            self._event(raw, False)  # the full path says what is wrong
            return
        if log_pos and not flags & LOG_EVENT_ARTIFICIAL_F:
            self.pos = log_pos

    def _pass_over_control(self, raw: bytes, code: int) -> bool:
        """The control events a transaction is made of (GTIDs, BEGIN/COMMIT and
        DDL QUERYs, XID), tracked from their bytes without building an event.
        False when the event is not in the common form (the caller decodes it)."""
        ctx = self.ctx
        if not self._fde_seen or ctx.header_len != MIN_HEADER_LEN or ctx.permuted:
            return False
        _, _, server_id, size, log_pos, flags = HEADER_V4_FIXED.unpack_from(raw)
        if size != len(raw) or not log_pos or flags & LOG_EVENT_ARTIFICIAL_F:
            return False
        end = size
        if ctx.crc:
            end -= 4
            if self.verify and zlib.crc32(memoryview(raw)[:end]) != int.from_bytes(
                    raw[end:size], "little"):
                return False
        body = MIN_HEADER_LEN
        if code == T.XID:
            self.pos = log_pos
            self._commit()
            return True
        if code in (T.GTID, T.ANONYMOUS_GTID):
            if end - body < 25:
                return False
            self.pos = log_pos
            gno = int.from_bytes(raw[body + 17:body + 25], "little")
            self._gtid = (None if code == T.ANONYMOUS_GTID else
                          f"{uuid_text(raw[body + 1:body + 17])}:{gno}")
            self._mariadb_gtid, self._in_txn, self._opened = False, False, True
            return True
        if code == T.MARIADB_GTID:
            if end - body < 13:
                return False
            self.pos = log_pos
            seq = int.from_bytes(raw[body:body + 8], "little")
            domain = int.from_bytes(raw[body + 8:body + 12], "little")
            self._gtid, self._mariadb_gtid, self._opened = f"{domain}-{server_id}-{seq}", True, True
            self._in_txn = not raw[body + 12] & 1
            return True
        if code == T.QUERY:
            ph = ctx.post_header_len(code)
            if ph < 13 or end - body < ph:
                return False
            db_len = raw[body + 8]
            vars_len = int.from_bytes(raw[body + 11:body + 13], "little")
            start = body + ph + vars_len + db_len + 1
            if start > end:
                return False
            self.pos = log_pos
            q = raw[start:end].strip().upper()
            if q in (b"BEGIN", b"XA START") or q.startswith(b"XA START"):
                self._in_txn = True
            elif not self._in_txn or q in (b"COMMIT", b"ROLLBACK"):
                self._commit()
            return True
        return False

    # ---------------------------------------------------------------- events

    def _event(self, raw: bytes, ack: bool) -> StreamEvent:
        code = raw[4] if len(raw) > 4 else -1
        if code in ROWS_EVENTS and self._fde_seen:
            fast = self._row_event(raw, code, ack)
            if fast is not None:
                return fast
        log_pos = int.from_bytes(raw[13:17], "little") if len(raw) >= 19 else 0
        flags = int.from_bytes(raw[17:19], "little") if len(raw) >= 19 else 0
        heartbeat = code in (T.HEARTBEAT, T.HEARTBEAT_V2)
        artificial = bool(flags & LOG_EVENT_ARTIFICIAL_F)
        in_file = not heartbeat and not artificial and log_pos != 0
        pos = log_pos - len(raw) if in_file else self.pos
        ctx = self.ctx
        if not self._fde_seen and not ctx.crc and len(raw) >= 23 and code != T.FORMAT_DESCRIPTION \
                and event_crc(raw[:-4], code) == int.from_bytes(raw[-4:], "little"):
            # before the first FORMAT_DESCRIPTION (the artificial ROTATE that
            # opens every dump) the checksum setting is unknown: the server
            # appends a CRC32 when its binlog_checksum is CRC32
            ctx = dataclasses.replace(ctx, checksum_alg=CHECKSUM_CRC32)
        try:
            ev = decode_event(raw, ctx, pos=pos, verify=self.verify,
                              file=self.file or None)
        except BinlogError as exc:
            raise BinlogError(f"{exc.expected} (streamed from the server)", file=exc.file,
                              offset=exc.offset, event_type=exc.event_type) from None
        out = StreamEvent(ev, raw, self.file, pos, in_file, ack)
        if ev.type_code == T.FORMAT_DESCRIPTION:
            self._fde_seen = True
        self.ctx = context_after(ev, self.ctx)
        if ev.type_code == T.ROTATE:
            self.file = bytes(ev.body.next_file).decode("utf-8", "replace")
            self.pos = ev.body.position
            if in_file or not self._in_txn:
                self._ended_txn_at(self.file, self.pos)
            return out
        if in_file:
            self.pos = log_pos
            self._track(ev)
        return out

    def _row_event(self, raw: bytes, code: int, ack: bool) -> StreamEvent | None:
        """A row event of the file, the common case, framed without the generic
        decoder: a row event changes no context and ends no transaction. None
        when anything is unusual (the generic path then decodes or raises)."""
        ctx = self.ctx
        if ctx.permuted or ctx.header_len != MIN_HEADER_LEN:
            return None
        ts, _, server_id, size, log_pos, flags = HEADER_V4_FIXED.unpack_from(raw)
        if size != len(raw) or not log_pos or flags & LOG_EVENT_ARTIFICIAL_F:
            return None
        end, checksum = size, None
        if ctx.crc:
            end -= 4
            checksum = int.from_bytes(raw[end:], "little")
            if self.verify and zlib.crc32(memoryview(raw)[:end]) != checksum:
                return None
        body = parse_rows_common(raw[MIN_HEADER_LEN:end], ctx.post_header_len(code),
                                 code in TWO_BITMAPS)
        if body is None:
            return None
        pos = log_pos - size
        ev = Event(type_code=code, timestamp=ts, server_id=server_id, body=body,
                   log_pos=log_pos, flags=flags, checksum=checksum, pos=pos, size=size, ctx=ctx)
        self.pos = log_pos
        return StreamEvent(ev, raw, self.file, pos, True, ack)

    def _track(self, ev: Event) -> None:
        code = ev.type_code
        if code in (T.GTID, T.GTID_TAGGED, T.ANONYMOUS_GTID):
            self._gtid, self._mariadb_gtid, self._in_txn = gtid_text(ev), False, False
            self._opened = True  # an ANONYMOUS_GTID opens a transaction too
            return
        if code == T.MARIADB_GTID:
            self._gtid, self._mariadb_gtid, self._opened = gtid_text(ev), True, True
            self._in_txn = not ev.body.flags2 & 1  # not standalone: BEGIN is implied
            return
        if code in (T.QUERY, T.QUERY_COMPRESSED):
            q = bytes(ev.body.query).strip().upper()
            if q in (b"BEGIN", b"XA START") or q.startswith(b"XA START"):
                self._in_txn = True
                return
            if self._in_txn and q not in (b"COMMIT", b"ROLLBACK"):
                return  # XA END included: the XA_PREPARE after it ends the transaction
            self._commit()
            return
        if code in (T.XID, T.TRANSACTION_PAYLOAD, T.XA_PREPARE):
            self._commit()
            return
        if not self.in_transaction and code not in _IN_GROUP:
            self._ended_txn_at(self.file, self.pos)  # FDE, PREVIOUS_GTIDS, STOP ...

    def _commit(self) -> None:
        if self._gtid is not None:
            if self._mariadb_gtid:
                self._mariadb.add(self._gtid)
            else:
                self._mysql.add(self._gtid)
        self._gtid, self._in_txn, self._mariadb_gtid = None, False, False
        self._opened = False
        self._ended_txn_at(self.file, self.pos)

    def _ended_txn_at(self, file: str, pos: int) -> None:
        self._resume_at = (file, pos)

    @property
    def resume(self) -> Resume:
        """Built when asked: the GTIDs only change where a transaction ends.
        MariaDB's are a GTID position (the last GTID of each domain), what
        ``@slave_connect_state`` takes."""
        file, pos = self._resume_at
        return Resume(file, pos, self._mysql.build() if self.flavor == "mysql" else GtidSet(),
                      str(self._mariadb.pos))

    @property
    def resume_point(self) -> tuple[str, int]:
        """``(file, pos)`` of :attr:`resume`, without building the GTID set."""
        return self._resume_at

    @property
    def in_transaction(self) -> bool:
        return self._in_txn or self._opened or self._gtid is not None

    def inherit_gtids(self, previous: ReplicaProtocol) -> None:
        """Continue ``previous``'s GTID tracking (a reconnect by file and
        position): :attr:`resume` then holds the GTIDs of both sessions."""
        if previous.flavor == self.flavor:
            self._mysql.update(previous._mysql.build())
            for g in previous._mariadb:
                self._mariadb.add(g)


def _event_size(data: bytes | memoryview, at: int) -> int:
    return int.from_bytes(data[at + 9:at + 13], "little")


def _has_semisync_header(body: bytes | memoryview) -> bool:
    """Does ``body`` start with the semi-sync header (EF, flag) rather than an
    event? Told apart by the event's own size field, so a source that does not
    add headers (no semi-sync plugin) never has an event's first byte taken
    for one."""
    if len(body) < 2 + 19 or body[0] != SEMISYNC_MAGIC or body[1] > 1:
        return False
    return _event_size(body, 2) == len(body) - 2 and _event_size(body, 0) != len(body)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "''")


def _error(payload: bytes) -> StreamError:
    code = int.from_bytes(payload[1:3], "little")
    rest = payload[3:]
    state = ""
    if rest[:1] == b"#":
        state, rest = rest[1:6].decode("ascii", "replace"), rest[6:]
    return StreamError(code, rest.decode("utf-8", "replace"), state)
