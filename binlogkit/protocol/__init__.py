"""The replica side of the MySQL/MariaDB replication protocol: a sans-I/O
state machine (:mod:`.replica`), blocking and asyncio drivers
(:mod:`.blocking`, :mod:`.aio`), binlog fetching (:mod:`.fetch`) and row
changes of a stream (:mod:`.rows`)."""

from binlogkit.protocol.blocking import BinlogStream, ConnectionLost, Discard
from binlogkit.protocol.replica import ReplicaProtocol, Resume, Start, StreamError, StreamEvent

__all__ = ["BinlogStream", "ConnectionLost", "Discard", "ReplicaProtocol", "Resume", "Start",
           "StreamError", "StreamEvent"]
