"""Apply the change messages of a broker sink to a MySQL/MariaDB server,
exactly once, in source commit order (``binlogkit apply --from``).

Reading (:mod:`binlogkit.cdc.broker_readers`) gives each stream's messages
in order. Messages are held by transaction (field ``txn``); a transaction
is applied once all ``n`` of its messages are held and, in every stream it
has messages in, they are the oldest unapplied ones (the ordering rule of
:mod:`binlogkit.cdc.broker_layout`: DDL copies are barriers). Its messages
are applied in ``seq`` order.

Row changes: one target transaction per source transaction. ``c`` is an
INSERT, ``r`` (snapshot read) a REPLACE, ``u`` an UPDATE and ``d`` a DELETE
of the row whose primary key (the target's) has the before image's values;
a table without a primary key matches every before column with ``<=>`` and
LIMIT 1. Values go back from their JSON forms (docs/json.md) by the target's
column types (information_schema, read again after DDL): base64 to bytes
for binary strings, BLOB, GEOMETRY and BIT given as text; a JSON column gets
the document's JSON text; DECIMAL text as an exact literal; everything else
as given. The session runs with ``time_zone='+00:00'`` (TIMESTAMPs are UTC
text) and ``sql_mode='STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,
NO_ENGINE_SUBSTITUTION'`` (a value the target cannot hold is an error, not
truncated; zero dates pass). Generated columns are left to the target.
Tables must exist on the target: apply creates only those it sees a CREATE
TABLE for.

The target drifted (stop, nothing of the transaction applied, exit 2): an
UPDATE or DELETE matching no row, an INSERT hitting a duplicate key, a
missing table or column.

Positions. In the same target transaction as the changes, the row of each
stream involved in ``binlogkit.apply_position`` (key: ``source``, the
reader's identity: broker host:port, key prefix and sink name or stream,
consumer group or durable, never a password; and ``stream``) is set to the
position of the transaction's last message there, with the transaction id,
its GTID, commit time (``ts_ms``) and ``applied_at``. Before applying, those
rows are read ``FOR UPDATE``.

Exactly once, row changes: a message at or below its stream's stored
position is skipped (and acknowledged), and so is a copy of the stream's
last applied transaction (same ``txn`` and ``gtid``, not a snapshot batch:
a sink that sent it twice). The changes and the positions commit together
(InnoDB), and the broker is acknowledged only after that commit, so a crash
of apply at any point leaves both or neither; what the broker delivers again
is skipped. A commit whose reply was lost is found by the ``FOR UPDATE``
read when the transaction is tried again after reconnecting; any other lost
connection rolls the transaction back and it is applied again.

Not exactly once:

- DDL. A statement commits on its own, so a transaction of DDL goes: a
  marker row in ``binlogkit.apply_ddl`` (source, txn, statement index,
  started=1) committed; ``USE db`` and the statement; the marker moved to
  the next statement (started=0); finally the positions and the marker's
  deletion in one transaction. A statement failing with a server error sets
  started=0 (it did not run) and stops. After a crash or lost connection
  while a statement ran, started=1 says it may have run: it is run again and
  the errors of :data:`ALREADY_APPLIED` count as done. So a statement that
  succeeds again with another effect (``RENAME TABLE a TO b, b TO a``, a
  swap of column names) is applied twice if the crash falls between its end
  and the marker update; one the error set covers wrongly (a table missing
  on the target for an ALTER: 1146) counts as done; a statement on a
  non-transactional engine, or a MariaDB multi-table DROP, half done is
  completed by the re-run.
- Snapshot reads (``r``) are REPLACEs: a snapshot delivered twice (the
  sinks write snapshots at least once) is harmless on tables with a primary
  key and duplicates rows on tables without one; a later snapshot does not
  delete rows the source lost meanwhile.
- Copies of older transactions than a stream's last (a sink resending
  beyond the broker's deduplication) are recognised in memory only, for the
  last 10000 transactions.
- Writes to the target by anyone else (drift, see above; REPLACE hides it),
  and two applies with the same identity at once (they split the messages).

Not supported: partial JSON updates (``json_diffs``), and text columns whose
charset the sink did not know (written as base64 text).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import Any

from binlogkit.cdc.broker_readers import BrokerReader, RawMessage, ReaderReset, position_key

#: Server errors that, when a DDL statement is run again after a crash (or
#: lost connection) during its first run, mean it had already been applied.
ALREADY_APPLIED: dict[int, str] = {
    1007: "CREATE DATABASE: the database exists",
    1008: "DROP DATABASE: no such database",
    1050: "CREATE TABLE/VIEW, RENAME TABLE: the (new) table exists",
    1051: "DROP TABLE: unknown table",
    1054: "CHANGE/RENAME COLUMN: the old column is gone",
    1060: "ADD COLUMN: duplicate column name",
    1061: "ADD INDEX, CREATE INDEX: duplicate key name",
    1068: "ADD PRIMARY KEY: multiple primary keys",
    1091: "DROP COLUMN/INDEX/PRIMARY KEY: can't drop, does not exist",
    1146: "RENAME TABLE, ALTER TABLE ... RENAME: the old table is gone",
    1826: "ADD FOREIGN KEY: duplicate constraint name",
    1304: "CREATE PROCEDURE/FUNCTION: exists",
    1305: "DROP PROCEDURE/FUNCTION: does not exist",
    1359: "CREATE TRIGGER: exists",
    1360: "DROP TRIGGER: does not exist",
    1396: "CREATE/DROP USER: already done",
}

# client and server errors after which reconnecting and trying again may work
TRANSIENT = frozenset({1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055, 4031})

SQL_MODE = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
POSITION_TABLE = "binlogkit.apply_position"
DDL_TABLE = "binlogkit.apply_ddl"
SCHEMA_SQL = [
    "CREATE DATABASE IF NOT EXISTS `binlogkit`",
    f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} ("
    " source VARCHAR(255) NOT NULL, stream VARCHAR(500) NOT NULL,"
    " position VARCHAR(64) NOT NULL, txn VARCHAR(255) NOT NULL,"
    " gtid VARCHAR(255) NOT NULL DEFAULT '', ts_ms BIGINT NOT NULL DEFAULT 0,"
    " applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),"
    " PRIMARY KEY (source, stream)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    f"CREATE TABLE IF NOT EXISTS {DDL_TABLE} ("
    " source VARCHAR(255) NOT NULL PRIMARY KEY, txn VARCHAR(255) NOT NULL,"
    " step INT NOT NULL, started TINYINT NOT NULL, statement LONGTEXT NOT NULL,"
    " updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
]

_BINARY = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
                     "geometry", "point", "linestring", "polygon", "multipoint",
                     "multilinestring", "multipolygon", "geometrycollection", "geomcollection"})
_RECENT = 10000


class ApplyError(Exception):
    """Applying stopped: one line, safe to print (no password)."""


class _Stopped(Exception):  # noqa: N818
    """Stop requested while the target was unreachable."""


# ------------------------------------------------------------------ status


@dataclass
class ApplyStatus:
    """Counters for the status line and the caller."""

    transactions: int = 0  # source transactions applied
    changes: int = 0  # row changes applied
    ddl: int = 0  # DDL statements run
    skipped: int = 0  # messages skipped: applied before
    seen: int = 0  # messages read
    held: int = 0  # messages held now
    last_ts_ms: int = 0  # commit time of the last applied transaction
    last_txn: str = ""
    target_retries: int = 0
    started: float = field(default_factory=time.monotonic)

    def lag(self, now_ms: int | None = None) -> float | None:
        """Seconds from the last applied transaction's commit to now."""
        if not self.last_ts_ms:
            return None
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return max(0.0, (now - self.last_ts_ms) / 1000)

    def line(self, rate: float) -> str:
        lag = self.lag()
        lag_text = "-" if lag is None else f"{lag:.1f} s"
        return (f"applied {self.transactions} txns, {self.changes} changes "
                f"({rate:.0f}/s), lag {lag_text}, held {self.held}")


