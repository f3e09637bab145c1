"""Apply the change messages of a broker sink to a MySQL/MariaDB server,
exactly once, in source commit order (``binlogkit apply --from``).

Messages are held by transaction until the ordering rule of
:mod:`binlogkit.cdc.broker_layout` lets one be applied
(:mod:`binlogkit.cdc.apply_order`); its messages are applied in ``seq``
order.

Row changes: one target transaction per source transaction, of the
statements :mod:`binlogkit.cdc.apply_sql` makes (values back from their JSON
forms by the target's column types). The session runs with
``time_zone='+00:00'`` (TIMESTAMPs are UTC text) and
``sql_mode='STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'``
(a value the target cannot hold is an error, not truncated; zero dates
pass). Tables must exist on the target: apply creates only those it sees a
CREATE TABLE for.

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
  deletion in one transaction. While a marker is there, other DDL
  transactions wait for its transaction (row changes go on where the
  ordering rule lets them). A statement failing with a server error sets
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

A transaction of both DDL and row changes (``CREATE TABLE ... SELECT``):
the statements run between markers as above, then the rows commit in the
transaction that writes the positions and removes the marker.

Not supported: partial JSON updates (``json_diffs``), and text columns whose
charset the sink did not know (written as base64 text).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from binlogkit.cdc.apply_errors import ApplyError, error_code, server_text, short, transient
from binlogkit.cdc.apply_order import Held, Holding, Pending, parse
from binlogkit.cdc.apply_sql import RowWriter, ident
from binlogkit.cdc.broker_readers import BrokerReader, RawMessage, ReaderReset, position_key

__all__ = ["ALREADY_APPLIED", "SCHEMA_SQL", "Applier", "ApplyError", "ApplyStatus"]

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

_RECENT = 10000


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
    caught_up: bool = False  # the broker had nothing more and nothing is held
    started: float = field(default_factory=time.monotonic)

    def lag(self, now_ms: int | None = None) -> float | None:
        """Seconds from the last applied transaction's commit to now; 0 once
        caught up (as a replica's Seconds_Behind_Source when idle)."""
        if self.caught_up:
            return 0.0
        if not self.last_ts_ms:
            return None
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return max(0.0, (now - self.last_ts_ms) / 1000)

    def line(self, rate: float) -> str:
        lag = self.lag()
        lag_text = "-" if lag is None else f"{lag:.1f} s"
        return (f"applied {self.transactions} txns, {self.changes} changes "
                f"({rate:.0f}/s), lag {lag_text}, held {self.held}")


@dataclass(frozen=True)
class _Stored:
    key: tuple[int, ...]
    txn: str
    gtid: str = ""


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
        self.on_status = on_status
        self.status_every = status_every
        self.status = ApplyStatus()
        self.source = _fit(reader.source_id, 255)
        self._stop = threading.Event()
        self._conn: Any = None
        self.held = Holding(per_stream)
        self.rows = RowWriter(target, reader.display, self._cursor, insert_batch=insert_batch)
        self.positions: dict[str, _Stored] = {}
        self._to_ack: list[RawMessage] = []
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._shown = 0.0
        self._down_since: float | None = None
        self._delay = 0.1
        self._pending_ddl: tuple[str, int, bool] | None = None

    @property
    def flavor(self) -> str:
        """The target's: ``mysql`` or ``mariadb`` ("" before connecting)."""
        return self.rows.flavor

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
            raise ApplyError(f"{self.target}: {server_text(exc)}") from None
        self._with_target(self._load_state)
        quiet_since = time.monotonic()
        fetch_timeout = min(0.5, max(0.05, self.idle / 2))
        try:
            while not self._stop.is_set():
                try:
                    raws = self.reader.fetch(fetch_timeout, self.held.room,
                                             eager=self.held.partial)
                except ReaderReset:
                    self.held.clear()
                    quiet_since = time.monotonic()
                    continue
                now = time.monotonic()
                if raws or not self.reader.connected:
                    quiet_since = now
                for raw in raws:
                    self._hold(raw)
                while not self._stop.is_set():
                    t = self._ready()
                    if t is None:
                        break
                    self._apply(t)
                self._flush_acks()
                self.status.caught_up = (not raws and not self.held.txns
                                         and self.reader.connected)
                self._check_stuck()
                self._report()
                if not self.follow and now - quiet_since >= self.idle:
                    if not self.held.txns:
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
        self.status.held = self.held.count
        now = time.monotonic()
        if self.on_status is not None and (force or now - self._shown >= self.status_every):
            self._shown = now
            self.on_status(self.status)

    # -------------------------------------------------------------- holding

    def _hold(self, raw: RawMessage) -> None:
        self.status.seen += 1
        h = parse(raw, self.reader.display)
        stored = self.positions.get(raw.stream)
        snapshot = h.txn.startswith("snapshot:")
        same = stored is not None and (stored.txn, stored.gtid) == (h.txn, h.gtid)
        if (stored is not None and (h.key <= stored.key or (same and not snapshot))) \
                or (not snapshot and (h.txn, h.gtid) in self._recent):
            self._to_ack.append(raw)
            self.status.skipped += 1
            return
        self.held.add(h, self.reader.display)

    def _ready(self) -> Pending | None:
        marker = self._pending_ddl
        return self.held.ready(marker[0] if marker else None)

    def _flush_acks(self) -> None:
        if self._to_ack:
            acks, self._to_ack = self._to_ack, []
            self.reader.ack(acks)

    def _check_stuck(self) -> None:
        limit = self.reader.max_pending
        held = self.held.count
        if limit is not None and held >= limit and self._ready() is None:
            raise ApplyError(f"{self.reader.display}: {held} messages held and no transaction "
                             f"complete ({self._incomplete_text()}); raise --max-pending")

    def _incomplete_text(self) -> str:
        text = self.held.incomplete_text()
        marker = self._pending_ddl
        if marker and any(t.ddl and t.id != marker[0] for t in self.held.txns.values()):
            text += (f"; DDL waits for the unfinished DDL of transaction {marker[0]} "
                     f"({DDL_TABLE})")
        return text

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
            self.rows.flavor = "mariadb" if row and "mariadb" in str(row[0]).lower() \
                else "mysql"
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
                if not transient(exc):
                    self._rollback()
                    import pymysql  # noqa: PLC0415

                    if isinstance(exc, pymysql.MySQLError):
                        raise ApplyError(f"{self.target}: {server_text(exc)}") from None
                    raise
                self._close_conn()
                self.rows.tables.clear()
                self._wait_target(exc)

    def _wait_target(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.status.target_retries += 1
        if self._down_since is None:
            self._down_since = now
        if self.retry_for is not None and now - self._down_since >= self.retry_for:
            raise ApplyError(f"{self.target}: unreachable for {now - self._down_since:.1f} s, "
                             f"giving up: {server_text(exc)}")
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

    def _already(self, t: Pending, rows: dict[str, _Stored]) -> bool:
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

    def _write_positions(self, cur: Any, t: Pending) -> None:
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

    def _apply(self, t: Pending) -> None:
        msgs = t.ordered()
        ddl = [h for h in msgs if h.op == "ddl"]
        rows = [h for h in msgs if h.op != "ddl"]
        applied = self._with_target(lambda: self._apply_ddl(t, ddl, rows) if ddl
                                    else self._apply_rows(t, msgs))
        self.held.pop(t)
        gtid = msgs[0].gtid
        for s, h in t.last().items():
            self.positions[s] = _Stored(h.key, t.id, gtid)
        if not t.id.startswith("snapshot:"):
            self._recent[(t.id, gtid)] = None
            if len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        # acknowledged with the others applied from this fetch (the stored
        # positions, not the acks, make it exactly once)
        self._to_ack += [h.raw for h in msgs] + t.dups
        if applied:
            self.status.transactions += 1
            self.status.last_txn = t.id
            self.status.last_ts_ms = _int(msgs[-1].raw.fields.get("ts_ms")) \
                or self.status.last_ts_ms
            self.status.changes += len(rows)
        else:
            self.status.skipped += len(msgs)

    def _check_marker(self, t: Pending, marker: tuple[str, int, bool] | None
                      ) -> tuple[str, int, bool] | None:
        if marker is not None and marker[0] != t.id:
            raise ApplyError(f"{self.target}: {DDL_TABLE} holds an unfinished DDL of "
                             f"transaction {marker[0]}, but the next transaction is {t.id}")
        return marker

    def _apply_rows(self, t: Pending, msgs: list[Held]) -> bool:
        conn = self._open()
        conn.begin()
        with conn.cursor() as cur:
            if self._already(t, self._stored_rows(cur, sorted(t.counts), lock=True)):
                conn.rollback()
                return False
            self.rows.write(cur, t, msgs)
            self._write_positions(cur, t)
        conn.commit()
        return True

    # -------------------------------------------------------------- DDL

    def _apply_ddl(self, t: Pending, msgs: list[Held], rows: list[Held]) -> bool:
        """The DDL statements of ``t`` between markers, then, in one target
        transaction, its row changes (CREATE TABLE ... SELECT), its positions
        and the marker's removal."""
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
        marker = self._pending_ddl = self._marker()
        with self._cursor() as cur:
            if self._already(t, self._stored_rows(cur, sorted(t.counts), lock=False)):
                return False
        self._check_marker(t, marker)
        step, started = (marker[1], marker[2]) if marker else (0, False)
        for i in range(step, len(stmts)):
            db, sql = stmts[i]
            tolerate = started and i == step
            self._set_marker(t.id, i, True, sql)
            self._run_ddl(t, msgs[0], db, sql, i, tolerate)
            self._set_marker(t.id, i + 1, False, stmts[i + 1][1] if i + 1 < len(stmts) else "")
            started = False
            self.status.ddl += 1
        self.rows.tables.clear()
        conn = self._open()
        conn.begin()
        with conn.cursor() as cur:
            if rows:
                self.rows.write(cur, t, rows)
            self._write_positions(cur, t)
            cur.execute(f"DELETE FROM {DDL_TABLE} WHERE source = %s", (self.source,))
        conn.commit()
        self._pending_ddl = None
        return True

    def _run_ddl(self, t: Pending, h: Held, db: str, sql: str, step: int,
                 tolerate: bool) -> None:
        import pymysql  # noqa: PLC0415

        conn = self._open()
        timeout = getattr(conn, "_read_timeout", None)
        try:
            if db:
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"USE {ident(db)}")
                except pymysql.MySQLError as exc:
                    if error_code(exc) != 1049:
                        raise
                    self._close_conn()  # unknown database: run it with none selected
                    conn = self._open()
            conn._read_timeout = None  # DDL may take long: no read timeout
            with conn.cursor() as cur:
                cur.execute(sql)
        except pymysql.MySQLError as exc:
            if transient(exc):
                raise
            code = error_code(exc)
            if tolerate and code in ALREADY_APPLIED:
                return  # it ran before the crash
            with _quiet():
                self._set_marker(t.id, step, False, sql)  # it did not run
            raise ApplyError(f"{self.target}: transaction {t.id}: DDL {short(sql, 120)}: "
                             f"{server_text(exc)}; the target drifted from the source"
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
