"""Statement-vs-row replication, made visible: an embedded engine whose
access path is an explicit choice, a primary that logs what it runs in
STATEMENT, ROW or MIXED format, replicas that apply binlogs (to the engine
or to a real server, serially or in parallel), and chunked table checksums.

``binlogkit.replay.unsafe(sql)`` is the function (the module of the same
name stays importable as ``binlogkit.replay.unsafe`` through ``import``).
"""

from binlogkit.replay.apply import Applier, EngineTarget, ReplicaError
from binlogkit.replay.checksum import Chunk, ChunkDiff, TableChecksum, diff, server_checksum
from binlogkit.replay.engine import ApplyError, Engine, Session
from binlogkit.replay.model import (
    ColumnInfo,
    Context,
    Executed,
    RowChange,
    TableInfo,
    Transaction,
)
from binlogkit.replay.primary import Primary
from binlogkit.replay.sql import ReplayError, SqlError, parse, parse_many
from binlogkit.replay.unsafe import Reason, unsafe

__all__ = [
    "Applier",
    "ApplyError",
    "ReplicaError",
    "Chunk",
    "ChunkDiff",
    "ColumnInfo",
    "Context",
    "Engine",
    "EngineTarget",
    "Executed",
    "Primary",
    "Reason",
    "ReplayError",
    "RowChange",
    "Session",
    "SqlError",
    "TableChecksum",
    "TableInfo",
    "Transaction",
    "diff",
    "parse",
    "parse_many",
    "server_checksum",
    "unsafe",
]
