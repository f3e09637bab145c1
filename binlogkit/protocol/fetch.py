"""Saving a live server's binlog files as they are on the server (what
``mysqlbinlog --read-from-remote-server --raw`` does), and naming the file
each streamed event belongs to.

:class:`BinlogFetcher` takes what :class:`~binlogkit.protocol.blocking.BinlogStream`
yields and writes one file per server binlog into a directory:

- the artificial ROTATE the server sends at the start of each file names it;
  the file starts with the magic ``fe 62 69 6e``, then gets the raw bytes of
  every event that is in the server's file (``in_file``); events the server
  makes up for the stream (heartbeats, the re-sent FORMAT_DESCRIPTION,
  MariaDB's fake GTID_LIST) are left out;
- a file is written as ``NAME.partial`` and renamed to ``NAME`` when it is
  complete: its closing ROTATE (or the STOP of a server shutdown) arrived,
  or the next file began; :meth:`BinlogFetcher.finish` renames the file
  still being written (the server's active one) when the fetch ends;
- the FORMAT_DESCRIPTION's in-use flag (``LOG_EVENT_BINLOG_IN_USE_F``,
  header flags bit 0x1) is kept as the server keeps it on disk: set while
  the file is still being written, cleared once it is closed. The server
  sends the flag cleared; setting or clearing it leaves the CRC32 valid
  (servers compute the FORMAT_DESCRIPTION's checksum with the flag clear);
- a :class:`~binlogkit.protocol.blocking.Discard` (the server restarted
  without the events of an unfinished transaction) truncates the file back
  to where that transaction began.

So every closed file is byte-identical to the server's, and the active one
is a prefix of the server's active file (identical when nothing was written
since).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from binlogkit.codec.types import LOG_EVENT_BINLOG_IN_USE_F, EventType
from binlogkit.protocol.blocking import Discard
from binlogkit.protocol.replica import StreamEvent

MAGIC = b"\xfebin"
PARTIAL = ".partial"
_HEADER = 19
_FLAGS = 17  # offset of the header flags in an event


class FetchError(Exception):
    """The stream does not make a consistent file (a gap, a bad file name)."""


def rotate_target(raw: bytes) -> tuple[str, int]:
    """(next file, position) of a ROTATE event's bytes, with or without a CRC32
    trailer (the artificial ROTATE comes before any FORMAT_DESCRIPTION says
    whether events carry checksums, so the trailer is recognised by its value)."""
    if len(raw) < _HEADER + 8:
        raise FetchError(f"ROTATE event of {len(raw)} bytes is too short")
    position = int.from_bytes(raw[_HEADER:_HEADER + 8], "little")
    name = raw[_HEADER + 8:]
    if len(name) > 4 and zlib.crc32(raw[:-4]) & 0xFFFFFFFF == int.from_bytes(raw[-4:], "little"):
        name = name[:-4]
    return name.decode("utf-8", "surrogateescape"), position


class StreamFiles:
    """The server file of each streamed event, taken from the ROTATE events'
    own bytes. :meth:`see` returns the file of ``item``: an artificial ROTATE
    belongs to the file it names (it starts it), a ROTATE in a file to the
    file it closes."""

    def __init__(self, start_file: str = "") -> None:
        self.file = start_file

    def see(self, item: StreamEvent) -> str:
        if item.event.type_code == EventType.ROTATE:
            name, _ = rotate_target(item.raw)
            if item.in_file:
                file, self.file = self.file, name
                return file
            self.file = name
        return self.file


def _check_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise FetchError(f"the server names a binlog {name!r}: not a plain file name")
    return name


class BinlogFetcher:
    """Writes the server's binlog files into ``directory`` (see the module doc).

    ``feed()`` every item of the stream, then ``finish()`` (also on errors and
    interrupts: the file being written keeps its whole events). ``flush``
    writes each event through at once (for following a live server).
    ``on_file(path, closed)`` is called when a file gets its final name.
    """

    def __init__(self, directory: str | os.PathLike[str], *, flush: bool = False,
                 on_file: Callable[[Path, bool], None] | None = None) -> None:
        self.dir = Path(directory)
        self.flush = flush
        self.on_file = on_file
        self.name: str | None = None  # the file being written
        self.size = 0
        self.events = 0
        self.files: list[Path] = []  # files given their final name, in order
        self._fh: BinaryIO | None = None
        self._files = StreamFiles()
        self._fde_at: int | None = None  # offset of the FDE's flags byte
        self._fde_flags = 0

    # -------------------------------------------------------------- feeding

    def feed(self, item: StreamEvent | Discard) -> None:
        if isinstance(item, Discard):
            self._discard(item)
            return
        code = item.event.type_code
        if not item.in_file:
            if code == EventType.ROTATE:
                name, pos = rotate_target(item.raw)
                self._files.file = name
                self._begin(_check_name(name), pos)
            return
        if self._fh is None or self.name is None:
            raise FetchError(f"an event at {item.pos} before the server named its file")
        if item.pos != self.size:
            raise FetchError(f"{self.name}: event at byte {item.pos}, but the file so far "
                             f"holds {self.size} bytes (the stream skipped or repeated events)")
        raw = item.raw
        if code == EventType.FORMAT_DESCRIPTION and item.pos == len(MAGIC):
            # as on the server's disk while the file is written: flag set
            self._fde_at = item.pos + _FLAGS
            buf = bytearray(raw)
            buf[_FLAGS] |= LOG_EVENT_BINLOG_IN_USE_F
            self._fde_flags = buf[_FLAGS]
            raw = bytes(buf)
        self._fh.write(raw)
        self.size += len(raw)
        self.events += 1
        if code in (EventType.ROTATE, EventType.STOP):
            self._complete(closed=True)
        elif self.flush:
            self._fh.flush()

    def finish(self) -> Path | None:
        """End of the fetch: the file being written (the server's active one, or
        whatever of a file arrived before an error) gets its name, in-use flag
        set as on the server. Returns its path, if there was one."""
        if self._fh is None:
            return None
        return self._complete(closed=False)

    def __enter__(self) -> BinlogFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    # ---------------------------------------------------------------- files

    def _partial(self, name: str) -> Path:
        return self.dir / (name + PARTIAL)

    def _begin(self, name: str, pos: int) -> None:
        if self._fh is not None and name == self.name:
            # a reconnect resumes inside the file being written: events the
            # stream already gave are not given again
            if pos > self.size:
                raise FetchError(f"{name}: the server resumes at byte {pos}, but the file "
                                 f"so far holds {self.size} bytes")
            return
        if self._fh is not None:
            self._complete(closed=False)  # it ended without ROTATE (server crash)
        if pos > len(MAGIC):
            raise FetchError(f"{name}: the stream starts at byte {pos}; a fetched file "
                             "must start at 4")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fh = open(self._partial(name), "wb")  # noqa: SIM115 (kept open across calls)
        self._fh.write(MAGIC)
        self.name, self.size, self._fde_at = name, len(MAGIC), None

    def _complete(self, *, closed: bool) -> Path:
        fh, name = self._fh, self.name
        assert fh is not None and name is not None
        if closed and self._fde_at is not None:
            # the server clears the in-use flag when it closes a file
            fh.seek(self._fde_at)
            fh.write(bytes([self._fde_flags & ~LOG_EVENT_BINLOG_IN_USE_F & 0xFF]))
            fh.seek(0, os.SEEK_END)
        fh.close()
        self._fh = None
        final = self.dir / name
        os.replace(self._partial(name), final)
        self.files.append(final)
        if self.on_file is not None:
            self.on_file(final, closed)
        return final

    def _discard(self, d: Discard) -> None:
        if self._fh is None or d.file != self.name or d.pos > self.size:
            raise FetchError(f"the server dropped events from {d.file} at byte {d.pos}, "
                             f"which is not in the file being written ({self.name})")
        self._fh.flush()
        self._fh.truncate(d.pos)
        self._fh.seek(d.pos)
        self.size = d.pos
