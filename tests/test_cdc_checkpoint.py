"""Durable checkpoints, consistent snapshots and the resync checks
(binlogkit.cdc.checkpoint, binlogkit.cdc.snapshot)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from binlogkit.cdc.checkpoint import CheckpointError, FileCheckpointStore, SqliteCheckpointStore
from binlogkit.cdc.model import Checkpoint, Position, Txn
from binlogkit.cdc.snapshot import needs_resync, purged, take_snapshot
from binlogkit.codec.columns import Schemas
from binlogkit.codec.jsonb import Json
from binlogkit.codec.types import EventType
from binlogkit.protocol.blocking import BinlogStream, Discard
from binlogkit.protocol.replica import Start, StreamError
from binlogkit.protocol.rows import ROW_STREAM_TYPES, stream_row_events

# --------------------------------------------------------------- checkpoints


def _checkpoint(n: int) -> Checkpoint:
    return Checkpoint(Position(f"binlog.{n:06d}", 4 + n, f"0-1-{n}"),
                      {"tables": {"d.t": ["id", "v"]}, "n": n, "pad": "x" * (n % 5000)},
                      f"txn-{n}" if n % 2 else None, "mariadb", "uuid-é")


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_round_trip(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "sub" / ("cp.json" if kind == "file" else "cp.db")
    store: Any = FileCheckpointStore(path) if kind == "file" else SqliteCheckpointStore(path)
    assert store.load() is None
    for n in (1, 2, 7):
        store.save(_checkpoint(n))
        assert store.load() == _checkpoint(n)
    # a new store object (a restart) reads what was saved
    again: Any = FileCheckpointStore(path) if kind == "file" else SqliteCheckpointStore(path)
    assert again.load() == _checkpoint(7)
    assert again.load().to_json() == _checkpoint(7).to_json()
    if kind == "file":
        assert [p.name for p in path.parent.iterdir()] == ["cp.json"]  # no temp files left
        assert json.loads(path.read_text())["version"] == 1


def test_sqlite_names_are_separate(tmp_path: Path) -> None:
    a = SqliteCheckpointStore(tmp_path / "cp.db", name="a")
    b = SqliteCheckpointStore(tmp_path / "cp.db", name="b")
    a.save(_checkpoint(1))
    assert b.load() is None
    b.save(_checkpoint(2))
    assert (a.load(), b.load()) == (_checkpoint(1), _checkpoint(2))
    a.close()
    b.close()


@pytest.mark.parametrize("content", [b'{"position": {"file": "binlog.000001", "po',
                                     b"\x00\x00\x00\x00", b"[1, 2]",
                                     b'{"version": 1, "position": {"file": "f"}}'])
def test_corrupt_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        FileCheckpointStore(path).load()
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_corrupt_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "cp.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CheckpointError) as info:
        SqliteCheckpointStore(path).load()
    assert str(path) in str(info.value) and "\n" not in str(info.value)


_WRITER = textwrap.dedent("""
    import sys
    from binlogkit.cdc.checkpoint import FileCheckpointStore, SqliteCheckpointStore
    from tests.test_cdc_checkpoint import _checkpoint
    kind, path, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = FileCheckpointStore(path) if kind == "file" else SqliteCheckpointStore(path)
    n = start
    while True:
        store.save(_checkpoint(n))
        if n == start:
            print("ready", flush=True)
        n += 1
