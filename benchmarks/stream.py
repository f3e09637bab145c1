#!/usr/bin/env python3
"""Streaming benchmark: a live server's binlog, dumped and decoded to row values
by binlogkit and by mysql-replication's ``BinLogStreamReader``, in one run.

A script, not a test. It starts ONE private server with
:func:`binlogkit.lab.servers.start_server` (MariaDB by default, ``--flavor
mysql`` for MySQL) with the options of ``benchmarks/rows.py``
(binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL), runs
that script's workload on it (its tables and statements, imported from it:
by default 336 000 row changes in one fresh binlog file), then, in
interleaved rounds, asks the server for a non-blocking binlog dump from the
start of that file and decodes every row event to values with

  (a) binlogkit: ``BinlogStream(connect, Start(file, 4), blocking=False,
      heartbeat=None, reconnect=False)`` (``binlogkit.protocol.blocking``)
      fed to ``binlogkit.protocol.rows.stream_row_events``; MySQL JSON
      documents, decoded lazily, are forced (``.value``) as in rows.py;
  (b) mysql-replication: ``BinLogStreamReader(connection_settings=...,
      server_id=..., blocking=False, only_events=[WriteRowsEvent,
      UpdateRowsEvent, DeleteRowsEvent], resume_stream=True, log_file=file,
      log_pos=4, verify_checksum=True, enable_logging=False)``, iterated to
      the end, ``event.rows`` read for every event (which decodes every
      value of every row).

Both connect, register and dump inside the timed pass, both verify every
event's CRC32, both end at the server's EOF (the end of its last binlog). It
prints row events/s and row changes/s for each and the ratio (a)/(b).

The counts are taken in every timed pass; the script stops if (a) and (b)
(or two rounds) disagree on the number of row events or row changes.

    python benchmarks/stream.py                       # MariaDB, 3 rounds
    python benchmarks/stream.py --flavor mysql --repeat 5
    python benchmarks/stream.py --rows-per-table 20000 --only a

See docs/performance.md ("Streaming from a live server").
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rows import TABLES, machine, run_workload, touch_rows  # noqa: E402

# The options benchmarks/rows.py builds its binlog with (MySQL has no
# binlog_format=ROW default to set in 9.x: ROW is the only sensible one and
# the default).
OPTIONS: dict[str, dict[str, str | int | None]] = {
    "mariadb": {"binlog_format": "ROW", "binlog_row_image": "FULL",
                "binlog_row_metadata": "FULL", "max_binlog_size": 1 << 30,
                "innodb_flush_log_at_trx_commit": 2, "sync_binlog": 0},
    "mysql": {"binlog_row_image": "FULL", "binlog_row_metadata": "FULL",
              "max_binlog_size": 1 << 30, "innodb_flush_log_at_trx_commit": 2,
              "sync_binlog": 0},
}
_SEQ = re.compile(r"\bseq_(\d+)_to_(\d+)\b")


def _mysql_rewrite(sql: str) -> str:
    """MySQL has no SEQUENCE engine: ``seq_A_to_B`` becomes a range of ``nums``;
    MySQL 9.7 has no MD5(): the first 32 hex digits of SHA2 (same length)."""
    sql = sql.replace("MD5(seq)", "LEFT(SHA2(seq, 256), 32)")
    return _SEQ.sub(r"(SELECT n AS seq FROM nums WHERE n BETWEEN \1 AND \2) q", sql)


def load(srv: Any, rows_per_table: int) -> str:
    """Run rows.py's workload in a fresh binlog file; return that file's name."""
    n = rows_per_table
    print(f"loading {3 * (n + n // 2 + n // 4)} row changes into {srv.flavor} "
          f"{srv.version} on port {srv.port} ...", flush=True)
    t0 = time.perf_counter()
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE bench")
            cur.execute("USE bench")
            cur.execute("SET time_zone = '+00:00'")
            rewrite: Callable[[str], str] | None = None
            if srv.flavor == "mysql":
                cur.execute("CREATE TABLE nums (n BIGINT NOT NULL PRIMARY KEY)")
                cur.execute("SET SESSION cte_max_recursion_depth = %s", (n + 1,))
                cur.execute("INSERT INTO nums WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL "
                            "SELECT n + 1 FROM r WHERE n < %s) SELECT n FROM r", (n,))
                rewrite = _mysql_rewrite
            for ddl in TABLES.values():
                cur.execute(ddl)
            cur.execute("FLUSH BINARY LOGS")  # the streamed file holds the workload only
            first = current_file(cur)
            run_workload(cur, n, rewrite)
            cur.execute("FLUSH BINARY LOGS")  # so the file is complete (and stays put)
    finally:
        conn.close()
    print(f"loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    return first


def current_file(cur: Any) -> str:
    """The server's current binlog file (either spelling of the statement)."""
    for sql in ("SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"):
        try:
            cur.execute(sql)
        except Exception:  # noqa: BLE001,S112 (the other spelling)
            continue
        row = cur.fetchone()
        if row:
            return str(row[0])
    raise SystemExit("binary logging is off on the server")


# ---------------------------------------------------------------------------- (a) binlogkit


