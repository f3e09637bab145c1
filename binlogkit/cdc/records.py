"""Binlog events to change records, one :class:`~binlogkit.cdc.model.Txn` per
committed transaction.

:class:`TxnBuilder` is fed the events of a stream (``StreamEvent`` from
:mod:`binlogkit.protocol`) or of files (``Event`` from
:class:`~binlogkit.io.reader.BinlogReader`, with the file's name) in order,
and gives back each transaction once its commit event is seen.

Transaction boundaries:

- MySQL: GTID / GTID_TAGGED / ANONYMOUS_GTID, then ``BEGIN`` .. XID or a
  ``COMMIT`` / ``ROLLBACK`` query; or the GTID and one statement alone (DDL).
  A TRANSACTION_PAYLOAD holds BEGIN .. XID: its inner events are read, and
  its rows take the payload's offset as ``pos``. ``CREATE TABLE ... START
  TRANSACTION`` (CREATE TABLE ... SELECT logged atomically) opens a
  transaction that its XID ends.
- MariaDB: MARIADB_GTID implies BEGIN unless its standalone flag is set; the
  transaction ends at XID, a ``COMMIT`` / ``ROLLBACK`` query or XA_PREPARE.
- Without GTID events (old servers): ``BEGIN`` opens, a statement outside
  BEGIN is a transaction of its own.
- Events that begin inside a transaction (a file read from the middle):
  that transaction's rows are not delivered (``orphan_rows`` counts them),
  nor is it: never half a transaction.

XA: the rows of an XA transaction are in the binlog when it is *prepared*,
and the binlog moves on, so they are delivered then: the transaction ending
at XA_PREPARE is a Txn with its changes and ``xa = ("prepare", xid)`` (or
``("commit-one-phase", xid)`` for XA COMMIT ... ONE PHASE, committed at once).
The later ``XA COMMIT`` / ``XA ROLLBACK`` is a Txn of its own, without
changes, with ``xa = ("commit", xid)`` / ``("rollback", xid)``: a consumer that
must not apply prepared work buffers ``prepare`` transactions by xid until
then. ``xid`` is written as the server writes it in the binlog,
``X'gtrid',X'bqual',formatID``.

``ROLLBACK`` ending a transaction means the server logged changes to
non-transactional tables that stayed: the Txn is delivered like a commit.

Statements that may change the schema (CREATE, ALTER, DROP, RENAME,
TRUNCATE) are listed in ``Txn.ddl`` as ``(default database, SQL)`` for the
schema history; a DDL statement alone makes a Txn without changes.
Statement-format DML makes no changes (its Txn is empty).

Positions: ``Txn.end`` is the position after the commit event (or the
stream protocol's resume point when given) and the GTIDs executed so far,
tracked here: the ``gtids`` the builder starts from (a checkpoint's), the
PREVIOUS_GTIDS / GTID_LIST of the files read, and every GTID seen.
``Txn.id`` is the GTID, else ``file:pos`` of the transaction's first event.
``ts_ms`` is the commit time: MySQL's GTID events carry it in
microseconds (the original commit timestamp, else the immediate one), else
it is the commit event's header timestamp (seconds) x 1000.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from binlogkit.cdc.filters import Filter
from binlogkit.cdc.model import Change, Op, Position, Source, Txn
from binlogkit.codec.columns import Column, Schemas
from binlogkit.codec.compression import CompressionError, mariadb_decompress
from binlogkit.codec.describe import TableMaps, gtid_set_text, gtid_text
from binlogkit.codec.event import Event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.types import DELETE_ROWS, ROWS_EVENTS, WRITE_ROWS, EventType
from binlogkit.errors import BinlogError
from binlogkit.gtid import GtidSet, GtidSetBuilder, MariadbGtidState
from binlogkit.io.reader import read_files
from binlogkit.io.rows import handle_event
from binlogkit.protocol.replica import Resume, StreamEvent

T = EventType
_Point = Union[Resume, Position, tuple[str, int]]  # noqa: UP007
ResumeLike = Union[_Point, Callable[[], _Point]]  # noqa: UP007

_GTIDS = frozenset({T.GTID, T.GTID_TAGGED, T.ANONYMOUS_GTID})
_QUERIES = frozenset({T.QUERY, T.QUERY_COMPRESSED})
_DDL_WORDS = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"})
_CTAS_TAIL = "START TRANSACTION"


@dataclass(slots=True)
class _Open:
    """A transaction being read."""

    id: str
    gtid: str | None
    mariadb: bool
    in_begin: bool
    commit_us: int | None = None
    thread: int | None = None
    query: str | None = None
    xid: str | None = None
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    ddl: list[tuple[str, str]] = field(default_factory=list)


def _text(data: Any) -> str:
    return bytes(data or b"").decode("utf-8", "replace")


def _xid_text(format_id: int, gtrid: bytes, bqual: bytes) -> str:
    return f"X'{bytes(gtrid).hex()}',X'{bytes(bqual).hex()}',{format_id}"


def _first_word(sql: str) -> str:
    """The statement's first keyword, upper case, past comments and blanks."""
    s = sql.lstrip()
    while True:
        if s.startswith("/*") and not s.startswith("/*!"):
            end = s.find("*/")
            s = s[end + 2:].lstrip() if end >= 0 else ""
        elif s.startswith("/*!"):  # executable comment /*!50001 CREATE ... */
            s = s[3:].lstrip("0123456789").lstrip()
        elif s.startswith(("#", "-- ")):
            end = s.find("\n")
            s = s[end + 1:].lstrip() if end >= 0 else ""
        else:
            break
    word = []
    for ch in s[:16]:
        if not (ch.isalpha() or ch == "_"):
            break
        word.append(ch)
    return "".join(word).upper()


