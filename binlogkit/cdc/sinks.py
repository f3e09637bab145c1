"""Sinks: where change records go, with an acknowledgement (``flush``)
that lets the checkpoint move.

:class:`JsonLinesSink` writes one JSON object per row change (or the
Debezium envelope), with transaction begin/commit markers, to a file or a
stream; ``flush`` returns once the lines are on disk (fsync for files).
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any, Literal

from binlogkit.cdc.model import Txn

Format = Literal["jsonl", "debezium"]


class BufferedSink:
    """What the broker sinks share: ``write`` buffers at most ``max_buffer``
    transactions, then flushes (back-pressure, never unbounded); counters of
    what the broker acknowledged, for a status line (rate, and broker lag
    from ``last_acked_ts_ms``, the commit time of the last transaction
    acknowledged that has one)."""

    def __init__(self, max_buffer: int) -> None:
        self.max_buffer = max(1, max_buffer)
        self._buffer: list[Txn] = []
        self.acked_changes = 0
        self.acked_transactions = 0
        self.last_acked_ts_ms = 0

    def write(self, txn: Txn) -> None:
        self._buffer.append(txn)
        if len(self._buffer) >= self.max_buffer:
            self.flush()

    def flush(self) -> None:
        raise NotImplementedError

    def _acked(self, txn: Txn) -> None:
        """Count ``txn`` as acknowledged by the broker."""
        self.acked_changes += len(txn.changes)
        self.acked_transactions += 1
        if txn.ts_ms:
            self.last_acked_ts_ms = txn.ts_ms


class JsonLinesSink:
    """JSON Lines to ``out`` (a path, or an open text stream; default stdout).

    ``jsonl``: ``{"op", "before", "after", "source"}`` per change, between
    ``{"type": "begin", ...}`` and ``{"type": "commit", ...}`` markers;
    ``debezium``: Debezium's MySQL envelope per change (and its transaction
    metadata records). ``markers=False`` leaves the markers out."""

    def __init__(self, out: str | os.PathLike[str] | IO[str] | None = None, *,
                 fmt: Format = "jsonl", markers: bool = True) -> None:
        from binlogkit.cdc import formats  # noqa: PLC0415

        self._formats = formats
        self.fmt = fmt
        self.markers = markers
        if out is None:
            self._out: IO[str] = sys.stdout
            self._owned = False
        elif isinstance(out, str | os.PathLike):
            _drop_torn_line(out)
            self._out = open(out, "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._out = out
            self._owned = False
        self.written = 0

    def _line(self, obj: dict[str, Any]) -> None:
        self._out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def write(self, txn: Txn) -> None:
        f = self._formats
        if self.markers and txn.changes:
            self._line(f.begin_marker(txn) if self.fmt == "jsonl" else f.debezium_begin(txn))
        for i, change in enumerate(txn.changes):
            if self.fmt == "jsonl":
                rec = f.change_json(change)
                if txn.redelivered:
                    rec["redelivered"] = True
            else:
                rec = f.debezium_envelope(change, txn, i)
            self._line(rec)
            self.written += 1
        if self.markers and txn.changes:
            self._line(f.commit_marker(txn) if self.fmt == "jsonl" else f.debezium_end(txn))

    def flush(self) -> None:
        self._out.flush()
        if self._owned:
            os.fsync(self._out.fileno())

    def close(self) -> None:
        self.flush()
        if self._owned:
            self._out.close()


def _drop_torn_line(path: str | os.PathLike[str]) -> None:
    """A line cut short by a crash was never acknowledged: remove it (the
    transaction it belonged to is delivered again, marked)."""
    try:
        with open(path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            block = 1 << 16
            end = size
            while end > 0:
                start = max(0, end - block)
                f.seek(start)
                chunk = f.read(end - start)
                i = chunk.rfind(b"\n")
                if i >= 0:
                    f.truncate(start + i + 1)
                    return
                end = start
            f.truncate(0)
    except FileNotFoundError:
        return


class MemorySink:
    """Keeps transactions in a list (tests, and callers that process them
    in-process); ``flush`` is a no-op acknowledgement."""

    def __init__(self) -> None:
        self.txns: list[Txn] = []

    def write(self, txn: Txn) -> None:
        self.txns.append(txn)

    def flush(self) -> None:
        pass
