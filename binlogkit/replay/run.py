"""Apply binlog files serially or with parallel workers, to any target.

Parallel apply reads the files as transactions
(:func:`~binlogkit.replay.transactions.read_transactions`) and hands them to
:class:`~binlogkit.replay.schedule.ParallelApplier`; every worker has its
own target (its own server connection or engine session) and its own
:class:`~binlogkit.replay.apply.Applier`. A transaction is applied up to
its closing XID/COMMIT in the worker, and the commit is issued when the
scheduler says so (in binlog order with ``preserve_commit_order``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from binlogkit.codec.types import EventType
from binlogkit.gtid import GtidSet, MariadbGtidState
from binlogkit.io.reader import BinlogReader
from binlogkit.replay.apply import Applier, ApplyStats, ReplicaError, Target
from binlogkit.replay.schedule import ParallelApplier, ParallelApplyError
from binlogkit.replay.transactions import BinlogTxn, read_transactions

Paths = Sequence[str | os.PathLike[str]]


@dataclass
class ApplyReport:
    """What an apply run did, and the GTIDs it applied."""

    stats: ApplyStats
    mysql_gtids: GtidSet = field(default_factory=GtidSet)
    mariadb_gtids: MariadbGtidState = field(default_factory=MariadbGtidState)
    workers: int = 1
    policy: str | None = None

    def __str__(self) -> str:
        s = self.stats
        lines = [f"transactions applied: {s.transactions}" + (
                     f" (skipped, already applied: {s.skipped})" if s.skipped else ""),
                 f"statements: {s.statements}", f"row changes: {s.row_changes}"]
        if self.workers > 1:
            lines.append(f"workers: {self.workers} ({self.policy})")
        if len(self.mysql_gtids):
            lines.append(f"gtid_executed: {self.mysql_gtids}")
        if len(self.mariadb_gtids):
            lines.append(f"gtid_slave_pos: {self.mariadb_gtids.pos}")
        return "\n".join(lines)


def binlog_flavor(path: str | os.PathLike[str]) -> str:
    """"mariadb" or "mysql", from the file's FORMAT_DESCRIPTION."""
    for ev in BinlogReader(path, types={EventType.FORMAT_DESCRIPTION}):
        version = str(ev.body.server_version)
        return "mariadb" if "mariadb" in version.lower() else "mysql"
    return "mysql"


def apply_serial(paths: Paths, target: Target) -> ApplyReport:
    applier = Applier(target)
    for path in paths:
        applier.apply_file(path)
    applier.finish()
    return ApplyReport(applier.stats, applier.mysql_executed, applier.mariadb_executed)


_COMMITS = {EventType.XID}


def _split(txn: BinlogTxn) -> tuple[list[Any], list[Any]]:
    """The events up to the commit, and the commit (XID or QUERY COMMIT)."""
    evs = txn.events
    if evs:
        last = evs[-1]
        if last.type_code in _COMMITS or (
                last.type_code == EventType.QUERY
                and bytes(last.body.query).strip().upper() == b"COMMIT"):
            return evs[:-1], evs[-1:]
    return evs, []


def apply_parallel(paths: Paths, make_target: Callable[[], Target], *, workers: int,
                   policy: str = "writeset", preserve_commit_order: bool = True,
                   txns: Iterable[BinlogTxn] | None = None) -> ApplyReport:
    """Apply with ``workers`` threads, each with a target from ``make_target``."""
    local = threading.local()
    appliers: list[Applier] = []
    lock = threading.Lock()

    def applier() -> Applier:
        a = getattr(local, "applier", None)
        if a is None:
            a = local.applier = Applier(make_target())
            with lock:
                appliers.append(a)
        return a

    def apply(txn: BinlogTxn) -> Callable[[], None] | None:
        a = applier()
        a.file = txn.file
        body, commit = _split(txn)
        a.apply_events(body)
        if not commit:
            return None
        return lambda: a.apply_events(commit)

    def rollback(txn: BinlogTxn) -> None:
        applier().abort()

    runner = ParallelApplier(workers, apply, policy,  # type: ignore[arg-type]
                             preserve_commit_order, rollback=rollback)
    try:
        runner.run(txns if txns is not None else read_transactions(list(paths)))
    except ParallelApplyError as exc:
        cause = exc.__cause__ or exc
        raise ReplicaError(str(cause) if isinstance(cause, ReplicaError) else str(exc)) from exc
    total = ApplyStats()
    mysql = GtidSet()
    mariadb = MariadbGtidState()
    for a in appliers:
        total.transactions += a.stats.transactions
        total.skipped += a.stats.skipped
        total.statements += a.stats.statements
        total.row_changes += a.stats.row_changes
        mysql = mysql | a.mysql_executed
        for g in a.mariadb_executed:
            mariadb.add(g)
    return ApplyReport(total, mysql, mariadb, workers, policy)


def apply_files(paths: Paths, connect: Callable[[], Any] | None, *, out: TextIO | None = None,
                gtids: bool = True, workers: int = 1, policy: str = "writeset") -> ApplyReport:
    """Apply binlog files to the server ``connect()`` opens (one connection per
    worker), or print the SQL to ``out`` when ``connect`` is None."""
    from binlogkit.replay.server_target import ServerTarget  # noqa: PLC0415

    flavor = binlog_flavor(paths[0]) if paths else None

    def target() -> ServerTarget:
        return ServerTarget(connect() if connect is not None else None, out=out,
                            flavor=flavor, gtids=gtids)
    if workers <= 1 or connect is None:
        return apply_serial(paths, target())
    return apply_parallel(paths, target, workers=workers, policy=policy)
