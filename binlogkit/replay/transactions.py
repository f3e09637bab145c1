"""A binlog's events grouped into transactions, with their rows decoded.

Boundaries, as the servers write them:

- MySQL: a GTID / ANONYMOUS_GTID / GTID_TAGGED event, then either
  ``QUERY BEGIN`` (or ``XA START``) ... ``XID`` / ``QUERY COMMIT`` /
  ``QUERY ROLLBACK`` / ``XA_PREPARE``, or one statement on its own (DDL,
  ``XA COMMIT``, ``XA ROLLBACK``). A TRANSACTION_PAYLOAD carries a whole
  transaction: its inner events are read and follow it in
  :attr:`BinlogTxn.events`.
- MariaDB: a GTID event implies BEGIN (no ``QUERY BEGIN`` follows). With the
  STANDALONE flag the transaction is its first statement; otherwise it ends
  at ``XID``, ``QUERY COMMIT`` / ``ROLLBACK`` or ``XA_PREPARE``.
- Without GTIDs (old servers, ``gtid_mode=OFF`` before MySQL 5.7):
  ``QUERY BEGIN`` ... commit as above; a statement outside BEGIN is a
  transaction on its own (with the INTVAR / RAND / USER_VAR events before it).

Logical clocks: MySQL GTID events carry ``last_committed`` and
``sequence_number`` (per binlog file). MariaDB GTID events carry a
``commit_id`` when the transaction was group-committed with others (flag
GROUP_COMMIT_ID): consecutive transactions with the same ``commit_id``
committed together on the primary, so they may run in parallel on a replica.
:mod:`binlogkit.replay.schedule` uses that as MariaDB's COMMIT_ORDER.

A transaction that a new GTID event or the end of the input interrupts (a
relay log after a receiver restart, a file still being written) is yielded
with ``complete=False``. An event that cannot be decoded raises
:class:`~binlogkit.errors.BinlogError`: nothing is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from binlogkit.codec.columns import Column, Schemas
from binlogkit.codec.compression import CompressionError, mariadb_decompress
from binlogkit.codec.describe import TableMaps, gtid_text
from binlogkit.codec.event import ENCRYPTED, Event
from binlogkit.codec.events.gtid import FL_GROUP_COMMIT_ID
from binlogkit.codec.inner import inner_events
from binlogkit.codec.rowcodec import decode_rows
from binlogkit.codec.rowimage import RowFramingError
from binlogkit.codec.types import DELETE_ROWS, ROWS_EVENTS, UPDATE_ROWS, EventType
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader, files_from_index
from binlogkit.replay.model import Image, Kind

T = EventType
Source = str | os.PathLike[str] | BinaryIO | bytes

GTID_TYPES = frozenset({T.GTID, T.ANONYMOUS_GTID, T.GTID_TAGGED, T.MARIADB_GTID})
# Events that belong to no transaction: file framing, GTID bookkeeping.
_OUTSIDE = frozenset({
    T.FORMAT_DESCRIPTION, T.START_V3, T.ROTATE, T.STOP, T.PREVIOUS_GTIDS, T.GTID_LIST,
    T.BINLOG_CHECKPOINT, T.HEARTBEAT, T.HEARTBEAT_V2, T.START_ENCRYPTION, T.INCIDENT,
})
_QUERY_TYPES = frozenset({T.QUERY, T.QUERY_COMPRESSED, T.EXECUTE_LOAD_QUERY})
_MARIADB_STANDALONE = 1
_MARIADB_DDL = 32
STMT_END_F = 1

# First keywords of statements that are not DDL (DML, transaction control,
# session statements). Anything else in a QUERY event is taken as DDL.
_NOT_DDL = frozenset({
    "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD", "SELECT", "DO", "SET", "CALL",
    "BEGIN", "COMMIT", "ROLLBACK", "XA", "SAVEPOINT", "RELEASE", "START", "WITH",
    "HANDLER", "VALUES", "TABLE", "USE",
})
# Statements that only delimit a row-based transaction (no data of their own).
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "XA START", "XA BEGIN", "XA END", "SAVEPOINT",
            "RELEASE SAVEPOINT")


@dataclass(slots=True)
class TxnRow:
    """One row a row event changed. ``before``/``after`` are keyed by column
    name, or ``@N`` (1-based) when the table map does not name columns;
    ``primary_key`` names the key columns the table map flags (empty when it
    says nothing: ``binlog_row_metadata=MINIMAL`` without a caller schema)."""

    schema: str
    table: str
    kind: Kind
    before: Image | None
    after: Image | None
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    pos: int  # of the row event (inside the payload for inner events)


@dataclass(slots=True)
class Statement:
    """A QUERY / QUERY_COMPRESSED / EXECUTE_LOAD_QUERY text and its default database."""

    sql: str
    db: str | None
    pos: int


@dataclass
class BinlogTxn:
    """One transaction of a binlog.

    ``gtid``: MySQL ``uuid:n`` (``uuid:tag:n`` when tagged), MariaDB
    ``domain-server-seq``, None for anonymous ones. ``last_committed`` /
    ``sequence_number``: MySQL's logical clock (None when the server wrote
    none); ``commit_id``: MariaDB's group commit id (None when not group
    committed). ``start`` / ``end``: byte offsets of the first event and just
    past the last top-level event of ``file``. ``ddl``: it holds a DDL
    statement (or MariaDB flagged it DDL). ``statements``: QUERY texts other
    than BEGIN / COMMIT. ``rows``: row changes, in order."""

    gtid: str | None = None
    last_committed: int | None = None
    sequence_number: int | None = None
    commit_id: int | None = None
    flavor: str = "mysql"
    events: list[Event] = field(default_factory=list)
    rows: list[TxnRow] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    ddl: bool = False
    start: int = 0
    end: int = 0
    file: str | None = None
    file_index: int = 0
    complete: bool = True

    @property
    def row_based(self) -> bool:
        """Only row changes (and statements that merely delimit them)."""
        return bool(self.rows) and not self.ddl and all(
            _is_control(s.sql) for s in self.statements)

    @property
    def where(self) -> str:
        """``file at byte N`` for messages."""
        return f"{self.file or '<bytes>'} at byte {self.start}"

    def tables(self) -> set[tuple[str, str]]:
        return {(r.schema, r.table) for r in self.rows}


def _is_control(sql: str) -> bool:
    head = " ".join(sql[:40].upper().split())
    return head.startswith(_CONTROL)


def first_keyword(sql: str) -> str:
    s = sql.lstrip()
    while s.startswith("/*") and not s.startswith("/*!"):
        end = s.find("*/")
        if end < 0:
            return ""
        s = s[end + 2 :].lstrip()
    if s.startswith("/*!"):  # versioned comment: /*!50001 CREATE ...
        s = s[3:].lstrip("0123456789 ")
    word = s.split(None, 1)[0] if s else ""
    return word.rstrip(";(").upper()


def is_ddl(sql: str) -> bool:
    kw = first_keyword(sql)
    return bool(kw) and kw not in _NOT_DDL


def _text(data: Any) -> str:
    return bytes(data).decode("utf-8", "replace")


class _Grouper:
    """The boundary state machine over one stream of (top-level and inner) events."""

    def __init__(self, schemas: Schemas | None, verify: bool) -> None:
        self.maps = TableMaps(schemas)
        self.verify = verify
        self.txn: BinlogTxn | None = None
        self.in_begin = False  # inside BEGIN ... COMMIT (MariaDB GTID: non-standalone)
        self.standalone = False  # MariaDB STANDALONE: ends at its statement
        self.by_gtid = False  # opened by a GTID event
        self.file: str | None = None
        self.file_index = 0
        self.top_end = 0  # next_pos of the last top-level event seen

    def _open(self, ev: Event, flavor: str = "mysql") -> BinlogTxn:
        self.txn = BinlogTxn(start=ev.pos, end=ev.next_pos, file=self.file,
                             file_index=self.file_index, flavor=flavor)
        self.in_begin = False
        self.standalone = False
        self.by_gtid = ev.type_code in GTID_TYPES
        return self.txn

    def _close(self) -> BinlogTxn | None:
        txn, self.txn = self.txn, None
        self.in_begin = self.standalone = False
        if txn is not None:
            txn.end = self.top_end
        return txn

    def flush(self) -> BinlogTxn | None:
        """End of input: an open transaction is incomplete."""
        if self.txn is not None and self.txn.events:
            self.txn.complete = False
            return self._close()
        self.txn = None
        return None

    def feed(self, ev: Event) -> Iterator[BinlogTxn]:
        if ev.type_code == ENCRYPTED:
            raise BinlogError("encrypted event: cannot group transactions", file=self.file,
                              offset=ev.pos, event_type=ev.type_name)
        code = ev.type_code
        if code == T.TABLE_MAP:
            self.maps.see(ev)
        if code in _OUTSIDE:
            return
        if not ev.inner:
            self.top_end = ev.next_pos
        if code in GTID_TYPES:
            if self.txn is not None:
                self.txn.complete = False
                out = self._close()
                if out is not None:
                    out.end = ev.pos
                    yield out
            self._gtid(ev)
            return
        txn = self.txn
        if txn is None:
            txn = self._open(ev)
        txn.events.append(ev)
        if code == T.TRANSACTION_PAYLOAD:
            for inner in inner_events(ev, verify=self.verify, file=self.file):
                yield from self.feed(inner)
            return
        if code in ROWS_EVENTS:
            self._rows(ev, txn)
            if not self.in_begin and not self.by_gtid and ev.body.flags & STMT_END_F:
                out = self._close()  # old servers: rows outside BEGIN, ended by STMT_END
                if out is not None:
                    yield out
            return
        if code in _QUERY_TYPES:
            sql = self._query(ev)
            word = " ".join(sql[:24].upper().split())
            if word == "BEGIN" or word.startswith(("XA START", "XA BEGIN")):
                if word != "BEGIN":
                    txn.statements.append(Statement(sql, self._db(ev), ev.pos))
                self.in_begin = True
                self.standalone = False
                return
            ends = word.startswith(("COMMIT", "ROLLBACK")) and not word.startswith(
                "ROLLBACK TO") and self.in_begin
            if word != "COMMIT":
                txn.statements.append(Statement(sql, self._db(ev), ev.pos))
            if is_ddl(sql):
                txn.ddl = True
            if ends or not self.in_begin:
                out = self._close()
                if out is not None:
                    yield out
            return
        if code in (T.XID, T.XA_PREPARE):
            out = self._close()
            if out is not None:
                yield out

    def _gtid(self, ev: Event) -> None:
        b = ev.body
        flavor = "mariadb" if ev.type_code == T.MARIADB_GTID else "mysql"
        txn = self._open(ev, flavor)
        txn.events.append(ev)
        txn.gtid = gtid_text(ev)
        if flavor == "mariadb":
            self.standalone = bool(b.flags2 & _MARIADB_STANDALONE)
            self.in_begin = not self.standalone
            if b.flags2 & FL_GROUP_COMMIT_ID:
                txn.commit_id = b.commit_id
            if b.flags2 & _MARIADB_DDL:
                txn.ddl = True
        else:
            lc, sn = b.get("last_committed"), b.get("sequence_number")
            if lc is not None and sn is not None and (ev.type_code == T.GTID_TAGGED
                                                      or b.get("lt_type") == 2):
                txn.last_committed, txn.sequence_number = lc, sn

    def _db(self, ev: Event) -> str | None:
        db = ev.body.get("db")
        return _text(db) if db else None

    def _query(self, ev: Event) -> str:
        raw = ev.body.query
        if ev.type_code == T.QUERY_COMPRESSED:
            try:
                raw = mariadb_decompress(bytes(raw))
            except CompressionError as exc:
                raise BinlogError(f"cannot decompress query: {exc}", file=self.file,
                                  offset=ev.pos, event_type=ev.type_name) from None
        return _text(raw)

    def _rows(self, ev: Event, txn: BinlogTxn) -> None:
        tid = ev.body.table_id
        try:
            codec = self.maps.codec(tid)
            if codec is None:
                raise RowFramingError(f"a TABLE_MAP for table id {tid} before its rows")
            rows = decode_rows(ev.type_code, ev.body, codec)
        except (RowFramingError, CompressionError) as exc:
            raise BinlogError(str(exc), file=self.file, offset=ev.pos,
                              event_type=ev.type_name) from None
        schema, table = self.maps.name(tid)
        cols = codec.columns
        pk = tuple(c.key for c in cols if c.primary_key)
        kind: Kind = ("update" if ev.type_code in UPDATE_ROWS else
                      "delete" if ev.type_code in DELETE_ROWS else "insert")
        for r in rows:
            txn.rows.append(TxnRow(schema or "", table or "", kind, r.before, r.after,
                                   cols, pk, ev.pos))


def _paths(source: Any) -> list[Source] | None:
    if isinstance(source, str | os.PathLike) and os.fspath(source).endswith(".index"):
        return list(files_from_index(source))
    if isinstance(source, list | tuple):
        out: list[Source] = []
        for p in source:
            if isinstance(p, str | os.PathLike) and os.fspath(p).endswith(".index"):
                out.extend(files_from_index(p))
            else:
                out.append(p)
        return out
    return None


def read_transactions(
    source: Source | Sequence[str | os.PathLike[str]],
    *,
    schemas: Schemas | None = None,
    verify_checksum: bool = True,
) -> Iterator[BinlogTxn]:
    """The transactions of a binlog file (path, open file or bytes), or of
    several files in order (a list; ``.index`` files expand to what they
    list), in binlog order. ``schemas`` completes column names and primary
    keys the table maps do not carry."""
    paths = _paths(source)
    sources: Iterable[Source] = paths if paths is not None else [source]  # type: ignore[list-item]
    grouper = _Grouper(schemas, verify_checksum)
    for i, src in enumerate(sources):
        reader = BinlogReader(src, verify_checksum=verify_checksum)
        grouper.file = reader.name
        grouper.file_index = i
        for ev in reader:
            yield from grouper.feed(ev)
        # a transaction never spans files: what is open at a file's end is cut short
        last = grouper.flush()
        if last is not None:
            yield last