# ------------------------------------------------------------------ messages


@dataclass(eq=False)
class _Held:
    raw: RawMessage
    key: tuple[int, ...]
    txn: str
    seq: int
    n: int
    op: str
    gtid: str = ""


@dataclass(eq=False)
class _Pending:
    id: str
    n: int
    msgs: dict[int, _Held] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    dups: list[RawMessage] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.msgs) == self.n

    def ordered(self) -> list[_Held]:
        return [self.msgs[i] for i in range(self.n)]

    def last(self) -> dict[str, _Held]:
        """Each stream's last message of this transaction."""
        out: dict[str, _Held] = {}
        for h in self.msgs.values():
            cur = out.get(h.raw.stream)
            if cur is None or h.key > cur.key:
                out[h.raw.stream] = h
        return out

    def first(self) -> dict[str, _Held]:
        out: dict[str, _Held] = {}
        for h in self.msgs.values():
            cur = out.get(h.raw.stream)
            if cur is None or h.key < cur.key:
                out[h.raw.stream] = h
        return out


@dataclass(frozen=True)
class _Stored:
    key: tuple[int, ...]
    txn: str
    gtid: str = ""


# ------------------------------------------------------------------ target tables


@dataclass(frozen=True)
class _Col:
    name: str
    data_type: str
    ordinal: int
    generated: bool
    json: bool