def _commit_us(ev: Event) -> int | None:
    """A MySQL GTID event's commit timestamp (microseconds), original first."""
    b = ev.body
    if ev.type_code == T.GTID_TAGGED:
        ts = b.get("original_commit_timestamp") or b.get("immediate_commit_timestamp")
        return int(ts) if ts else None
    ct = b.get("commit_timestamp")
    if ct is None:
        return None
    ts = ct.original if ct.original is not None else ct.immediate
    return int(ts) if ts else None


class TxnBuilder:
    """Events in, committed transactions out (see the module doc).

    ``flavor`` ("mysql" / "mariadb"; "" takes it from the events),
    ``gtids`` the GTIDs executed before the first event fed (MySQL GTID set or
    MariaDB GTID position text; for ``Txn.end`` when no ``resume`` is given),
    ``schemas`` column names and types the binlog does not carry,
    ``tables`` table maps to share (e.g. across files), ``filters`` which
    tables and columns to keep, ``on_ddl(db, sql)`` called at each DDL
    statement as it is read (returning new schemas, or None for no change).
    """

    def __init__(self, flavor: str = "", *, gtids: str = "", schemas: Schemas | None = None,
                 tables: TableMaps | None = None, filters: Filter | None = None,
                 verify_checksum: bool = True,
                 on_ddl: Callable[[str, str], Schemas | None] | None = None) -> None:
        self.flavor = flavor
        self.tables = tables if tables is not None else TableMaps(schemas)
        if schemas is not None and tables is not None:
            self.tables.schemas = schemas
        self.filters = filters if filters is not None and not filters.empty else None
        self.verify = verify_checksum
        self.on_ddl = on_ddl
        self.dropped = 0  # transactions left unfinished (a GTID came first): never delivered
        self.skipped_rows = 0  # row events of tables the filters leave out
        self.orphan_rows = 0  # row events before the first transaction start: not delivered
        self._cur: _Open | None = None
        self._done: list[Txn] = []
        self._mysql = GtidSetBuilder()
        self._mariadb = MariadbGtidState()
        self._gtids_seen = False
        self._resume: ResumeLike | None = None
        if gtids.strip():
            self._gtids_seen = True
            if ":" in gtids or flavor == "mysql":
                self._mysql.update(GtidSet.parse(gtids))
            else:
                self._mariadb = MariadbGtidState.parse(gtids)

    # ---------------------------------------------------------------- state

    @property
    def in_transaction(self) -> bool:
        """A transaction has begun and not ended yet."""
        return self._cur is not None

    def discard(self) -> None:
        """Drop the unfinished transaction (the stream's ``Discard``: the
        server no longer has its events)."""
        self._cur = None

    def set_schemas(self, schemas: Schemas | None) -> None:
        """New column definitions (the schema history moved): the next rows
        decode with them. Table maps already seen are kept."""
        old = self.tables
        new = TableMaps(schemas)
        new.maps.update(old.maps)
        new.flavors.update(old.flavors)
        self.tables = new

    def gtids(self) -> str:
        """The GTIDs of every transaction ended so far (with ``gtids``)."""
        if self.flavor == "mariadb" or (self.flavor != "mysql" and len(self._mariadb)):
            return str(self._mariadb.pos)
        return str(self._mysql.build())

    # ----------------------------------------------------------------- feed

    def feed(self, ev: StreamEvent | Event, resume: ResumeLike | None = None, *,
             file: str | None = None, next_pos: int | None = None) -> list[Txn]:
        """Take the next event; return the transactions it completes (usually
        none or one).

        A :class:`StreamEvent` carries its file and positions. ``resume``, when
        given, is the protocol's resume point (``ReplicaProtocol.resume`` or
        ``.resume_point``, or a function giving one, called only when a
        transaction ends): its file and position become ``Txn.end``'s; the
        GTIDs are always the ones tracked here (``gtids`` + what was seen),
        as a protocol started from a file and position knows only the GTIDs
        it saw. A :class:`Position` is taken whole. An :class:`Event` needs
        ``file`` (the name to report); ``next_pos`` defaults to its end.
        """
        if isinstance(ev, StreamEvent):
            event = ev.event
            if not ev.in_file:
                # the dump's artificial ROTATE / FDE, heartbeats, MariaDB's fake
                # GTID_LIST (the state at the start position)
                if event.type_code == T.GTID_LIST:
                    self._seed(event)
                return []
            fname, pos, nxt = ev.file, ev.pos, ev.next_pos
        else:
            event = ev
            fname = file or ""
            pos = ev.pos
            nxt = next_pos if next_pos is not None else ev.pos + ev.size
        if not self.flavor and event.ctx is not None \
                and event.type_code != T.FORMAT_DESCRIPTION:  # its ctx is the one before it
            self.flavor = event.ctx.flavor
        self._resume = resume
        if event.type_code == T.TRANSACTION_PAYLOAD:
            for inner in inner_events(event, verify=self.verify, file=fname or None):
                self._handle(inner, fname, pos, nxt)
        else:
            self._handle(event, fname, pos, nxt)
        self._resume = None
        if not self._done:
            return []
        out, self._done = self._done, []
        return out

    def _handle(self, ev: Event, file: str, pos: int, nxt: int) -> None:  # noqa: C901, PLR0912
        code = ev.type_code
        if code in ROWS_EVENTS:
            self._rows(ev, file, pos)
        elif code == T.TABLE_MAP:
            self.tables.see(ev)
        elif code in _GTIDS:
            self._begin(_Open(gtid_text(ev) or f"{file}:{pos}", gtid_text(ev), False, False,
                              _commit_us(ev)))
        elif code == T.MARIADB_GTID:
            b = ev.body
            xid = b.get("xid")
            self._begin(_Open(
                gtid_text(ev) or f"{file}:{pos}", gtid_text(ev), True, not b.flags2 & 1,
                thread=b.get("thread_id"),
                xid=_xid_text(xid.format_id, xid.gtrid, xid.bqual) if xid is not None else None))
        elif code in _QUERIES:
            self._query(ev, file, pos, nxt)
        elif code == T.XID:
            if self._cur is not None:
                self._finish(ev, file, nxt)
        elif code == T.XA_PREPARE:
            if self._cur is not None:
                b = ev.body
                xid = _xid_text(b.format_id, b.gtrid, b.bqual)
                self._finish(ev, file, nxt, ("commit-one-phase" if b.one_phase else "prepare", xid))
        elif code in (T.ROWS_QUERY, T.ANNOTATE_ROWS):
            if self._cur is not None:
                self._cur.query = _text(ev.body.query)
        elif code in (T.PREVIOUS_GTIDS, T.GTID_LIST):
            self._seed(ev)

    def _begin(self, txn: _Open) -> None:
        if self._cur is not None:
            self.dropped += 1  # its end never came (the stream started inside it)
        self._cur = txn

    def _open(self, file: str, pos: int, in_begin: bool) -> _Open:
        if self._cur is None:
            self._cur = _Open(f"{file}:{pos}", None, False, in_begin)
        return self._cur

    def _seed(self, ev: Event) -> None:
        """GTIDs executed before this file (PREVIOUS_GTIDS) / the binlog state
        (GTID_LIST): a MySQL set takes the union; a MariaDB state is only
        taken when nothing is known yet (its order is the server's)."""
        if ev.type_code == T.PREVIOUS_GTIDS:
            text = gtid_set_text(ev.body.sids)
            if text:
                self._mysql.update(GtidSet.parse(text))
                self._gtids_seen = True
        elif not self._gtids_seen:
            for g in ev.body.gtids:
                self._mariadb.add(f"{g.domain_id}-{g.server_id}-{g.seq_no}")
            self._gtids_seen = bool(len(self._mariadb))

    # ----------------------------------------------------------- statements

    def _query(self, ev: Event, file: str, pos: int, nxt: int) -> None:
        raw = bytes(ev.body.query or b"")
        if ev.type_code == T.QUERY_COMPRESSED:
            try:
                raw = mariadb_decompress(raw)
            except CompressionError as exc:
                raise BinlogError(f"a compressed query: {exc}", file=file or None, offset=pos,
                                  event_type=ev.type_name) from None
        sql = raw.decode("utf-8", "replace")
        head = sql.lstrip()[:24].upper()
        word = head.split(None, 1)[0] if head else ""
        cur = self._cur
        thread = ev.body.get("thread_id")
        if head == "BEGIN" or head.startswith("XA START") or head.startswith("START TRANSACTION"):
            cur = self._open(file, pos, True)
            cur.in_begin = True
            cur.thread = thread
            return
        if word == "COMMIT" or (word == "ROLLBACK" and not head.startswith("ROLLBACK TO")):
            if cur is not None:
                self._finish(ev, file, nxt)
            return
        if (cur is None or not cur.in_begin) and (head.startswith("XA COMMIT")
                                                  or head.startswith("XA ROLLBACK")):
            cur = self._open(file, pos, False)
            cur.thread = thread
            kind = "commit" if head.startswith("XA COMMIT") else "rollback"
            xid = sql.lstrip()[len("XA COMMIT" if kind == "commit" else "XA ROLLBACK"):].strip()
            self._finish(ev, file, nxt, (kind, xid))
            return
        ddl = _first_word(sql) in _DDL_WORDS
        db = _text(ev.body.db)
        stripped = sql.rstrip()
        ctas = ddl and word == "CREATE" and stripped.upper().endswith(_CTAS_TAIL)
        if ctas:  # MySQL's atomic CREATE TABLE ... SELECT: its rows and XID follow
            sql = stripped[: -len(_CTAS_TAIL)].rstrip()
        if cur is not None and cur.in_begin:
            if ddl:
                self._ddl(cur, db, sql)
            return  # statement-format DML, XA END, SAVEPOINT ...
        cur = self._open(file, pos, False)
        cur.thread = thread
        if ctas:
            self._ddl(cur, db, sql)
            cur.in_begin = True
            return
        if ddl:
            self._ddl(cur, db, sql)
        self._finish(ev, file, nxt)

    def _ddl(self, cur: _Open, db: str, sql: str) -> None:
        """Record a DDL statement; ``on_ddl`` may give the schemas the rows
        after it (CREATE TABLE ... SELECT) decode with."""
        cur.ddl.append((db, sql))
        if self.on_ddl is not None:
            schemas = self.on_ddl(db, sql)
            if schemas is not None:
                self.set_schemas(schemas)

    # ----------------------------------------------------------------- rows

    def _rows(self, ev: Event, file: str, pos: int) -> None:
        cur = self._cur
        if cur is None:
            # the events began inside a transaction (servers always log BEGIN
            # or a GTID first): its rows are not delivered half
            self.orphan_rows += 1
            return
        flt = self.filters
        if flt is not None:
            schema, table = self.tables.name(ev.body.table_id)
            if schema is not None and not flt.table_included(schema, table or ""):
                self.skipped_rows += 1
                return
        out = handle_event(ev, self.tables, file or None)
        if out is None:
            return
        code = ev.type_code
        op: Op = "c" if code in WRITE_ROWS else "d" if code in DELETE_ROWS else "u"
        drop: frozenset[str] = frozenset()
        if flt is not None:
            drop = flt.excluded_columns(out.schema, out.table, [c.key for c in out.columns])
        cols: tuple[Column, ...] = out.columns
        sid = ev.server_id
        query = cur.query
        for row in out.rows:
            before, after = row.before, row.after
            if drop:
                before = {k: v for k, v in before.items() if k not in drop} \
                    if before is not None else None
                after = {k: v for k, v in after.items() if k not in drop} \
                    if after is not None else None
            if op == "c":
                before = None
            elif op == "d":
                after = None
            cur.rows.append((op, before, after, out.schema, out.table, pos, sid, query, cols, file))

    # ----------------------------------------------------------------- ends

    def _end(self, file: str, nxt: int) -> Position:
        resume = self._resume
        if callable(resume):
            resume = resume()
        if isinstance(resume, Position):
            return resume
        if isinstance(resume, Resume):
            file, nxt = resume.file, resume.pos
        elif isinstance(resume, tuple):
            file, nxt = resume
        return Position(file, nxt, self.gtids())

    def _finish(self, ev: Event, file: str, nxt: int, xa: tuple[str, str] | None = None) -> None:
        cur = self._cur
        assert cur is not None
        self._cur = None
        if cur.gtid is not None:
            if cur.mariadb:
                self._mariadb.add(cur.gtid)
            else:
                self._mysql.add(cur.gtid)
            self._gtids_seen = True
        ts_ms = cur.commit_us // 1000 if cur.commit_us else ev.timestamp * 1000
        flavor = self.flavor or "mysql"
        gtid, thread = cur.gtid, cur.thread
        changes = [
            Change(op, before, after,
                   Source(flavor, sid, rfile, rpos, gtid, ts_ms, schema, table, i,
                          query=query, thread=thread),
                   columns=cols)
            for i, (op, before, after, schema, table, rpos, sid, query, cols, rfile)
            in enumerate(cur.rows)
        ]
        self._done.append(Txn(cur.id, changes, self._end(file, nxt), gtid=gtid, ts_ms=ts_ms,
                              ddl=cur.ddl, xa=xa))


def txns_from_files(
    paths: Iterable[str | os.PathLike[str]], *, flavor: str = "", gtids: str = "",
    schemas: Schemas | None = None, filters: Filter | None = None,
    verify_checksum: bool = True,
) -> Iterator[Txn]:
    """The transactions of binlog files read in order (``.index`` files are
    expanded); positions name the files by their base name."""
    builder = TxnBuilder(flavor, gtids=gtids, schemas=schemas, filters=filters,
                         verify_checksum=verify_checksum)
    for reader, ev in read_files(paths, verify_checksum=verify_checksum):
        yield from builder.feed(ev, file=os.path.basename(reader.name or ""))