""")


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_killed_writer_never_leaves_a_torn_checkpoint(tmp_path: Path, kind: str) -> None:
    """A writer saving in a loop is SIGKILLed at random moments (mid-write,
    between write and rename, ...): what loads is always a complete
    checkpoint, and never older than the last one before the kill."""
    path = tmp_path / ("cp.json" if kind == "file" else "cp.db")
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = random.Random(1)
    last = 0
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, kind, str(path), str(last + 1)],
                                stdout=subprocess.PIPE, env=env, cwd=root)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        store: Any = FileCheckpointStore(path) if kind == "file" else SqliteCheckpointStore(path)
        cp = store.load()
        assert cp is not None
        n = cp.schema_history["n"]
        assert cp == _checkpoint(n)  # complete, self-consistent
        assert n > last  # "ready" came after save(last + 1) returned
        last = n
        if kind == "sqlite":
            store.close()


# ------------------------------------------------------------------ servers


def _apply(state: dict[tuple[Any, ...], dict[str, Any]], key: tuple[str, ...], op: str,
           before: dict[str, Any] | None, after: dict[str, Any] | None, where: str) -> None:
    """Apply one change strictly: an insert of a present key is an overlap,
    an update or delete of a missing (or different) row is a gap."""
    if before is not None:
        k = tuple(before[c] for c in key)
        assert state.get(k) == before, f"{where}: {op} of {k}: have {state.get(k)}, " \
                                       f"before image {before} (a gap or an overlap)"
        del state[k]
    if after is not None:
        k = tuple(after[c] for c in key)
        assert k not in state, f"{where}: {op} of {k} already present (an overlap)"
        state[k] = after


def _stream_changes(srv: Any, start: Start, db: str, schemas: Schemas) -> list[tuple[Any, ...]]:
    """(table, op, before, after) of every row change in ``db`` from ``start``
    to the end of the binlog."""
    out: list[tuple[Any, ...]] = []
    # ANNOTATE_ROWS too: ReplicaProtocol.dump_packet sends a MariaDB GTID dump
    # only when it asks for them (without, it would parse the GTIDs as MySQL's)
    types = ROW_STREAM_TYPES | {EventType.ANNOTATE_ROWS}
    with BinlogStream(srv.connect, start, flavor=srv.flavor, blocking=False, types=types,
                      reconnect=False) as stream:
        for rev in stream_row_events(stream, schemas=schemas):
            assert not isinstance(rev, Discard)
            if rev.schema != db:
                continue
            op = rev.type_name.split("_")[0].lower()
            for row in rev.rows:
                out.append((rev.table, op, row.before, row.after))
    return out


_KEYS = {"t": ("id",), "c": ("a", "b")}


def _writer(srv: Any, db: str, stop: threading.Event, counts: list[int], seed: int) -> None:
    rng = random.Random(seed)
    conn = srv.connect()
    next_id = 1000
    try:
        with conn.cursor() as cur:
            while not stop.is_set():
                kind = rng.random()
                if kind < 0.35:
                    next_id += 1
                    cur.execute(f"INSERT INTO {db}.t (id, v, s) VALUES (%s, %s, %s)",
                                (next_id, rng.randint(0, 99), f"new{next_id}"))
                elif kind < 0.6:
                    cur.execute(f"UPDATE {db}.t SET v = v + 1, s = CONCAT(s, 'u') WHERE id = %s",
                                (rng.randint(1, next_id),))
                elif kind < 0.75:
                    cur.execute(f"DELETE FROM {db}.t WHERE id = %s", (rng.randint(1, next_id),))
                else:  # a transaction over both tables, touching many rows
                    cur.execute("BEGIN")
                    cur.execute(f"UPDATE {db}.t SET v = v - 1 WHERE id BETWEEN %s AND %s",
                                (lo := rng.randint(1, next_id), lo + 20))
                    b = f"k{rng.randint(0, 60)}"
                    cur.execute(f"INSERT INTO {db}.c (a, b, n) VALUES (%s, %s, 1) "
                                "ON DUPLICATE KEY UPDATE n = n + 1", (rng.randint(0, 3), b))
                    cur.execute(f"DELETE FROM {db}.c WHERE a = %s AND b = %s",
                                (rng.randint(0, 3), f"k{rng.randint(0, 60)}"))
                    cur.execute("COMMIT")
                counts[0] += 1
    finally:
        conn.close()


@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_snapshot_then_stream_reproduces_tables(flavor: str, request: pytest.FixtureRequest
                                                ) -> None:
    """Snapshot rows + the binlog from the snapshot's position, applied in
    order (strictly: no insert of a present row, no change of a missing one),
    give exactly the final tables, while a writer commits throughout."""
    srv = request.getfixturevalue(f"{flavor}_server")
    db = f"cdcsnap_{uuid.uuid4().hex[:8]}"
    srv.execute([f"CREATE DATABASE {db}",
                 f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(200))",
                 f"CREATE TABLE {db}.c (a INT, b VARCHAR(10), n INT, PRIMARY KEY (a, b))",
                 f"CREATE TABLE {db}.skipped (id INT PRIMARY KEY)",
                 f"INSERT INTO {db}.skipped VALUES (1)"])
    srv.execute([f"INSERT INTO {db}.t VALUES " + ",".join(
        f"({i}, {i % 7}, 's{i}')" for i in range(1, 301))])
    stop, counts = threading.Event(), [0]
    writer = threading.Thread(target=_writer, args=(srv, db, stop, counts, 7))
    writer.start()
    conn = srv.connect()
    try:
        while counts[0] < 50:
            time.sleep(0.01)
        position, batches = take_snapshot(conn, flavor, batch_rows=23,
                                          include=lambda d, t: d == db and t != "skipped")
        at_snapshot = counts[0]
        txns: list[Txn] = []
        for txn in batches:  # slowly: the writer commits between batches
            txns.append(txn)
            time.sleep(0.004)
        while counts[0] < at_snapshot + 100:
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join()
    assert {t.id.split(":")[1] for t in txns} == {f"{db}.t", f"{db}.c"}
    assert txns[0].id == f"snapshot:{db}.c:0" and all(t.snapshot for t in txns)
    assert all(t.end == position for t in txns)
    state: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {"t": {}, "c": {}}
    for txn in txns:
        for ch in txn.changes:
            assert ch.op == "r" and ch.source.snapshot and ch.source.file == position.file
            _apply(state[ch.source.table], _KEYS[ch.source.table], "r", None, ch.after,
                   txn.id)
    schemas = Schemas.from_server(conn, [db])
    changes = _stream_changes(srv, Start(position.file, position.pos), db, schemas)
    assert len(changes) > 50  # the writer did commit after the snapshot
    for table, op, before, after in changes:
        _apply(state[table], _KEYS[table], op, before, after, f"binlog {op}")
    for table, key in _KEYS.items():
        names = ("id", "v", "s") if table == "t" else ("a", "b", "n")
        rows = [dict(zip(names, r, strict=True))
                for r in srv.execute(f"SELECT {', '.join(names)} FROM {db}.{table}")]
        assert state[table] == {tuple(r[k] for k in key): r for r in rows}, table
    # the GTIDs name the same point: streaming from them gives the same changes
    assert position.gtids
    assert _stream_changes(srv, Start(gtids=position.gtids), db, schemas) == changes
    conn.close()
    srv.execute(f"DROP DATABASE {db}")


_TYPES = {
    "common": [
        ("ti", "TINYINT UNSIGNED", "200"), ("bi", "BIGINT UNSIGNED", "18446744073709551615"),
        ("i", "INT", "-5"), ("d", "DECIMAL(10,2)", "-123.45"), ("f", "FLOAT", "0.1"),
        ("db", "DOUBLE", "0.1"), ("da", "DATE", "'2024-02-29'"),
        ("dt", "DATETIME(3)", "'2024-01-02 03:04:05.5'"),
        ("ts", "TIMESTAMP(6) NULL", "'2024-06-01 12:00:00.25'"),
        ("tm", "TIME(2)", "'-800:59:59.5'"),
        ("y", "YEAR", "2024"), ("bt", "BIT(10)", "b'1010101010'"), ("ch", "CHAR(5)", "'ab'"),
        ("vc", "VARCHAR(20) CHARACTER SET latin1", "'café'"),
        ("tx", "TEXT CHARACTER SET utf8mb4", "'日本'"),
        ("bn", "BINARY(4)", "x'0102'"), ("vb", "VARBINARY(10)", "x'00ff00'"),
        ("bl", "BLOB", "x'deadbeef'"), ("e", "ENUM('a','b','c')", "'b'"),
        ("st", "SET('x','y','z')", "'x,z'"), ("n", "INT", "NULL"),
    ],
    "mysql": [("j", "JSON", """'{"a": 1, "b": [true, null, 1.5, "x"]}'"""),
              ("vec", "VECTOR(3)", "STRING_TO_VECTOR('[1.5, -2, 3]')")],
    "mariadb": [("j", "JSON", """'{"a": 1}'""")],
}


@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_snapshot_values_match_row_decoding(flavor: str, request: pytest.FixtureRequest
                                            ) -> None:
    """Each column type: the snapshot's value equals what the binlog row
    event of the same row decodes to."""
    srv = request.getfixturevalue(f"{flavor}_server")
    db = f"cdcval_{uuid.uuid4().hex[:8]}"
    cols = _TYPES["common"] + _TYPES[flavor]
    srv.execute([f"CREATE DATABASE {db}", f"CREATE TABLE {db}.v (id INT PRIMARY KEY, "
                 + ", ".join(f"{n} {t}" for n, t, _ in cols) + ")"])
    conn = srv.connect()
    before, it = take_snapshot(conn, flavor, include=lambda d, t: d == db)
    assert list(it) == []
    srv.execute(["SET SESSION time_zone = '+03:00'",
                 f"INSERT INTO {db}.v VALUES (1, " + ", ".join(v for _, _, v in cols) + ")",
                 f"INSERT INTO {db}.v (id) VALUES (2)"])
    position, it = take_snapshot(conn, flavor, include=lambda d, t: d == db)
    snap: list[dict[str, Any]] = [ch.after or {} for txn in it for ch in txn.changes]
    schemas = Schemas.from_server(conn, [db])
    logged = [after for _, _, _, after in _stream_changes(
        srv, Start(before.file, before.pos), db, schemas)]
    assert len(snap) == 2 and len(logged) == 2
    if flavor == "mariadb":
        # binlog_row_metadata=NO_LOG and information_schema has no charset for
        # BINARY(n): the row decoder cannot tell it from CHAR and leaves the
        # trailing 0x00 stripped; the snapshot has them, as SELECT does
        assert logged[0]["bn"] == b"\x01\x02"
        logged[0]["bn"] = b"\x01\x02\x00\x00"
    for a, b in zip(snap, logged, strict=True):
        assert {k: (v, b.get(k)) for k, v in a.items() if v != b.get(k)} == {}
    assert snap == logged
    row = snap[0]
    assert row["ts"] == "2024-06-01 09:00:00.250000" and row["tm"] == "-800:59:59.50"
    assert row["dt"] == "2024-01-02 03:04:05.500" and row["d"] == Decimal("-123.45")
    assert row["bt"] == 0b1010101010 and row["bn"] == b"\x01\x02\x00\x00"
    if flavor == "mysql":
        assert isinstance(row["j"], Json) and row["vec"] == (1.5, -2.0, 3.0)
    # the session's time zone is back
    with conn.cursor() as cur:
        cur.execute("SELECT @@session.time_zone")
        assert cur.fetchone()[0] != "+00:00"
    conn.close()
    srv.execute(f"DROP DATABASE {db}")


# ------------------------------------------------------------------- resync


def test_needs_resync() -> None:
    purged_msg = ("Cannot replicate because the source purged required binary logs. "
                  "Replicate the missing transactions from elsewhere, or provision a new "
                  "replica from backup.")
    assert needs_resync(StreamError(1236, purged_msg, "HY000"))
    assert needs_resync(StreamError(1236, "Could not find first log file name in binary "
                                          "log index file"))
    wrapped = RuntimeError("stream failed")
    wrapped.__cause__ = StreamError(1236, "Could not find GTID state requested by slave")
    assert needs_resync(wrapped)
    assert not needs_resync(StreamError(1236, "log event entry exceeded max_allowed_packet; "
                                              "Increase max_allowed_packet on source"))
    assert not needs_resync(StreamError(1045, "Access denied"))
    assert not needs_resync(OSError("connection reset"))


@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_purged_positions(flavor: str, server_factory: Any) -> None:
    """PURGE BINARY LOGS on a server of its own: the old position is purged
    (and streaming from it fails with a resync error); the current one is not."""
    srv = server_factory(flavor, binlog_cache_size=65536)
    conn = srv.connect()
    srv.execute(["CREATE DATABASE IF NOT EXISTS pg", "CREATE TABLE IF NOT EXISTS pg.t (i INT)",
                 "INSERT INTO pg.t VALUES (1)"])
    old, it = take_snapshot(conn, flavor, include=lambda d, t: d == "pg")
    list(it)
    srv.execute(["INSERT INTO pg.t VALUES (2)"])
    assert not purged(conn, old) and not purged(conn, old, flavor)
    srv.flush_logs()
    srv.execute(["INSERT INTO pg.t VALUES (3)"])
    srv.flush_logs()
    now, it = take_snapshot(conn, flavor, include=lambda d, t: d == "pg")
    list(it)
    srv.execute([f"PURGE BINARY LOGS TO '{now.file}'"])
    assert purged(conn, old)
    assert purged(conn, Position("", 4, old.gtids))  # by GTIDs alone
    assert purged(conn, Position(old.file, old.pos))  # by file alone
    assert not purged(conn, now) and not purged(conn, Position("", 4, now.gtids))
    assert not purged(conn, Position(now.file, now.pos))
    for start in (Start(old.file, old.pos), Start(gtids=old.gtids)):
        with pytest.raises(StreamError) as info:
            _stream_changes(srv, start, "pg", Schemas())
        assert info.value.code == 1236 and needs_resync(info.value), info.value
    assert _stream_changes(srv, Start(now.file, now.pos), "pg", Schemas()) == []
    conn.close()


@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_snapshot_tables_without_primary_key(flavor: str, request: pytest.FixtureRequest
                                             ) -> None:
    """A UNIQUE NOT NULL index orders the batches; a table with no usable key
    is streamed in one unbuffered SELECT; both in batches of ``batch_rows``."""
    srv = request.getfixturevalue(f"{flavor}_server")
    db = f"cdcnk_{uuid.uuid4().hex[:8]}"
    srv.execute([f"CREATE DATABASE {db}",
                 f"CREATE TABLE {db}.uk (v INT, u VARCHAR(5) NOT NULL, UNIQUE KEY (u))",
                 f"CREATE TABLE {db}.nk (x INT, y INT, UNIQUE KEY (y))",
                 f"INSERT INTO {db}.uk VALUES " + ",".join(f"({i}, 'u{i:02d}')"
                                                           for i in range(10)),
                 f"INSERT INTO {db}.nk VALUES (1, NULL), (1, NULL), (2, 3), (4, 5), (6, 7)"])
    conn = srv.connect()
    _, it = take_snapshot(conn, flavor, include=lambda d, t: d == db, batch_rows=3)
    txns = list(it)
    assert [t.id for t in txns] == [f"snapshot:{db}.nk:0", f"snapshot:{db}.nk:1",
                                    *(f"snapshot:{db}.uk:{n}" for n in range(4))]
    uk = [ch.after for t in txns if ".uk:" in t.id for ch in t.changes]
    assert uk == [{"v": i, "u": f"u{i:02d}"} for i in range(10)]  # in key order
    nk = sorted((ch.after or {})["x"] for t in txns if ".nk:" in t.id for ch in t.changes)
    assert nk == [1, 1, 2, 4, 6]
    conn.close()
    srv.execute(f"DROP DATABASE {db}")
