"""A consistent snapshot of a server's tables, for a full resync when the
binlog a consumer needs is gone, and the checks that tell when that is.

:func:`take_snapshot` opens a REPEATABLE READ transaction with a consistent
snapshot and reads the binlog position consistent with it: every
transaction committed before the position is in the snapshot, none after it
is. Streaming from that position (file/pos, or the GTIDs) after applying the
snapshot rows reproduces the tables: no gap, no overlap.

How the position is made consistent with the snapshot:

- **MariaDB**: ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` makes the binary
  log take part in the snapshot (MariaDB's group commit orders engine commits
  with the binlog), and the status variables ``binlog_snapshot_file`` /
  ``binlog_snapshot_position`` give the binlog position that corresponds to
  it, whatever commits afterwards. ``BINLOG_GTID_POS(file, pos)`` turns it
  into a GTID position. No lock is taken.
- **MySQL**: upstream MySQL has no such variables (they are a
  MariaDB/Percona Server extension). ``performance_schema.log_status`` gives
  the binlog file/position and ``gtid_executed`` consistent *with each other*
  at the moment the table is read, not with a transaction's read view, so a
  commit between ``START TRANSACTION`` and the query would be missed or
  doubled. So the snapshot is started under the global read lock:
  ``FLUSH TABLES WITH READ LOCK`` (waits for running commits, blocks new
  ones), ``START TRANSACTION WITH CONSISTENT SNAPSHOT``, ``SHOW BINARY LOG
  STATUS`` (``SHOW MASTER STATUS`` before 8.2: file, position,
  Executed_Gtid_Set), ``UNLOCK TABLES``. The lock is held for those three
  statements only; it needs the RELOAD privilege (and REPLICATION CLIENT).
  FLUSH TABLES waits for long-running statements, and writes wait behind it
  (bounded by the session's ``lock_wait_timeout``).

Rows come in primary-key order, ``batch_rows`` at a time, by keyset
pagination (``WHERE (pk...) > (last...) ORDER BY pk... LIMIT n``); a table
without a primary key uses its first UNIQUE index over NOT NULL columns, or
else is streamed in one unbuffered SELECT. Values are what binlog row
decoding (:mod:`binlogkit.codec.rowcodec`) gives for the same row, with
column names as keys:

- integers, YEAR: ``int``; BIT: ``int``; DECIMAL: ``Decimal``; DOUBLE:
  ``float``; FLOAT: the float32 value widened to ``float`` (as logged);
- DATE, TIME, DATETIME: ``str`` as the server prints it, with the column's
  fraction digits (read as ``CAST(col AS CHAR)``: zero dates and long or
  negative TIMEs included); TIMESTAMP: the same in UTC (the session's
  ``time_zone`` is ``'+00:00'`` during the snapshot, then restored);
- text, ENUM, SET: ``str``; binary strings, BLOB, GEOMETRY: ``bytes``;
- MySQL JSON: :class:`~binlogkit.codec.jsonb.Json` made from the parsed text
  (equal to the logged value except for opaque scalars: a DECIMAL or
  temporal inside a document becomes a number or a string); MariaDB JSON:
  ``str``; MySQL VECTOR: ``tuple[float, ...]``;
- MariaDB UUID, INET4, INET6: ``str`` (as the row decoder gives when a
  schema names the type).

:func:`needs_resync` says whether a stream error means the position is gone
from the server; :func:`purged` checks a position before streaming.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.cursors

from binlogkit.cdc.model import Change, Position, Source, Txn
from binlogkit.codec.jsonb import Json
from binlogkit.protocol.replica import StreamError

__all__ = ["SnapshotError", "needs_resync", "purged", "take_snapshot"]

_SYSTEM_SCHEMAS = ("mysql", "sys", "performance_schema", "information_schema")
_TEMPORAL = frozenset({"date", "datetime", "timestamp", "time"})


class SnapshotError(Exception):
    """The snapshot cannot be taken (binary logging off, missing privilege, ...)."""


@dataclass(frozen=True)
class _Column:
    name: str
    data_type: str


@dataclass(frozen=True)
class _Table:
    schema: str
    name: str
    columns: tuple[_Column, ...]
    key: tuple[str, ...]  # ordering key: primary key, or a unique NOT NULL index; () if none


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


def _fetchall(conn: Any, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, tuple(args) if args else None)
        return list(cur.fetchall())


def _execute(conn: Any, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


def _code(exc: BaseException) -> int | None:
    if exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return None


def _binlog_status(conn: Any) -> tuple[str, int, str]:
    """(file, position, Executed_Gtid_Set) of SHOW BINARY LOG STATUS (MySQL)."""
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            try:
                cur.execute("SHOW BINARY LOG STATUS")
            except pymysql.err.ProgrammingError as exc:
                if _code(exc) != 1064:  # syntax error: before MySQL 8.2
                    raise
                cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
    except pymysql.err.MySQLError as exc:
        raise SnapshotError(f"cannot read the binlog position: {exc.args[-1]}") from exc
    if not row:
        raise SnapshotError("binary logging is not enabled on the server")
    gtids = _s(row.get("Executed_Gtid_Set") or "")
    return _s(row["File"]), int(row["Position"]), "".join(gtids.split())


def _mysql_position(conn: Any) -> Position:
    try:
        _execute(conn, "FLUSH TABLES WITH READ LOCK")
    except pymysql.err.MySQLError as exc:
        raise SnapshotError("FLUSH TABLES WITH READ LOCK failed (a consistent snapshot on "
                            f"MySQL needs the RELOAD privilege): {exc.args[-1]}") from exc
    try:
        _execute(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
        file, pos, gtids = _binlog_status(conn)
    finally:
        _execute(conn, "UNLOCK TABLES")  # releases the global read lock, not the snapshot
    return Position(file, pos, gtids)


def _mariadb_position(conn: Any) -> Position:
    _execute(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
    status = {_s(k).lower(): _s(v) for k, v in
              _fetchall(conn, "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")}
    file = status.get("binlog_snapshot_file", "")
    if not file:
        raise SnapshotError("binary logging is not enabled on the server "
                            "(binlog_snapshot_file is empty)")
    pos = int(status["binlog_snapshot_position"])
    rows = _fetchall(conn, "SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))
    gtids = _s(rows[0][0]) if rows and rows[0][0] is not None else ""
    return Position(file, pos, gtids)


def _tables(conn: Any, include: Callable[[str, str], bool] | None) -> list[_Table]:
    marks = ",".join(["%s"] * len(_SYSTEM_SCHEMAS))
    names = [(_s(db), _s(t)) for db, t in _fetchall(
        conn, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES"
        " WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')"
        f" AND TABLE_SCHEMA NOT IN ({marks}) ORDER BY TABLE_SCHEMA, TABLE_NAME",
        _SYSTEM_SCHEMAS)]
    names = [n for n in names if include is None or include(*n)]
    if not names:
        return []
    schemas = sorted({db for db, _ in names})
    smarks = ",".join(["%s"] * len(schemas))
    columns: dict[tuple[str, str], list[_Column]] = {}
    for db, t, col, dtype in _fetchall(
            conn, "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE"
            f" FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({smarks})"
            " ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION", schemas):
        columns.setdefault((_s(db), _s(t)), []).append(_Column(_s(col), _s(dtype).lower()))
    # unique indexes, their columns in order, and whether any of them is nullable
    indexes: dict[tuple[str, str], dict[str, list[tuple[int, str, bool]]]] = {}
    for db, t, index, seq, col, nullable in _fetchall(
            conn, "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME,"
            " NULLABLE FROM information_schema.STATISTICS"
            f" WHERE TABLE_SCHEMA IN ({smarks}) AND NON_UNIQUE = 0", schemas):
        if col is None:  # a functional key part (MySQL): not usable for keyset paging
            col, nullable = "", "YES"
        indexes.setdefault((_s(db), _s(t)), {}).setdefault(_s(index), []).append(
            (int(seq), _s(col), _s(nullable or "") == "YES"))
    out = []
    for db, t in names:
        cols = tuple(columns.get((db, t), ()))
        if not cols:
            continue
        key: tuple[str, ...] = ()
        candidates = indexes.get((db, t), {})
        order = sorted(candidates, key=lambda i: (i != "PRIMARY", i))
        for index in order:
            parts = sorted(candidates[index])
            if all(c and not nullable for _, c, nullable in parts):
                key = tuple(c for _, c, _ in parts)
                break
        out.append(_Table(db, t, cols, key))
    return out


def _converter(data_type: str) -> Callable[[Any], Any] | None:
    if data_type == "bit":
        return lambda v: int.from_bytes(v, "big") if isinstance(v, (bytes, bytearray)) else v
    if data_type == "float":
        return lambda v: struct.unpack("<f", struct.pack("<f", v))[0] if isinstance(
            v, float) else v
    if data_type == "json":
        return None  # MariaDB JSON is a LONGTEXT; MySQL's is handled per flavor
    if data_type == "vector":  # selected as HEX(): PyMySQL would decode it as ASCII
        return lambda v: struct.unpack(f"<{len(v) // 8}f", bytes.fromhex(_s(v)))
    return None


def _mysql_json(v: Any) -> Any:
    if v is None:
        return None
    return Json(value=json.loads(v if isinstance(v, str) else bytes(v).decode()))


def _select_list(table: _Table) -> str:
    parts = []
    for c in table.columns:
        if c.data_type in _TEMPORAL:
            parts.append(f"CAST({_q(c.name)} AS CHAR)")
        elif c.data_type == "vector":
            parts.append(f"HEX({_q(c.name)})")
        else:
            parts.append(_q(c.name))
    return ", ".join(parts)


def _read_table(conn: Any, table: _Table, batch_rows: int,
                convert: list[Callable[[Any], Any] | None]) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of converted rows (tuples in column order)."""
    names = [c.name for c in table.columns]

    def conv(row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(v if f is None or v is None else f(v) for f, v in zip(convert, row,
                                                                              strict=True))

    base = f"SELECT {_select_list(table)} FROM {_q(table.schema)}.{_q(table.name)}"
    if not table.key:
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(base)
            while True:
                rows = cur.fetchmany(batch_rows)
                if not rows:
                    return
                yield [conv(r) for r in rows]
    key_at = [names.index(k) for k in table.key]
    keys = ", ".join(_q(k) for k in table.key)
    order = f" ORDER BY {keys} LIMIT {int(batch_rows)}"
    if len(table.key) == 1:
        after = f" WHERE {keys} > %s"
    else:
        after = f" WHERE ({keys}) > ({', '.join(['%s'] * len(table.key))})"
    last: tuple[Any, ...] | None = None
    while True:
        rows = _fetchall(conn, base + (after if last is not None else "") + order, last or ())
        if not rows:
            return
        # the raw values continue the key (temporal ones are the text the server compares)
        last = tuple(rows[-1][i] for i in key_at)
        yield [conv(r) for r in rows]
        if len(rows) < batch_rows:
            return


def take_snapshot(conn: Any, flavor: str, *,
                  include: Callable[[str, str], bool] | None = None,
                  batch_rows: int = 1000) -> tuple[Position, Iterator[Txn]]:
    """Start a consistent snapshot on ``conn`` (a PyMySQL connection used by
    nothing else until the iterator is done) and return the binlog position
    it is consistent with and an iterator over the rows of every base table
    (system schemas excluded; ``include(schema, table)`` filters).

    Each batch of up to ``batch_rows`` rows of a table is one
    ``Txn(id=f"snapshot:{db}.{table}:{n}", snapshot=True, end=position)``
    (``n`` counts the table's batches from 0) whose changes are ``op="r"``
    reads with ``Source(snapshot=True)`` at ``position``. Stream from the
    returned position once every batch is applied. The snapshot transaction
    ends (COMMIT) when the iterator is exhausted or closed.
    """
    if flavor not in ("mysql", "mariadb"):
        raise ValueError(f"flavor {flavor!r}: 'mysql' or 'mariadb'")
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    rows = _fetchall(conn, "SELECT @@server_id, @@session.time_zone")
    server_id, time_zone = int(rows[0][0]), _s(rows[0][1])
    _execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # the next transaction
    _execute(conn, "SET SESSION time_zone = '+00:00'")  # TIMESTAMPs as the row decoder gives
    try:
        position = _mysql_position(conn) if flavor == "mysql" else _mariadb_position(conn)
        ts_ms = int(time.time() * 1000)
        tables = _tables(conn, include)
    except BaseException:
        _finish(conn, time_zone)
        raise

    def batches() -> Iterator[Txn]:
        try:
            for table in tables:
                convert = [_mysql_json if c.data_type == "json" and flavor == "mysql"
                           else _converter(c.data_type) for c in table.columns]
                names = [c.name for c in table.columns]
                for n, batch in enumerate(_read_table(conn, table, batch_rows, convert)):
                    changes = [Change("r", None, dict(zip(names, row, strict=True)),
                                      Source(flavor, server_id, position.file, position.pos,
                                             None, ts_ms, table.schema, table.name, i,
                                             snapshot=True))
                               for i, row in enumerate(batch)]
                    yield Txn(f"snapshot:{table.schema}.{table.name}:{n}", changes, position,
                              ts_ms=ts_ms, snapshot=True)
        finally:
            _finish(conn, time_zone)

    return position, batches()


def _finish(conn: Any, time_zone: str) -> None:
    try:
        _execute(conn, "COMMIT")
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = %s", (time_zone,))
    except pymysql.err.MySQLError:
        pass  # the connection is gone: so is the transaction


# ------------------------------------------------------------------ resync


_NOT_PURGED = ("max_allowed_packet", "checksum", "event too big", "bogus data")


def needs_resync(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is the server refusing a dump
    because the start position or GTIDs are no longer in its binlog (error
    1236: purged, or a file or GTID it does not know), so only a new snapshot
    can continue. False for other 1236 errors that a resync would not cure
    (an event larger than max_allowed_packet, a checksum failure)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, StreamError) and e.code == 1236:
            message = e.message.lower()
            return not any(m in message for m in _NOT_PURGED)
        e = e.__cause__ or e.__context__
    return False


def _binary_logs(conn: Any) -> list[str]:
    try:
        return [_s(r[0]) for r in _fetchall(conn, "SHOW BINARY LOGS")]
    except pymysql.err.MySQLError as exc:
        if _code(exc) == 1381:  # binary logging is not enabled
            return []
        raise


def purged(conn: Any, position: Position, flavor: str | None = None) -> bool:
    """True when the server no longer has the binlog ``position`` needs to
    resume (so a stream from it would fail with error 1236):

    - ``position.file`` set and not in ``SHOW BINARY LOGS``;
    - MySQL, ``position.gtids`` given or no file: some purged GTID is not in
      ``position.gtids`` (``NOT GTID_SUBSET(@@gtid_purged, gtids)``);
    - MariaDB, no file: some domain of the GTID state at the start of the
      oldest binlog (what was purged) is missing from ``position.gtids`` or
      has a larger sequence number there.

    ``flavor`` defaults to what ``SELECT VERSION()`` says.
    """
    if flavor is None:
        version = _fetchall(conn, "SELECT VERSION()")[0][0]
        flavor = "mariadb" if "mariadb" in _s(version).lower() else "mysql"
    logs = _binary_logs(conn)
    if not logs:
        return True
    if position.file and position.file not in logs:
        return True
    if flavor == "mysql":
        if position.gtids or not position.file:
            rows = _fetchall(conn, "SELECT GTID_SUBSET(@@GLOBAL.gtid_purged, %s)",
                             (position.gtids,))
            return not (rows and int(rows[0][0]) == 1)
        return False
    if position.file:
        return False
    rows = _fetchall(conn, "SELECT BINLOG_GTID_POS(%s, 4)", (logs[0],))
    oldest = _s(rows[0][0]) if rows and rows[0][0] is not None else ""
    have = _mariadb_domains(position.gtids)
    for domain, seq in _mariadb_domains(oldest).items():
        if have.get(domain, -1) < seq:
            return True
    return False


def _mariadb_domains(text: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in text.replace(" ", "").split(","):
        if part:
            domain, _server, seq = part.split("-")
            out[int(domain)] = int(seq)
    return out