@dataclass
class _Table:
    schema: str
    name: str
    columns: list[_Col]
    key: tuple[str, ...]

    def __post_init__(self) -> None:
        self.by_lower = {c.name.lower(): c for c in self.columns}

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, key: str) -> _Col:
        col = self.by_lower.get(key.lower())
        if col is None and re.fullmatch(r"@\d+", key):
            i = int(key[1:]) - 1
            if 0 <= i < len(self.columns):
                col = self.columns[i]
        if col is None:
            raise ApplyError(f"column {key!r} of {self.display} is not on the target "
                             "(the target drifted from the source)")
        return col


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _q(name: str) -> str:
    """An identifier for a statement run with parameters (``%`` doubled)."""
    return _ident(name).replace("%", "%%")


def _short(v: Any, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _transient(exc: BaseException) -> bool:
    import pymysql  # noqa: PLC0415

    if isinstance(exc, pymysql.err.InterfaceError | ConnectionError | TimeoutError):
        return True
    return _code(exc) in TRANSIENT


def _server_text(exc: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2:
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


# ------------------------------------------------------------------ the applier


class Applier:
    """Reads ``reader``, applies to the target ``connect()`` returns (a
    PyMySQL connection, autocommit on), see the module doc.

    ``follow=False``: stop once the broker had nothing new for ``idle``
    seconds and no transaction is partly held (error if one still is
    ``incomplete_grace`` seconds later). ``retry_for``: give up on an
    unreachable target after this many seconds (None: never). ``per_stream``
    bounds the messages held per stream (beyond what one transaction needs).
    """

    def __init__(self, reader: BrokerReader, connect: Callable[[], Any], *,
                 target: str = "target", follow: bool = True, idle: float = 2.0,
                 retry_for: float | None = None, incomplete_grace: float = 30.0,
                 per_stream: int = 500, insert_batch: int = 200,
                 on_status: Callable[[ApplyStatus], None] | None = None,
                 status_every: float = 0.5) -> None:
        self.reader = reader
        self.connect = connect
        self.target = target
        self.follow = follow
        self.idle = idle
        self.retry_for = retry_for
        self.incomplete_grace = incomplete_grace
        self.per_stream = max(1, per_stream)
        self.insert_batch = max(1, insert_batch)
        self.on_status = on_status
        self.status_every = status_every
        self.status = ApplyStatus()
        self.source = _fit(reader.source_id, 255)
        self._stop = threading.Event()
        self._conn: Any = None
        self.flavor = ""
        self._tables: dict[tuple[str, str], _Table] = {}
        self.positions: dict[str, _Stored] = {}
        self.txns: dict[str, _Pending] = {}
        self.queues: dict[str, deque[_Held]] = {}
        self._to_ack: list[RawMessage] = []
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._shown = 0.0
        self._down_since: float | None = None
        self._delay = 0.1
        self._pending_ddl: tuple[str, int, bool] | None = None

    def stop(self) -> None:
        """Stop after the current transaction."""
        self._stop.set()

    # -------------------------------------------------------------- main loop

    def run(self) -> ApplyStatus:
        """Apply until :meth:`stop` (or, not following, until idle)."""
        import pymysql  # noqa: PLC0415

        try:
            self._open(first=True)
        except pymysql.MySQLError as exc:
            raise ApplyError(f"{self.target}: {_server_text(exc)}") from None
        self._with_target(self._load_state)
        quiet_since = time.monotonic()
        fetch_timeout = min(0.5, max(0.05, self.idle / 2))
        try:
            while not self._stop.is_set():
                try:
                    raws = self.reader.fetch(fetch_timeout, self._room,
                                             eager=any(not t.complete
                                                       for t in self.txns.values()))
                except ReaderReset:
                    self._drop_held()
                    quiet_since = time.monotonic()
                    continue
                now = time.monotonic()
                if raws or not self.reader.connected:
                    quiet_since = now
                for raw in raws:
                    self._hold(raw)
                self._flush_acks()
                while not self._stop.is_set():
                    t = self._ready()
                    if t is None:
                        break
                    self._apply(t)
                self._check_stuck()
                self._report()
                if not self.follow and now - quiet_since >= self.idle:
                    if not self.txns:
                        break
                    if now - quiet_since >= self.idle + self.incomplete_grace:
                        raise ApplyError(self._incomplete_text())
        except _Stopped:
            pass
        finally:
            self._flush_acks()
            self._report(force=True)
        return self.status

    def close(self) -> None:
        self._close_conn()

    def _report(self, force: bool = False) -> None:
        self.status.held = sum(len(t.msgs) for t in self.txns.values())
        now = time.monotonic()
        if self.on_status is not None and (force or now - self._shown >= self.status_every):
            self._shown = now
            self.on_status(self.status)

    # -------------------------------------------------------------- holding

    def _parse(self, raw: RawMessage) -> _Held:
        f = raw.fields
        try:
            txn, seq, n, op = f["txn"], int(f["seq"]), int(f["n"]), f["op"]
        except (KeyError, ValueError):
            raise ApplyError(f"{self.reader.display}: {raw.stream} at {raw.position}: not a "
                             "binlogkit change message (needs fields txn, seq, n, op)") from None
        if not 0 <= seq < n:
            raise ApplyError(f"{self.reader.display}: {raw.stream} at {raw.position}: "
                             f"seq {seq} outside 0..{n - 1}")
        return _Held(raw, position_key(raw.position), txn, seq, n, op, f.get("gtid", ""))

    def _hold(self, raw: RawMessage) -> None:
        self.status.seen += 1
        h = self._parse(raw)
        stored = self.positions.get(raw.stream)
        snapshot = h.txn.startswith("snapshot:")
        same = stored is not None and (stored.txn, stored.gtid) == (h.txn, h.gtid)
        if (stored is not None and (h.key <= stored.key or (same and not snapshot))) \
                or (not snapshot and (h.txn, h.gtid) in self._recent):
            self._to_ack.append(raw)
            self.status.skipped += 1
            return
        t = self.txns.get(h.txn)
        if t is None:
            t = self.txns[h.txn] = _Pending(h.txn, h.n)
        elif t.n != h.n:
            raise ApplyError(f"{self.reader.display}: transaction {h.txn}: messages disagree "
                             f"on n ({t.n} and {h.n})")
        old = t.msgs.get(h.seq)
        if old is not None:
            if old.raw.stream == raw.stream and old.key == h.key:
                old.raw = raw  # delivered again: acknowledge the newest delivery
            else:
                t.dups.append(raw)  # a copy the sink sent again: acknowledged with it
            return
        t.msgs[h.seq] = h
        t.counts[raw.stream] += 1
        q = self.queues.setdefault(raw.stream, deque())
        if not q or q[-1].key < h.key:
            q.append(h)
        else:  # out of order (a redelivery): keep the queue sorted
            i = len(q)
            while i > 0 and q[i - 1].key > h.key:
                i -= 1
            q.insert(i, h)

    def _room(self, stream: str) -> bool:
        """Whether to read more of ``stream`` now."""
        q = self.queues.get(stream)
        if not q or len(q) < self.per_stream:
            return True
        head = q[0].txn
        t = self.txns[head]
        # the head transaction still misses messages and they may be here
        return not t.complete and all(h.txn == head for h in q)

    def _ready(self) -> _Pending | None:
        for t in self.txns.values():
            if t.complete and all(self._leads(s, t.id, k) for s, k in t.counts.items()):
                return t
        return None

    def _leads(self, stream: str, txn: str, k: int) -> bool:
        q = self.queues.get(stream)
        return q is not None and len(q) >= k and all(h.txn == txn for h in islice(q, k))

    def _drop_held(self) -> None:
        self.txns.clear()
        self.queues.clear()

    def _pop(self, t: _Pending) -> None:
        for s, k in t.counts.items():
            q = self.queues[s]
            for _ in range(k):
                q.popleft()
            if not q:
                del self.queues[s]
        del self.txns[t.id]

    def _flush_acks(self) -> None:
        if self._to_ack:
            acks, self._to_ack = self._to_ack, []
            self.reader.ack(acks)

    def _check_stuck(self) -> None:
        limit = self.reader.max_pending
        held = sum(len(t.msgs) for t in self.txns.values())
        if limit is not None and held >= limit and self._ready() is None:
            raise ApplyError(f"{self.reader.display}: {held} messages held and no transaction "
                             f"complete ({self._incomplete_text()}); raise --max-pending")

    def _incomplete_text(self) -> str:
        parts = [f"{t.id} has {len(t.msgs)} of {t.n} messages"
                 for t in self.txns.values() if not t.complete][:3]
        if not parts:
            heads = {q[0].txn for q in self.queues.values() if q}
            return "transactions waiting behind others: " + ", ".join(sorted(heads)[:3])
        return "incomplete transaction " + "; ".join(parts) + \
            " (the rest never came: a sink that stopped mid-transaction, or trimmed streams)"

    # -------------------------------------------------------------- target connection

    def _open(self, first: bool = False) -> Any:
        if self._conn is not None:
            return self._conn
        conn = self.connect()  # the first failure is the caller's (one line)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_mode = %s, time_zone = '+00:00'", (SQL_MODE,))
                cur.execute("SELECT VERSION()")
                row = cur.fetchone()
            self.flavor = "mariadb" if row and "mariadb" in str(row[0]).lower() else "mysql"
            if first:
                with conn.cursor() as cur:
                    for sql in SCHEMA_SQL:
                        cur.execute(sql)
        except Exception:
            with _quiet():
                conn.close()
            raise
        self._conn = conn
        return conn

    def _close_conn(self) -> None:
        if self._conn is not None:
            with _quiet():
                self._conn.close()
            self._conn = None

    def _with_target(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, retried after reconnecting while the target errors are transient."""
        while True:
            try:
                self._open()
                out = fn()
                self._down_since = None
                self._delay = 0.1
                return out
            except ApplyError:
                self._rollback()
                raise
            except Exception as exc:
                if not _transient(exc):
                    self._rollback()
                    import pymysql  # noqa: PLC0415

                    if isinstance(exc, pymysql.MySQLError):
                        raise ApplyError(f"{self.target}: {_server_text(exc)}") from None
                    raise
                self._close_conn()
                self._tables.clear()
                self._wait_target(exc)

    def _wait_target(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.status.target_retries += 1
        if self._down_since is None:
            self._down_since = now
        if self.retry_for is not None and now - self._down_since >= self.retry_for:
            raise ApplyError(f"{self.target}: unreachable for {now - self._down_since:.1f} s, "
                             f"giving up: {_server_text(exc)}")
        if self._stop.wait(self._delay):
            raise _Stopped
        self._delay = min(self._delay * 2, 5.0)

    def _rollback(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
            except Exception:  # noqa: BLE001
                self._close_conn()

    def _cursor(self) -> Any:
        return self._open().cursor()

    # -------------------------------------------------------------- state in the target

    def _load_state(self) -> None:
        with self._cursor() as cur:
            cur.execute(f"SELECT stream, position, txn, gtid FROM {POSITION_TABLE}"
                        " WHERE source = %s", (self.source,))
            self.positions = {str(s): _Stored(position_key(str(p)), str(t), str(g))
                              for s, p, t, g in cur.fetchall()}
        self._pending_ddl = self._marker()

    def _marker(self) -> tuple[str, int, bool] | None:
        """The unfinished DDL recorded in the target: (txn, statement, started)."""
        with self._cursor() as cur:
            cur.execute(f"SELECT txn, step, started FROM {DDL_TABLE} WHERE source = %s",
                        (self.source,))
            row = cur.fetchone()
        return None if row is None else (str(row[0]), int(row[1]), bool(row[2]))

    def _set_marker(self, txn: str, step: int, started: bool, sql: str) -> None:
        with self._cursor() as cur:
            cur.execute(f"INSERT INTO {DDL_TABLE} (source, txn, step, started, statement,"
                        " updated_at) VALUES (%s, %s, %s, %s, %s, NOW(6)) ON DUPLICATE KEY UPDATE"
                        " txn = %s, step = %s, started = %s, statement = %s,"
                        " updated_at = NOW(6)",
                        (self.source, txn, step, int(started), sql, txn, step, int(started),
                         sql))
        self._pending_ddl = (txn, step, started)

    def _stored_rows(self, cur: Any, streams: Sequence[str], lock: bool) -> dict[str, _Stored]:
        marks = ", ".join(["%s"] * len(streams))
        cur.execute(f"SELECT stream, position, txn, gtid FROM {POSITION_TABLE}"
                    f" WHERE source = %s AND stream IN ({marks}){' FOR UPDATE' if lock else ''}",
                    (self.source, *streams))
        return {str(s): _Stored(position_key(str(p)), str(x), str(g))
                for s, p, x, g in cur.fetchall()}

    def _already(self, t: _Pending, rows: dict[str, _Stored]) -> bool:
        """Whether the stored positions say ``t`` was applied (they are then
        taken as the positions known here)."""
        first, last = t.first(), t.last()
        states = set()
        for s in t.counts:
            st = rows.get(s)
            if st is None or st.key < first[s].key:
                states.add("new")
            elif st.key >= last[s].key:
                states.add("done")
            else:
                states.add("between")
        self.positions.update(rows)
        if states == {"done"}:
            return True
        if states == {"new"}:
            return False
        raise ApplyError(f"{self.target}: the stored positions of transaction {t.id}'s streams "
                         f"({', '.join(sorted(t.counts))}) are inconsistent: is another apply "
                         "using the same source and group?")

    def _write_positions(self, cur: Any, t: _Pending) -> None:
        for s, h in t.last().items():
            f = h.raw.fields
            ts = _int(f.get("ts_ms"))
            cur.execute(f"INSERT INTO {POSITION_TABLE} (source, stream, position, txn, gtid,"
                        " ts_ms, applied_at) VALUES (%s, %s, %s, %s, %s, %s, NOW(6))"
                        " ON DUPLICATE KEY UPDATE position = %s, txn = %s, gtid = %s,"
                        " ts_ms = %s, applied_at = NOW(6)",
                        (self.source, s, h.raw.position, t.id, f.get("gtid", ""), ts,
                         h.raw.position, t.id, f.get("gtid", ""), ts))

    # -------------------------------------------------------------- applying

    def _apply(self, t: _Pending) -> None:
        msgs = t.ordered()
        ddl = [h.op == "ddl" for h in msgs]
        if any(ddl) and not all(ddl):
            raise ApplyError(f"transaction {t.id}: DDL and row changes in one transaction "
                             "are not supported")
        applied = self._with_target(lambda: self._apply_ddl(t, msgs) if all(ddl)
                                    else self._apply_rows(t, msgs))
        self._pop(t)
        gtid = msgs[0].gtid
        for s, h in t.last().items():
            self.positions[s] = _Stored(h.key, t.id, gtid)
        if not t.id.startswith("snapshot:"):
            self._recent[(t.id, gtid)] = None
            if len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        self.reader.ack([h.raw for h in msgs] + t.dups)
        if applied:
            self.status.transactions += 1
            self.status.last_txn = t.id
            self.status.last_ts_ms = _int(msgs[-1].raw.fields.get("ts_ms")) \
                or self.status.last_ts_ms
            if not all(ddl):
                self.status.changes += len(msgs)
        else:
            self.status.skipped += len(msgs)

    def _check_marker(self, t: _Pending, marker: tuple[str, int, bool] | None
                      ) -> tuple[str, int, bool] | None:
        if marker is not None and marker[0] != t.id:
            raise ApplyError(f"{self.target}: {DDL_TABLE} holds an unfinished DDL of "
                             f"transaction {marker[0]}, but the next transaction is {t.id}")
        return marker

    def _apply_rows(self, t: _Pending, msgs: list[_Held]) -> bool:
        conn = self._open()
        self._check_marker(t, self._pending_ddl)  # only this process writes it
        conn.begin()
        with conn.cursor() as cur:
            if self._already(t, self._stored_rows(cur, sorted(t.counts), lock=True)):
                conn.rollback()
                return False
            for group in self._groups(msgs):
                self._apply_group(cur, t, group)
            self._write_positions(cur, t)
        conn.commit()
        return True

    def _groups(self, msgs: list[_Held]) -> Iterable[list[tuple[_Held, dict[str, Any]]]]:
        """Consecutive INSERTs (or REPLACEs) of one table and column list
        together (one statement), every other change alone."""
        group: list[tuple[_Held, dict[str, Any]]] = []
        size = 0
        for h in msgs:
            try:
                p = json.loads(h.raw.payload)
            except ValueError:
                raise ApplyError(f"{self.reader.display}: {h.raw.stream} at {h.raw.position}: "
                                 "payload is not JSON") from None
            if not isinstance(p, dict):
                raise ApplyError(f"{self.reader.display}: {h.raw.stream} at {h.raw.position}: "
                                 "payload is not a JSON object")
            if group:
                g0, p0 = group[0]
                same = (h.op in ("c", "r") and h.op == g0.op
                        and _table_of(h) == _table_of(g0)
                        and list(p.get("after") or {}) == list(p0.get("after") or {}))
                if not same or len(group) >= self.insert_batch or size > 4_000_000:
                    yield group
                    group, size = [], 0
            group.append((h, p))
            size += len(h.raw.payload)
        if group:
            yield group

    def _table(self, schema: str, name: str) -> _Table:
        key = (schema, name)
        tbl = self._tables.get(key)
        if tbl is not None:
            return tbl
        with self._cursor() as cur:
            cur.execute("SELECT COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS"
                        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                        (schema, name))
            cols = [(_text(c), _text(d).lower(), _text(e).upper()) for c, d, e in cur.fetchall()]
            if not cols:
                raise ApplyError(f"{self.target}: no table {schema}.{name} on the target (apply "
                                 "creates only tables it sees a CREATE TABLE for: create it "
                                 "first)")
            cur.execute("SELECT COLUMN_NAME FROM information_schema.STATISTICS"
                        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY'"
                        " ORDER BY SEQ_IN_INDEX", (schema, name))
            key_cols = tuple(_text(r[0]) for r in cur.fetchall())
            checks: list[str] = []
            if self.flavor == "mariadb":  # MariaDB's JSON: LONGTEXT CHECK (json_valid(col))
                cur.execute("SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
                            " WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s", (schema, name))
                checks = [_text(r[0]).lower() for r in cur.fetchall()]
        out = []
        for i, (c, dtype, extra) in enumerate(cols):
            is_json = dtype == "json" or any(
                re.search(rf"json_valid\(\s*`?{re.escape(c.lower())}`?\s*\)", ch)
                for ch in checks)
            out.append(_Col(c, dtype, i + 1, "VIRTUAL GENERATED" in extra
                            or "STORED GENERATED" in extra, is_json))
        tbl = self._tables[key] = _Table(schema, name, out, key_cols)
        return tbl

    # -- one statement

    def _context(self, t: _Pending, h: _Held) -> str:
        f = h.raw.fields
        gtid = f" (gtid {f['gtid']})" if f.get("gtid") and f["gtid"] != t.id else ""
        return (f"{self.target}: transaction {t.id}{gtid}, change {h.seq} "
                f"({h.op} {f.get('schema', '')}.{f.get('table', '')})")

    def _execute(self, cur: Any, sql: str, args: Sequence[Any], t: _Pending, h: _Held) -> int:
        import pymysql  # noqa: PLC0415

        try:
            return int(cur.execute(sql, tuple(args)))
        except pymysql.MySQLError as exc:
            if _transient(exc):
                raise
            if _code(exc) == 1062:
                raise ApplyError(f"{self._context(t, h)}: duplicate key on the target: "
                                 f"{_server_text(exc)}; the target drifted from the source"
                                 ) from None
            raise ApplyError(f"{self._context(t, h)}: {_server_text(exc)}") from None

    def _apply_group(self, cur: Any, t: _Pending, group: list[tuple[_Held, dict[str, Any]]]
                     ) -> None:
        h, p = group[0]
        if p.get("json_diffs"):
            raise ApplyError(f"{self._context(t, h)}: partial JSON updates (json_diffs of "
                             f"{', '.join(p['json_diffs'])}) are not supported")
        schema, name = _table_of(h)
        tbl = self._table(schema, name)
        flavor = _flavor(p) or _flavor({"source": {"flavor": h.raw.fields.get("flavor")}})
        if h.op in ("c", "r"):
            after = p.get("after") or {}
            cols = [(tbl.column(k), k) for k in after]
            cols = [(c, k) for c, k in cols if not c.generated]
            verb = "INSERT" if h.op == "c" else "REPLACE"
            row = "(" + ", ".join(["%s"] * len(cols)) + ")"
            sql = (f"{verb} INTO {_q(schema)}.{_q(name)} ("
                   f"{', '.join(_q(c.name) for c, _ in cols)}) VALUES "
                   + ", ".join([row] * len(group)))
            args: list[Any] = []
            for gh, gp in group:
                img = gp.get("after") or {}
                args += [self._value(c, img.get(k), flavor, t, gh) for c, k in cols]
            self._execute(cur, sql, args, t, h)
            return
        if h.op not in ("u", "d"):
            raise ApplyError(f"{self._context(t, h)}: unknown op {h.op!r}")
        before = p.get("before")
        if not isinstance(before, dict):
            raise ApplyError(f"{self._context(t, h)}: no before image")
        where, wargs = self._where(tbl, before, flavor, t, h)
        limit = "" if tbl.key else " LIMIT 1"
        target = f"{_q(schema)}.{_q(name)}"
        if h.op == "d":
            n = self._execute(cur, f"DELETE FROM {target} WHERE {where}{limit}", wargs, t, h)
        else:
            after = p.get("after") or {}
            sets = [(tbl.column(k), v) for k, v in after.items()]
            sets = [(c, v) for c, v in sets if not c.generated]
            if not sets:
                return
            sql = (f"UPDATE {target} SET {', '.join(f'{_q(c.name)} = %s' for c, _ in sets)}"
                   f" WHERE {where}{limit}")
            n = self._execute(cur, sql, [self._value(c, v, flavor, t, h) for c, v in sets]
                              + wargs, t, h)
            if n == 0:  # matched but unchanged? (affected rows count changed rows only)
                n = self._execute(cur, f"SELECT 1 FROM {target} WHERE {where} LIMIT 1", wargs,
                                  t, h)
        if n == 0:
            shown = ", ".join(f"{k}={_short(before.get(k))}"
                              for k in (tbl.key or list(before)[:4]))
            raise ApplyError(f"{self._context(t, h)}: no row with {shown} on the target; "
                             "the target drifted from the source")

    def _where(self, tbl: _Table, before: dict[str, Any], flavor: str | None, t: _Pending,
               h: _Held) -> tuple[str, list[Any]]:
        parts: list[str] = []
        args: list[Any] = []
        if tbl.key:
            for k in tbl.key:
                col = tbl.by_lower[k.lower()]
                src = next((b for b in before if tbl.column(b) is col), None)
                if src is None:
                    raise ApplyError(f"{self._context(t, h)}: the before image lacks primary "
                                     f"key column {k}")
                parts.append(f"{_q(col.name)} = %s")
                args.append(self._value(col, before[src], flavor, t, h))
            return " AND ".join(parts), args
        for k, v in before.items():
            col = tbl.column(k)
            if col.generated:
                continue
            if v is None:
                parts.append(f"{_q(col.name)} IS NULL")
                continue
            if col.json and col.data_type == "json":
                parts.append(f"{_q(col.name)} <=> CAST(%s AS JSON)")
            elif col.data_type == "float":
                parts.append(f"{_q(col.name)} <=> CAST(%s AS FLOAT)")
            else:
                parts.append(f"{_q(col.name)} <=> %s")
            args.append(self._value(col, v, flavor, t, h))
        return " AND ".join(parts) or "1", args

    def _value(self, col: _Col, v: Any, flavor: str | None, t: _Pending, h: _Held) -> Any:
        """A JSON value back in the form the target column takes."""
        if v is None:
            return None
        dt = col.data_type
        if col.json:
            if isinstance(v, str) and (flavor == "mariadb" or (flavor is None and _is_json(v))):
                return v  # MariaDB's JSON is text already
            return json.dumps(v, ensure_ascii=False)
        if dt in _BINARY or (dt == "bit" and isinstance(v, str)) \
                or (dt in ("uuid", "inet6", "inet4") and isinstance(v, str)
                    and not re.search(r"[-:.]", v)):
            if not isinstance(v, str):
                return v
            try:
                return base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise ApplyError(f"{self._context(t, h)}: column {col.name}: not base64: "
                                 f"{_short(v)}") from None
        if dt == "vector" and isinstance(v, list):
            return struct.pack(f"<{len(v)}f", *v)
        if dt == "decimal" and isinstance(v, str):
            try:  # an exact literal: compared as DECIMAL, not as a double
                return Decimal(v)
            except ArithmeticError:
                return v
        if isinstance(v, dict | list):
            return json.dumps(v, ensure_ascii=False)
        return v

    # -------------------------------------------------------------- DDL

    def _apply_ddl(self, t: _Pending, msgs: list[_Held]) -> bool:
        stmts: list[tuple[str, str]] = []
        for h in msgs:
            try:
                p = json.loads(h.raw.payload)
                db, sql = str(p.get("db") or ""), str(p["sql"])
            except (ValueError, KeyError, TypeError, AttributeError):
                raise ApplyError(f"{self.reader.display}: {h.raw.stream} at {h.raw.position}: "
                                 "a DDL message needs a JSON payload with db and sql") from None
            if not stmts or stmts[-1] != (db, sql):  # one statement, a copy per stream
                stmts.append((db, sql))
        with self._cursor() as cur:
            if self._already(t, self._stored_rows(cur, sorted(t.counts), lock=False)):
                return False
        marker = self._check_marker(t, self._marker())
        step, started = (marker[1], marker[2]) if marker else (0, False)
        for i in range(step, len(stmts)):
            db, sql = stmts[i]
            tolerate = started and i == step
            self._set_marker(t.id, i, True, sql)
            self._run_ddl(t, msgs[0], db, sql, i, tolerate)
            self._set_marker(t.id, i + 1, False, stmts[i + 1][1] if i + 1 < len(stmts) else "")
            started = False
            self.status.ddl += 1
        self._tables.clear()
        conn = self._open()
        conn.begin()
        with conn.cursor() as cur:
            self._write_positions(cur, t)
            cur.execute(f"DELETE FROM {DDL_TABLE} WHERE source = %s", (self.source,))
        conn.commit()
        self._pending_ddl = None
        return True

    def _run_ddl(self, t: _Pending, h: _Held, db: str, sql: str, step: int,
                 tolerate: bool) -> None:
        import pymysql  # noqa: PLC0415

        conn = self._open()
        timeout = getattr(conn, "_read_timeout", None)
        try:
            if db:
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"USE {_ident(db)}")
                except pymysql.MySQLError as exc:
                    if _code(exc) != 1049:
                        raise
                    self._close_conn()  # unknown database: run it with none selected
                    conn = self._open()
            conn._read_timeout = None  # DDL may take long: no read timeout
            with conn.cursor() as cur:
                cur.execute(sql)
        except pymysql.MySQLError as exc:
            if _transient(exc):
                raise
            code = _code(exc)
            if tolerate and code in ALREADY_APPLIED:
                return  # it ran before the crash
            with _quiet():
                self._set_marker(t.id, step, False, sql)  # it did not run
            raise ApplyError(f"{self.target}: transaction {t.id}: DDL {_short(sql, 120)}: "
                             f"{_server_text(exc)}; the target drifted from the source"
                             ) from None
        finally:
            if self._conn is conn:
                conn._read_timeout = timeout


class _quiet:  # noqa: N801
    """``with _quiet():`` ignore any exception (best-effort cleanup)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _fit(text: str, limit: int) -> str:
    """``text``, or when longer than ``limit`` its head and a hash of it."""
    if len(text) <= limit:
        return text
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[:limit - 17]}#{digest}"


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes | bytearray) else str(v)


def _table_of(h: _Held) -> tuple[str, str]:
    return h.raw.fields.get("schema", ""), h.raw.fields.get("table", "")


def _flavor(payload: dict[str, Any]) -> str | None:
    src = payload.get("source")
    flavor = src.get("flavor") if isinstance(src, dict) else None
    return flavor if flavor in ("mysql", "mariadb") else None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
