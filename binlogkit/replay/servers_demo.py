"""The drift demo on real servers: a source and a replica of one flavor,
started by the lab harness and connected with real replication (CHANGE
MASTER TO / CHANGE REPLICATION SOURCE TO, GTID auto-positioning).

Each format gets its own database. Once the table has replicated, the
replica drops ``idx_a`` with ``sql_log_bin=0`` (a replica that lacks an
index the source has: its optimizer walks another path). The source then
runs the workload with ``SET SESSION binlog_format`` = the format, and the
two servers' tables are checksummed chunk by chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from binlogkit.lab import Server, start_server
from binlogkit.replay.checksum import diff, server_checksum
from binlogkit.replay.demo import (
    CHUNK,
    FORMATS,
    FormatResult,
    chunk_json,
    demo_rows,
    demo_schema,
    demo_workload,
    table_digest,
)


def _one(server: Server, sql: str) -> Any:
    rows = server.execute(sql)
    return rows[0][0] if rows else None


def start_pair(flavor: str) -> tuple[Server, Server]:
    """A source and a replica replicating from it (both with binary logs)."""
    source = start_server(flavor, options={"server_id": "1"})  # type: ignore[arg-type]
    try:
        replica = start_server(flavor, options={"server_id": "2"})  # type: ignore[arg-type]
    except Exception:
        source.stop(remove_data=True)
        raise
    try:
        if flavor == "mariadb":
            replica.execute([
                f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={source.port},"
                " MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos",
                "START SLAVE"])
        else:
            replica.execute([
                f"CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={source.port},"
                " SOURCE_USER='root', SOURCE_PASSWORD='', SOURCE_AUTO_POSITION=1,"
                " GET_SOURCE_PUBLIC_KEY=1",
                "START REPLICA"])
    except Exception:
        stop_pair(source, replica)
        raise
    return source, replica


def stop_pair(source: Server, replica: Server) -> None:
    for srv in (replica, source):
        try:
            srv.stop(remove_data=True)
        except Exception:  # noqa: BLE001,S110 (best effort: the other must stop too)
            pass


def wait_caught_up(source: Server, replica: Server, flavor: str, timeout: float = 60.0) -> None:
    """Block until the replica has applied everything the source has logged."""
    if flavor == "mariadb":
        pos = _one(source, "SELECT @@gtid_binlog_pos")
        done = _one(replica, f"SELECT MASTER_GTID_WAIT('{pos}', {timeout})")
    else:
        gtids = _one(source, "SELECT @@gtid_executed")
        done = _one(replica, f"SELECT WAIT_FOR_EXECUTED_GTID_SET('{gtids}', {timeout})")
    if done not in (0, "0"):
        status = replica.execute("SHOW SLAVE STATUS" if flavor == "mariadb"
                                 else "SHOW REPLICA STATUS")
        raise RuntimeError(f"the replica did not catch up in {timeout:.0f} s: {status}")


def _rows(server: Server, db: str) -> dict[int, dict[str, Any]]:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {db}.t ORDER BY id")
            names = [d[0] for d in cur.description]
            return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    finally:
        conn.close()


def _checksum(server: Server, db: str, boundaries: Any = None) -> Any:
    conn = server.connect()
    try:
        return {f"{db}.t": server_checksum(conn, db, "t", chunk_size=CHUNK,
                                           boundaries=boundaries)}
    finally:
        conn.close()


def run_server_demo(flavor: str = "mariadb",
                    progress: Callable[[str], None] | None = None) -> list[FormatResult]:
    """Start a source and a replica, run the demo once per format, stop them."""
    say = progress or (lambda _msg: None)
    say(f"starting a {flavor} source and replica ...")
    source, replica = start_pair(flavor)
    try:
        results = []
        for fmt in FORMATS:
            db = f"demo_{fmt}"
            conn = source.connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(f"SET SESSION binlog_format = '{fmt.upper()}'")
                    for sql in demo_schema(db):
                        cur.execute(sql)
                    wait_caught_up(source, replica, flavor)
                    replica.execute(["SET SESSION sql_log_bin = 0",
                                     f"ALTER TABLE {db}.t DROP INDEX idx_a"])
                    for sql in demo_rows(db) + demo_workload(db):
                        cur.execute(sql)
                        time.sleep(0.001)  # SYSDATE(6) on the replica is later anyway
            finally:
                conn.close()
            wait_caught_up(source, replica, flavor)
            a = _checksum(source, db)
            b = _checksum(replica, db, a[f"{db}.t"].boundaries)
            ra, rb = _rows(source, db), _rows(replica, db)
            rows = []
            for k in sorted(set(ra) | set(rb)):
                if ra.get(k) != rb.get(k):
                    cols = sorted(c for c in (ra.get(k) or rb.get(k) or {})
                                  if (ra.get(k) or {}).get(c) != (rb.get(k) or {}).get(c))
                    rows.append({"key": [k], "columns": cols,
                                 "source": _plain(ra.get(k)), "replica": _plain(rb.get(k))})
            res = FormatResult(fmt, table_digest(a), table_digest(b), len(rows),
                               chunks=chunk_json(diff(a, b)), rows=rows)
            results.append(res)
            say(f"{fmt}: {res.diverged_rows} rows differ")
        return results
    finally:
        stop_pair(source, replica)


def _plain(row: Any) -> Any:
    if row is None:
        return None
    return {k: (v if isinstance(v, int | float | str) or v is None else str(v))
            for k, v in row.items()}
