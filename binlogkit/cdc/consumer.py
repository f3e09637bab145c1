"""The CDC loop: a live server's row changes to a sink, with checkpoints.

Guarantees (docs/cdc.md states them with their conditions):

- **Nothing lost.** The checkpoint moves past a transaction only after the
  sink acknowledged it (``flush`` returned). A restart resumes from the
  checkpoint; the stream resumes after a lost connection from the end of
  the last complete transaction (binlogkit.protocol).
- **At least once, duplicates marked.** Before transactions are handed to
  the sink, the checkpoint records the id of the last of them
  (``in_flight``); after a crash, every transaction up to that id is
  delivered again with ``redelivered`` set. A sink that keeps the checkpoint
  in its own transaction (:class:`~binlogkit.cdc.model.TransactionalSink`)
  gets each transaction exactly once.
- **Snapshots** (full resync) when there is no checkpoint, or when the
  server no longer has what the checkpoint needs (``when-needed``); the
  stream then starts exactly where the snapshot was taken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from binlogkit.cdc.lag import Lag
from binlogkit.cdc.model import Checkpoint, CheckpointStore, Sink, Txn

SnapshotMode = Literal["when-needed", "initial", "never"]
Connect = Callable[[], Any]


class CdcError(Exception):
    """The consumer cannot go on (one line, safe to print)."""


@dataclass
class Status:
    """What the consumer has done, for a status line."""

    transactions: int = 0
    changes: int = 0
    events: int = 0
    started: float = 0.0
    lag: float | None = None
    snapshot_rows: int = 0
    redelivered: int = 0

    def line(self) -> str:
        rate = self.events / max(time.monotonic() - self.started, 1e-6)
        lag = "-" if self.lag is None else f"{self.lag:.1f} s"
        return (f"{self.transactions} transactions, {self.changes} changes, "
                f"{rate:,.0f} events/s, lag {lag}")


def _server_info(conn: Any) -> tuple[str, str]:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = str(cur.fetchone()[0])
        flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
        if flavor == "mysql":
            cur.execute("SELECT @@server_uuid")
            uuid = str(cur.fetchone()[0])
        else:
            cur.execute("SELECT @@server_id")
            uuid = f"server_id={cur.fetchone()[0]}"
    return flavor, uuid


class Consumer:
    """Streams row changes from the server ``connect()`` reaches into ``sink``,
    checkpointing in ``store`` (ignored for a TransactionalSink, which keeps
    its own).

    ``batch``: transactions handed to the sink per acknowledgement (more is
    faster; each is then redelivered together after a crash).
    ``include``/``exclude``: globs on ``db.table``.
    """

    def __init__(self, connect: Connect, sink: Sink, store: CheckpointStore | None, *,
                 snapshot: SnapshotMode = "when-needed", include: list[str] | None = None,
                 exclude: list[str] | None = None, server_id: int | None = None,
                 heartbeat: float = 5.0, batch: int = 100, flush_interval: float = 0.5,
                 on_status: Callable[[Status], None] | None = None) -> None:
        self.connect = connect
        self.sink = sink
        self.store = store
        self.snapshot_mode = snapshot
        self.include = include or []
        self.exclude = exclude or []
        self.server_id = server_id
        self.heartbeat = heartbeat
        self.batch = max(1, batch)
        self.flush_interval = flush_interval
        self.on_status = on_status
        self.status = Status(started=time.monotonic())
        self.lag = Lag()
        self.stop_event = threading.Event()
        self.checkpoint: Checkpoint | None = None

    # ----------------------------------------------------------- checkpoints

    def _transactional(self) -> bool:
        return hasattr(self.sink, "write_with_checkpoint")

    def _load(self) -> Checkpoint | None:
        if self._transactional():
            return self.sink.load_checkpoint()  # type: ignore[attr-defined,no-any-return]
        return self.store.load() if self.store is not None else None

    def _save(self, cp: Checkpoint) -> None:
        self.checkpoint = cp
        if not self._transactional() and self.store is not None:
            self.store.save(cp)

    # ------------------------------------------------------------------ run

    def stop(self) -> None:
        """Stop after the current transaction (the checkpoint is then saved)."""
        self.stop_event.set()

    def run(self, *, follow: bool = True) -> Checkpoint | None:
        """Stream until :meth:`stop` (or, with ``follow=False``, until the end of
        the server's binlogs); returns the last checkpoint saved."""
        from binlogkit.cdc.filters import Filter  # noqa: PLC0415
        from binlogkit.cdc.schema_history import SchemaHistory  # noqa: PLC0415
        from binlogkit.cdc.snapshot import needs_resync, purged  # noqa: PLC0415

        conn = self.connect()
        try:
            flavor, server_uuid = _server_info(conn)
            cp = self._load()
            self.checkpoint = cp
            if cp is not None and purged(conn, cp.position):
                if self.snapshot_mode != "when-needed":
                    raise CdcError(
                        f"the server no longer has the binlog the checkpoint needs "
                        f"({cp.position.file}:{cp.position.pos}"
                        f"{', ' + cp.position.gtids if cp.position.gtids else ''}) and "
                        f"--snapshot is {self.snapshot_mode}: a full resync is needed")
                cp = None
            if cp is None:
                if self.snapshot_mode == "never":
                    raise CdcError("no checkpoint, and --snapshot never: nothing to start from")
                cp = self._snapshot(conn, flavor, server_uuid)
        finally:
            conn.close()
        if self.stop_event.is_set():
            return cp
        history = SchemaHistory.from_json(cp.schema_history)
        flt = Filter(include=self.include, exclude=self.exclude)
        try:
            return self._stream(cp, flavor, server_uuid, history, flt, follow)
        except Exception as exc:
            if needs_resync(exc):
                raise CdcError(f"the server purged the binlog while streaming: {exc}") from exc
            raise

    def _snapshot(self, conn: Any, flavor: str, server_uuid: str) -> Checkpoint:
        from binlogkit.cdc.filters import Filter  # noqa: PLC0415
        from binlogkit.cdc.schema_history import SchemaHistory  # noqa: PLC0415
        from binlogkit.cdc.snapshot import take_snapshot  # noqa: PLC0415

        flt = Filter(include=self.include, exclude=self.exclude)
        history = SchemaHistory.snapshot(conn)
        position, txns = take_snapshot(conn, flavor, include=flt.table_included)
        for txn in txns:
            self.sink.write(txn)
            self.status.snapshot_rows += len(txn.changes)
        self.sink.flush()
        cp = Checkpoint(position, history.to_json(), None, flavor, server_uuid)
        if self._transactional():  # the sink keeps the checkpoint: an empty transaction
            end = Txn(id=f"snapshot:{position.file}:{position.pos}", changes=[], end=position,
                      snapshot=True)
            self.sink.write_with_checkpoint(end, cp)  # type: ignore[attr-defined]
        self._save(cp)
        return cp

    def _stream(self, cp: Checkpoint, flavor: str, server_uuid: str, history: Any,
                flt: Any, follow: bool) -> Checkpoint:
        from binlogkit.cdc.records import TxnBuilder  # noqa: PLC0415
        from binlogkit.cdc.schema_history import SchemaHistory  # noqa: PLC0415
        from binlogkit.protocol.blocking import BinlogStream, Discard  # noqa: PLC0415
        from binlogkit.protocol.replica import Start, StreamEvent  # noqa: PLC0415

        pos = cp.position
        same_server = cp.server_uuid == server_uuid or not pos.gtids
        start = Start(pos.file, pos.pos) if same_server else Start(gtids=pos.gtids)
        redeliver_until = cp.in_flight
        history_json = history.to_json()  # changes only with DDL
        done_json = history_json  # as of the end of the last complete transaction

        def on_ddl(db: str, sql: str) -> Any:
            """The history follows DDL as it is read: rows after it in the
            same transaction (CREATE TABLE ... SELECT) decode with it."""
            nonlocal history_json
            if not history.apply_ddl(db, sql):
                return None
            history_json = history.to_json()
            return history.schemas()

        builder = TxnBuilder(flavor, gtids=pos.gtids, schemas=history.schemas(), filters=flt,
                             on_ddl=on_ddl)
        pending: list[tuple[Txn, Checkpoint]] = []
        last_flush = time.monotonic()
        stream = BinlogStream(self.connect, start, server_id=self.server_id, flavor=flavor,  # type: ignore[arg-type]
                              blocking=follow, heartbeat=self.heartbeat)
        with stream:
            for item in stream:
                if isinstance(item, Discard):
                    builder.discard()
                    if history_json is not done_json:  # its DDL is read again
                        history = SchemaHistory.from_json(done_json)
                        history_json = done_json
                        builder.set_schemas(history.schemas())
                    continue
                assert isinstance(item, StreamEvent)
                self.status.events += 1
                if item.type_name in ("HEARTBEAT", "HEARTBEAT_V2"):
                    self.lag.heartbeat()
                proto = stream.proto
                resume = None if proto is None else (lambda p=proto: p.resume_point)
                for txn in builder.feed(item, resume):
                    if txn.ddl and not flt.empty:  # the history follows all; sinks get the kept
                        txn.ddl = [(db, sql) for db, sql in txn.ddl if flt.ddl_included(db, sql)]
                    if redeliver_until is not None:
                        txn.redelivered = True
                        self.status.redelivered += 1
                        if txn.id == redeliver_until:
                            redeliver_until = None
                    cp = Checkpoint(txn.end, history_json, None, flavor, server_uuid)
                    done_json = history_json
                    pending.append((txn, cp))
                    self.lag.transaction(txn.ts_ms)
                    self.status.transactions += 1
                    self.status.changes += len(txn.changes)
                    if len(pending) >= self.batch \
                            or time.monotonic() - last_flush >= self.flush_interval:
                        self._deliver(pending)
                        pending, last_flush = [], time.monotonic()
                idle = item.type_name in ("HEARTBEAT", "HEARTBEAT_V2")
                if pending and idle:  # the source has nothing newer: acknowledge now
                    self._deliver(pending)
                    pending, last_flush = [], time.monotonic()
                self.status.lag = self.lag.seconds()
                if self.on_status is not None:
                    self.on_status(self.status)
                if self.stop_event.is_set() and not builder.in_transaction:
                    break
        if pending:
            self._deliver(pending)
        return self.checkpoint or cp

    def _deliver(self, batch: list[tuple[Txn, Checkpoint]]) -> None:
        """Hand the transactions to the sink and move the checkpoint past them
        once it acknowledged them; each carries the checkpoint (position and
        schema history) as of its own end."""
        if self._transactional():
            for txn, cp in batch:
                self.sink.write_with_checkpoint(txn, cp)  # type: ignore[attr-defined]
                self.checkpoint = cp
            return
        after = batch[-1][1]
        before = self.checkpoint or after
        self._save(Checkpoint(before.position, before.schema_history, batch[-1][0].id,
                              before.flavor, before.server_uuid))
        for txn, _ in batch:
            self.sink.write(txn)
        self.sink.flush()
        self._save(after)
