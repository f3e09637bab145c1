"""Change data capture: a server's row changes as change records grouped in
transactions, with schema history, durable checkpoints, consistent
snapshots, and sinks with acknowledgements (docs/cdc.md)."""

from binlogkit.cdc.checkpoint import FileCheckpointStore, SqliteCheckpointStore
from binlogkit.cdc.consumer import CdcError, Consumer
from binlogkit.cdc.lag import Lag, wait_for_gtid
from binlogkit.cdc.model import (
    Change,
    Checkpoint,
    CheckpointStore,
    Position,
    Sink,
    Source,
    TransactionalSink,
    Txn,
)
from binlogkit.cdc.sinks import JsonLinesSink, MemorySink

__all__ = [
    "CdcError",
    "Change",
    "Checkpoint",
    "CheckpointStore",
    "Consumer",
    "FileCheckpointStore",
    "JsonLinesSink",
    "Lag",
    "MemorySink",
    "Position",
    "Sink",
    "Source",
    "SqliteCheckpointStore",
    "TransactionalSink",
    "Txn",
    "wait_for_gtid",
]
