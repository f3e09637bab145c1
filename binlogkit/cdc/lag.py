"""Lag and read-your-writes.

:class:`Lag` is seconds behind the source: now minus the commit time of
the last transaction received while there is more to read, and 0 once a
heartbeat (sent by the source only when it has nothing newer) has arrived
after it. :func:`wait_for_gtid` blocks until a server has executed a GTID
set (MySQL, ``WAIT_FOR_EXECUTED_GTID_SET``) or reached a GTID position
(MariaDB, ``MASTER_GTID_WAIT``): after a write on the source, wait on the
replica before reading from it.
"""

from __future__ import annotations

import time
from typing import Any

from binlogkit.gtid import MariadbGtidPos


class Lag:
    """Seconds behind the source, from event timestamps and heartbeats."""

    def __init__(self) -> None:
        self.last_commit_ts: float | None = None
        self.caught_up = False

    def transaction(self, ts_ms: int) -> None:
        self.last_commit_ts = ts_ms / 1000.0
        self.caught_up = False

    def heartbeat(self) -> None:
        self.caught_up = True

    def seconds(self, now: float | None = None) -> float | None:
        if self.caught_up:
            return 0.0
        if self.last_commit_ts is None:
            return None
        return max(0.0, (now if now is not None else time.time()) - self.last_commit_ts)


class GtidWaitTimeout(TimeoutError):
    """The server did not reach the GTIDs in time."""


def wait_for_gtid(conn: Any, gtids: str, timeout: float, *, flavor: str | None = None) -> None:
    """Return once the server behind ``conn`` (PyMySQL) has executed ``gtids``
    (MySQL GTID set; MariaDB GTID position); raise :class:`GtidWaitTimeout`
    after ``timeout`` seconds."""
    with conn.cursor() as cur:
        if flavor is None:
            cur.execute("SELECT VERSION()")
            row = cur.fetchone()
            flavor = "mariadb" if row and "mariadb" in str(row[0]).lower() else "mysql"
        if flavor == "mariadb":
            # MASTER_GTID_WAIT follows @@gtid_slave_pos only: on the source
            # itself, what it logged (@@gtid_current_pos) already counts
            cur.execute("SELECT @@GLOBAL.gtid_current_pos")
            current = MariadbGtidPos.parse(str(cur.fetchone()[0] or ""))
            if current.reached(gtids):
                return
            cur.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (gtids, timeout))
            done = cur.fetchone()[0] == 0
        else:
            cur.execute("SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)", (gtids, timeout))
            done = cur.fetchone()[0] == 0
    if not done:
        raise GtidWaitTimeout(f"the server did not reach {gtids} within {timeout:g} s")
