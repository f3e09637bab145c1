"""The SQL thread: apply a binlog's transactions to a target.

Statement events run with the session context the binlog gives them (the
QUERY event's database, timestamp, sql_mode and charset, and the INTVAR,
RAND and USER_VAR events before it); row events are applied as exact-row
changes (found by primary key, or by the whole before image when the table
has none). Every transaction is applied whole or not at all, and the GTIDs
of applied transactions are kept (:attr:`Applier.mysql_executed`,
:attr:`Applier.mariadb_executed`); a transaction whose GTID is already there
is skipped, as a replica with GTID auto-positioning does.

Targets: :class:`EngineTarget` (the embedded engine) and
:class:`~binlogkit.replay.server_target.ServerTarget` (a real server, or
``--dry-run`` text). Not handled: XA transactions, LOAD DATA, and partial
JSON updates whose document the before image does not hold; they raise
:class:`ReplicaError` rather than being skipped.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from binlogkit.codec.charsets import charset_name, decode_text
from binlogkit.codec.columns import Column, Schemas
from binlogkit.codec.compression import CompressionError
from binlogkit.codec.describe import TableMaps, gtid_text
from binlogkit.codec.event import Event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.jsonb import Json, json_text
from binlogkit.codec.rowcodec import decode_rows
from binlogkit.codec.rowimage import RowFramingError
from binlogkit.codec.temporal import decimal_decoder
from binlogkit.codec.types import DELETE_ROWS, ROWS_EVENTS, UPDATE_ROWS, WRITE_ROWS, EventType
from binlogkit.errors import BinlogError
from binlogkit.gtid import GtidSet, GtidSetBuilder, MariadbGtidState
from binlogkit.io.reader import BinlogReader
from binlogkit.replay.model import Context, Image, Kind
from binlogkit.replay.sql import ReplayError

T = EventType

# INTVAR subtypes and USER_VAR value types (sql/log_event.h, Item_result)
INTVAR_LAST_INSERT_ID = 1
INTVAR_INSERT_ID = 2
_STRING, _REAL, _INT, _DECIMAL = 0, 1, 2, 4
# QUERY status variables this module reads
_SQL_MODE, _CHARSET, _MICROSECONDS, _MARIADB_HRNOW = 1, 4, 13, 128
_MARIADB_FL_STANDALONE = 1
_IGNORED = {T.FORMAT_DESCRIPTION, T.PREVIOUS_GTIDS, T.GTID_LIST, T.BINLOG_CHECKPOINT,
            T.ROTATE, T.STOP, T.ANNOTATE_ROWS, T.ROWS_QUERY, T.HEARTBEAT, T.HEARTBEAT_V2,
            T.START_V3, T.INCIDENT, T.VIEW_CHANGE, T.TRANSACTION_CONTEXT, T.IGNORABLE}


class ReplicaError(ReplayError):
    """The SQL thread stopped: a transaction could not be applied (it was
    rolled back); names the file, byte position and GTID."""

    def __init__(self, message: str, *, gtid: str | None = None, pos: int | None = None,
                 file: str | None = None) -> None:
        where = ", ".join(x for x in (
            file, f"at {pos}" if pos is not None else None,
            f"transaction {gtid}" if gtid else None) if x)
        super().__init__(f"{where}: {message}" if where else message)
        self.gtid, self.pos, self.file = gtid, pos, file


class Target(Protocol):
    """Where transactions go. ``begin`` opens a transaction, ``commit`` ends it;
    ``explicit=False`` is a statement logged outside BEGIN (DDL, or DML of a
    non-transactional engine): no BEGIN/COMMIT around it, only its GTID.
    ``begin`` returns False when the target already has that GTID: the
    transaction is then skipped."""

    def begin(self, gtid: str | None, explicit: bool = True) -> bool: ...

    def statement(self, sql: str, context: Context) -> None: ...

    def row(self, schema: str, table: str, kind: Kind, before: Image | None,
            after: Image | None, columns: tuple[Column, ...]) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


def _user_var(body: Any, flavor: str) -> tuple[str, Any]:
    """A USER_VAR event's name and value (a string in a charset Python does
    not know exactly stays bytes)."""
    name = bytes(body.name).decode("utf-8", "replace")
    if body.is_null:
        return name, None
    raw = bytes(body.value)
    if body.value_type == _INT:
        unsigned = bool(body.flags and body.flags & 1)
        return name, int.from_bytes(raw[:8], "little", signed=not unsigned)
    if body.value_type == _REAL:
        return name, struct.unpack("<d", raw[:8])[0]
    if body.value_type == _DECIMAL:
        prec, scale = raw[0], raw[1]
        return name, decimal_decoder(prec, scale)(raw[2:])
    return name, decode_text(raw, charset_name(body.charset, flavor))


@dataclass
class ApplyStats:
    """What a run did."""

    transactions: int = 0
    skipped: int = 0
    statements: int = 0
    row_changes: int = 0


@dataclass
class _Pending:
    """Statement context gathered from the events before a QUERY."""

    insert_id: int | None = None
    last_insert_id: int | None = None
    rand_seed: tuple[int, int] | None = None
    user_vars: dict[str, Any] = field(default_factory=dict)


class Applier:
    """Applies events, in binlog order, to ``target``.

    ``schemas`` names the columns of tables whose TABLE_MAP has no names
    (binlog_row_metadata=MINIMAL); without names, row images use ``@1``,
    ``@2`` ... and the target maps them by position.
    """

    def __init__(self, target: Target, *, schemas: Schemas | None = None,
                 skip_applied: bool = True) -> None:
        self.target = target
        self.maps = TableMaps(schemas)
        self.skip_applied = skip_applied
        self._mysql = GtidSetBuilder()
        self.mariadb_executed = MariadbGtidState()
        self.stats = ApplyStats()
        self._gtid: str | None = None
        self._mariadb_gtid = False
        self._in_txn = False
        self._skipping = False
        self._pending = _Pending()
        self.file: str | None = None
        self.flavor = "mysql"  # the binlog's, from its FORMAT_DESCRIPTION
        self._pos: int | None = None

    @property
    def mysql_executed(self) -> GtidSet:
        return self._mysql.build()

    # ------------------------------------------------------------------ input

    def apply_file(self, source: str | os.PathLike[str] | BinaryIO | bytes,
                   **reader_options: Any) -> ApplyStats:
        reader = BinlogReader(source, **reader_options)
        self.file = reader.name
        self.apply_events(reader)
        return self.stats

    def apply_events(self, events: Iterable[Event]) -> None:
        for ev in self._expanded(events):
            self._pos = ev.pos
            try:
                self._event(ev)
            except ReplicaError:
                self.abort()
                raise
            except BinlogError:
                self.abort()
                raise
            except Exception as exc:  # a target's own error: name the transaction
                self.abort()
                raise ReplicaError(f"{type(exc).__name__}: {exc}", gtid=self._gtid, pos=ev.pos,
                                 file=self.file) from exc

    def finish(self) -> None:
        """End of input: a transaction still open was cut short; roll it back."""
        if self._in_txn:
            self.abort()
            raise ReplicaError("the binlog ends inside a transaction (rolled back)",
                             gtid=self._gtid, pos=self._pos, file=self.file)

    def _expanded(self, events: Iterable[Event]) -> Iterator[Event]:
        for ev in events:
            if ev.type_code == T.TRANSACTION_PAYLOAD:
                yield from inner_events(ev, file=self.file)
            else:
                yield ev

    # ------------------------------------------------------------------ events

    def _event(self, ev: Event) -> None:  # noqa: C901, PLR0912
        code = ev.type_code
        if code == T.FORMAT_DESCRIPTION:
            self.flavor = ("mariadb" if "mariadb" in str(ev.body.server_version).lower()
                           else "mysql")
            return
        if code in _IGNORED:
            return
        if code in (T.GTID, T.GTID_TAGGED, T.ANONYMOUS_GTID, T.MARIADB_GTID):
            self._gtid = gtid_text(ev)
            self._skipping = self.skip_applied and self._applied(self._gtid)
            self._mariadb_gtid = code == T.MARIADB_GTID
            if code == T.MARIADB_GTID and not ev.body.flags2 & _MARIADB_FL_STANDALONE:
                self._begin()  # MariaDB's GTID event stands for BEGIN
            return
        if code == T.INTVAR:
            if ev.body.subtype == INTVAR_INSERT_ID:
                self._pending.insert_id = ev.body.value
            else:
                self._pending.last_insert_id = ev.body.value
            return
        if code == T.RAND:
            self._pending.rand_seed = (ev.body.seed1, ev.body.seed2)
            return
        if code == T.USER_VAR:
            name, value = _user_var(ev.body, self.flavor)
            self._pending.user_vars[name] = value
            return
        if code in (T.QUERY, T.QUERY_COMPRESSED):
            self._query(ev)
            return
        if code == T.TABLE_MAP:
            self.maps.see(ev)
            return
        if code in ROWS_EVENTS:
            self._rows(ev)
            return
        if code == T.XID:
            self._commit()
            return
        if code == T.XA_PREPARE:
            raise ReplicaError("XA transactions are not supported", gtid=self._gtid,
                             pos=ev.pos, file=self.file)
        if code in (T.BEGIN_LOAD_QUERY, T.EXECUTE_LOAD_QUERY, T.APPEND_BLOCK, T.LOAD,
                    T.NEW_LOAD, T.CREATE_FILE, T.EXEC_LOAD, T.DELETE_FILE):
            raise ReplicaError("LOAD DATA events are not supported", gtid=self._gtid,
                             pos=ev.pos, file=self.file)

    def _applied(self, gtid: str | None) -> bool:
        if gtid is None:
            return False
        if ":" not in gtid:  # MariaDB domain-server-seq: applied up to the domain's position
            domain, _, seq = (int(x) for x in gtid.split("-"))
            have = self.mariadb_executed.pos.get(domain)
            return have is not None and have.seq >= seq
        return gtid in self._mysql

    def _query(self, ev: Event) -> None:
        sql = bytes(ev.body.query).decode("utf-8", "replace")
        word = sql.strip().rstrip(";").strip().upper()
        if word in ("BEGIN", "START TRANSACTION", "XA START"):
            if not self._in_txn:
                self._begin()
            return
        if word == "COMMIT":
            self._commit()
            return
        if word == "ROLLBACK":
            self.abort()
            self._done(applied=False)
            return
        ctx = self._context(ev)
        alone = not self._in_txn
        if alone:
            self._begin(explicit=False)
        if not self._skipping:
            self.target.statement(sql, ctx)
            self.stats.statements += 1
        if alone:
            self._commit()

    def _context(self, ev: Event) -> Context:
        b, p = ev.body, self._pending
        self._pending = _Pending()
        ctx = Context(db=bytes(b.db).decode("utf-8", "replace") or None,
                      timestamp=ev.timestamp, insert_id=p.insert_id,
                      last_insert_id=p.last_insert_id, rand_seed=p.rand_seed,
                      user_vars=p.user_vars, thread_id=b.thread_id)
        for var in (b.status_vars.vars if b.status_vars is not None else ()):
            if var.code == _SQL_MODE:
                ctx.sql_mode = var.value
            elif var.code == _CHARSET:
                ctx.charset = (var.value.client, var.value.connection, var.value.server)
            elif var.code in (_MICROSECONDS, _MARIADB_HRNOW):
                ctx.usec = var.value
        return ctx

    def _rows(self, ev: Event) -> None:
        tid = ev.body.table_id
        codec = self.maps.codec(tid)
        if codec is None:
            raise ReplicaError(f"rows for table id {tid} before its TABLE_MAP", gtid=self._gtid,
                             pos=ev.pos, file=self.file)
        try:
            rows = decode_rows(ev.type_code, ev.body, codec)
        except (RowFramingError, CompressionError) as exc:
            raise BinlogError(str(exc), file=self.file, offset=ev.pos,
                              event_type=ev.type_name) from None
        schema, table = self.maps.name(tid)
        kind: Kind = ("insert" if ev.type_code in WRITE_ROWS else
                      "update" if ev.type_code in UPDATE_ROWS else "delete")
        assert ev.type_code in WRITE_ROWS | UPDATE_ROWS | DELETE_ROWS
        alone = not self._in_txn  # row events outside BEGIN (a relay of a NDB epoch ...)
        if alone:
            self._begin()
        if not self._skipping:
            for row in rows:
                self.target.row(schema or "", table or "", kind,
                                _plain(row.before), _plain(row.after), codec.columns)
                self.stats.row_changes += 1
        if alone and ev.body.flags & 1:  # STMT_END_F
            self._commit()

    # ------------------------------------------------------------ transactions

    def _begin(self, explicit: bool = True) -> None:
        self._in_txn = True
        if not self._skipping and not self.target.begin(self._gtid, explicit):
            self._skipping = True

    def _commit(self) -> None:
        if not self._in_txn:
            self._done(applied=not self._skipping)
            return
        if not self._skipping:
            self.target.commit()
        self._in_txn = False
        self._done(applied=not self._skipping)

    def abort(self) -> None:
        if self._in_txn and not self._skipping:
            self.target.rollback()
        self._in_txn = False

    def _done(self, *, applied: bool) -> None:
        gtid = self._gtid
        if applied:
            self.stats.transactions += 1
        else:
            self.stats.skipped += 1
        if gtid is not None and applied:
            if self._mariadb_gtid:
                self.mariadb_executed = self.mariadb_executed.add(gtid)
            else:
                self._mysql.add(gtid)
        self._gtid = None
        self._skipping = False
        self._mariadb_gtid = False
        self._pending = _Pending()


def _plain(image: dict[str, Any] | None) -> Image | None:
    """Row values as the replay layer holds them (MySQL JSON as its text)."""
    if image is None:
        return None
    return {k: json_text(v.value) if isinstance(v, Json) else v for k, v in image.items()}


# ------------------------------------------------------------------- engine


class EngineTarget:
    """Applies to the embedded engine through one session. Row images keyed
    ``@1``, ``@2`` ... are matched to the engine table's columns by position.

    The engine is not thread-safe: parallel workers each get a target with
    ``shared=True``, which runs every call under one lock per engine (so
    transactions interleave statement by statement, as a server's would)."""

    _locks: dict[int, threading.Lock] = {}

    def __init__(self, engine: Any, *, shared: bool = False) -> None:
        self.engine = engine
        self.session = engine.session()
        self.explicit = True
        self.lock = (self._locks.setdefault(id(engine), threading.Lock()) if shared
                     else contextlib.nullcontext())

    def begin(self, gtid: str | None, explicit: bool = True) -> bool:
        self.explicit = explicit
        if explicit:
            with self.lock:
                self.session.execute("BEGIN")
        return True

    def statement(self, sql: str, context: Context) -> None:
        with self.lock:
            self.session.execute(sql, context)

    def row(self, schema: str, table: str, kind: Kind, before: Image | None,
            after: Image | None, columns: tuple[Column, ...] = ()) -> None:
        from binlogkit.replay.model import RowChange  # noqa: PLC0415

        with self.lock:
            info = self.engine.table(schema, table)
            names = [c.name for c in info.columns]
            self.session.apply(RowChange(info, kind, _named(before, names),
                                         _named(after, names)))

    def commit(self) -> None:
        if self.explicit:
            with self.lock:
                self.session.execute("COMMIT")

    def rollback(self) -> None:
        with self.lock:
            if self.session.in_transaction:
                self.session.execute("ROLLBACK")


def _named(image: Image | None, names: list[str]) -> Image | None:
    if image is None or not any(k.startswith("@") for k in image):
        return image
    return {(names[int(k[1:]) - 1] if k.startswith("@") else k): v for k, v in image.items()}
