"""What the CDC layer passes around: change records grouped in
transactions, stream positions, checkpoints, and the sink interface.

A :class:`Position` is where the stream resumes *after* a transaction: the
binlog file and offset of the next event, and the GTIDs executed so far
(MySQL: a GTID set; MariaDB: a GTID position, one GTID per domain), so a
consumer can resume on the same server (file/offset) or after a failover
(GTIDs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from binlogkit.codec.columns import Column

Op = Literal["c", "u", "d", "r"]
Image = dict[str, Any]


@dataclass(frozen=True)
class Position:
    """Resume point: ``file``/``pos`` of the next event, and ``gtids`` (MySQL
    GTID set text, or MariaDB GTID position text; "" when the source has none)."""

    file: str
    pos: int
    gtids: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "pos": self.pos, "gtids": self.gtids}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Position:
        return cls(str(data["file"]), int(data["pos"]), str(data.get("gtids", "")))


@dataclass(frozen=True)
class Source:
    """Where a change comes from. ``pos`` is the offset of the row event in
    ``file``; ``row`` the change's index in its transaction (0-based);
    ``ts_ms`` the transaction's commit time (the event header's, in ms;
    microseconds where the server logs them). Snapshot reads have
    ``snapshot=True`` and the position the stream continues from."""

    flavor: str
    server_id: int
    file: str
    pos: int
    gtid: str | None
    ts_ms: int
    schema: str
    table: str
    row: int
    snapshot: bool = False
    query: str | None = None  # the statement (ROWS_QUERY / ANNOTATE_ROWS), when logged
    thread: int | None = None  # the session id of the transaction (QUERY event), when known


@dataclass(frozen=True)
class Change:
    """One row change: ``op`` c (insert), u (update), d (delete) or r (a
    snapshot read); ``before`` / ``after`` images keyed by column name."""

    op: Op
    before: Image | None
    after: Image | None
    source: Source
    # the table's columns (types for JSON conversion, see binlogkit.cdc.formats);
    # None when unknown (the formats then convert by Python type)
    columns: tuple[Column, ...] | None = field(default=None, compare=False, repr=False)


@dataclass
class Txn:
    """The changes of one committed transaction (or one snapshot batch), in
    order. ``end`` is the position after it: the checkpoint once a sink has
    it. ``redelivered`` is set on a transaction that may have reached the
    sink before (it was in flight when the consumer stopped)."""

    id: str
    changes: list[Change]
    end: Position
    gtid: str | None = None
    ts_ms: int = 0
    redelivered: bool = False
    snapshot: bool = False
    # statements that may change the schema (CREATE/ALTER/DROP/RENAME/TRUNCATE),
    # as (default database, SQL), in order: for the schema history
    ddl: list[tuple[str, str]] = field(default_factory=list)
    # XA: ("prepare" | "commit" | "rollback" | "commit-one-phase", xid text as
    # X'gtrid',X'bqual',formatID); None for other transactions
    xa: tuple[str, str] | None = None


@dataclass
class Checkpoint:
    """What a restart needs: where to resume, the schema history at that
    point (JSON-able, see :mod:`binlogkit.cdc.schema_history`), and the id of
    the first transaction handed to the sink but not yet acknowledged."""

    position: Position
    schema_history: dict[str, Any] = field(default_factory=dict)
    in_flight: str | None = None
    flavor: str = ""
    server_uuid: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "position": self.position.to_json(), "flavor": self.flavor,
                "server_uuid": self.server_uuid, "in_flight": self.in_flight,
                "schema_history": self.schema_history}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(Position.from_json(data["position"]), dict(data.get("schema_history") or {}),
                   data.get("in_flight"), str(data.get("flavor", "")),
                   str(data.get("server_uuid", "")))


class CheckpointStore(Protocol):
    """Durable storage of one checkpoint: ``save`` returns once it is on disk."""

    def load(self) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...


class SinkError(Exception):
    """A sink gave up (e.g. its broker stayed unreachable): one line, safe to print."""


class Sink(Protocol):
    """Where transactions go. ``write`` may buffer; ``flush`` returns once
    everything written is durable (the acknowledgement: the checkpoint then
    moves past it). A sink that stores the checkpoint itself, in the same
    transaction as the data, gets exactly-once (see :class:`TransactionalSink`)."""

    def write(self, txn: Txn) -> None: ...

    def flush(self) -> None: ...


class TransactionalSink(Sink, Protocol):
    """A sink that commits the checkpoint with the data (exactly once)."""

    def load_checkpoint(self) -> Checkpoint | None: ...

    def write_with_checkpoint(self, txn: Txn, checkpoint: Checkpoint) -> None: ...