def stream_binlogkit(srv: Any, file: str) -> tuple[int, int]:
    """(a): (row events, row changes), every value decoded."""
    from binlogkit.protocol.blocking import BinlogStream  # noqa: PLC0415
    from binlogkit.protocol.replica import Start  # noqa: PLC0415
    from binlogkit.protocol.rows import ROW_STREAM_TYPES, stream_row_events  # noqa: PLC0415

    with BinlogStream(srv.connect, Start(file, 4), server_id=_server_id(), blocking=False,
                      heartbeat=None, reconnect=False, verify_checksum=True,
                      types=ROW_STREAM_TYPES) as stream:
        return touch_rows(stream_row_events(stream))


# ---------------------------------------------------------------------------- (b) mysql-replication


def stream_mysql_replication(srv: Any, file: str) -> tuple[int, int]:
    """(b): (row events, row changes); ``event.rows`` decodes every value."""
    from pymysqlreplication import BinLogStreamReader  # noqa: PLC0415
    from pymysqlreplication.row_event import (  # noqa: PLC0415
        DeleteRowsEvent,
        UpdateRowsEvent,
        WriteRowsEvent,
    )

    reader = BinLogStreamReader(
        connection_settings={"host": srv.host, "port": srv.port, "user": srv.user,
                             "passwd": srv.password},
        server_id=_server_id(),
        blocking=False,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        resume_stream=True,
        log_file=file,
        log_pos=4,
        verify_checksum=True,  # binlogkit verifies every CRC32 too
        enable_logging=False,  # its own advice for speed (logs once, at start)
    )
    events = rows = 0
    try:
        for ev in reader:
            events += 1
            rows += len(ev.rows)  # decoded here, all values of all rows
    finally:
        reader.close()
    return events, rows


def _server_id() -> int:
    # a fresh id per dump: a server drops an older dump thread of the same id
    return random.randint(0x40000000, 0x7FFFFFFF)


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flavor", choices=("mariadb", "mysql"), default="mariadb",
                    help="server to start (default mariadb)")
    ap.add_argument("--rows-per-table", type=int, default=64000,
                    help="rows inserted per table (default 64000, i.e. 336000 row changes)")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds (default 3)")
    ap.add_argument("--only", default="ab", help="which of a, b to run (default ab)")
    args = ap.parse_args(argv)

    from binlogkit.lab.servers import start_server  # noqa: PLC0415

    chosen = [k for k in "ab" if k in args.only]
    runners: dict[str, tuple[str, Callable[[Any, str], tuple[int, int]]]] = {
        "a": ("binlogkit BinlogStream + stream_row_events", stream_binlogkit),
        "b": ("mysql-replication BinLogStreamReader", stream_mysql_replication),
    }
    print(f"starting a private {args.flavor} server ...", flush=True)
    srv = start_server(args.flavor, options=OPTIONS[args.flavor])
    try:
        first = load(srv, args.rows_per_table)
        conn = srv.connect()
        with conn.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            sizes = {str(r[0]): int(r[1]) for r in cur.fetchall()}
        conn.close()
        for line in machine()[:4]:
            print(line)
        print(f"server: {srv.flavor} {srv.version}, binlog {first} "
              f"{sizes.get(first, 0) / 1e6:.1f} MB (streamed from position 4 to the end of "
              f"the last file, {sum(v for k, v in sizes.items() if k >= first) / 1e6:.1f} MB)")

        counts: dict[str, set[tuple[int, int]]] = {k: set() for k in chosen}
        times: dict[str, list[float]] = {k: [] for k in chosen}
        for r in range(args.repeat):  # interleaved: load on the machine hits both alike
            for k in chosen:
                t0 = time.perf_counter()
                counts[k].add(runners[k][1](srv, first))
                times[k].append(time.perf_counter() - t0)
            print(f"round {r + 1}/{args.repeat}: "
                  + ", ".join(f"({k}) {times[k][-1]:.2f} s" for k in chosen)
                  + f"; load average {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        srv.stop(remove_data=True)

    seen = set().union(*counts.values())
    if len(seen) != 1:
        raise SystemExit(f"(row events, row changes) differ between runs: {counts}")
    events, rows = seen.pop()
    print(f"every pass saw {events} row events, {rows} row changes")
    if not times or args.repeat < 1:
        return 0
    best = {k: min(v) for k, v in times.items()}
    print()
    print(f"{'':4}{'decoder':44}{'best s':>8}{'median s':>10}{'events/s':>12}{'rows/s':>12}")
    for k in chosen:
        print(f"({k}) {runners[k][0]:44}{best[k]:8.2f}{statistics.median(times[k]):10.2f}"
              f"{events / best[k]:12,.0f}{rows / best[k]:12,.0f}")
    if "a" in best and "b" in best:
        ratio = best["b"] / best["a"]
        median = statistics.median(times["b"]) / statistics.median(times["a"])
        print()
        print(f"(a)/(b) events/s and rows/s: {ratio:.2f}x (best rounds), {median:.2f}x "
              f"(median rounds); target >= 10x: {'met' if ratio >= 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
