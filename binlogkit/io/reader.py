"""Stream the events of binlog and relay-log files in bounded memory.

A reader holds one file's format context (changed by every FORMAT_DESCRIPTION
or START_V3 event) and never reads more than the event it is framing. A file
whose server still writes it (the FDE's in-use flag) may end inside an event:
the reader stops at the last complete one, or waits for more in follow mode.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import construct as c

from binlogkit.codec.context import FormatContext
from binlogkit.codec.event import (
    CHECKSUM_CRC32,
    ENCRYPTED,
    Event,
    context_after,
    decode_event,
    event_crc,
)
from binlogkit.codec.header import SIZE_OFFSET, TYPE_OFFSET, V1_HEADER_LEN
from binlogkit.codec.types import (
    LOG_EVENT_ARTIFICIAL_F,
    LOG_EVENT_BINLOG_IN_USE_F,
    EventType,
)
from binlogkit.errors import BinlogError

_CONTEXT_TYPES = frozenset({EventType.FORMAT_DESCRIPTION, EventType.START_V3,
                            EventType.START_ENCRYPTION, EventType.ROTATE})
MAGIC = b"\xfebin"
MYSQL_ENCRYPTED_MAGIC = b"\xfdbin"
MAX_EVENT_SIZE = 1 << 30  # servers cap events at max_allowed_packet (1 GiB)
_CHUNK = 1 << 20
_START_V3_V1_SIZE = 19 + 56  # a START_V3 shorter than this has a 13-byte header


def _read_upto(f: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, growing with the data actually there."""
    if n <= _CHUNK:
        return f.read(n) or b""
    parts = []
    left = n
    while left:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class BinlogReader:
    """Iterate over the events of one binlog file (path, open file or bytes).

    ``verify_checksum`` checks each CRC32. ``follow`` waits for a file that is
    still written to grow, and (when ``follow_rotate``) moves on to the file a
    ROTATE names, like ``tail -F``. ``types`` (canonical type codes) limits
    what is decoded and yielded: other events are framed and CRC-checked but
    their bodies are not parsed (events that set the format context are
    always decoded). Errors are :class:`BinlogError`.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO | bytes,
        *,
        verify_checksum: bool = True,
        follow: bool = False,
        follow_rotate: bool = True,
        poll_interval: float = 0.25,
        name: str | None = None,
        types: Iterable[int] | None = None,
    ) -> None:
        self.verify = verify_checksum
        self.types = None if types is None else frozenset(types) | _CONTEXT_TYPES
        self.follow = follow
        self.follow_rotate = follow_rotate
        self.poll_interval = poll_interval
        self._source = source
        if isinstance(source, bytes | bytearray):
            self.name = name
        elif isinstance(source, str | os.PathLike):
            self.name = name or os.fspath(source)
        else:
            self.name = name or getattr(source, "name", None)
        self.ctx = FormatContext()
        self.in_use = False
        self.encrypted = False
        self.truncated_at: int | None = None
        self.events_read = 0
        self.pos = 0
        self._win = b""  # the read window (see _wait_for)
        self._win_pos = 0
        self._win_file: BinaryIO | None = None

    def _err(self, expected: str, offset: int, event_type: str | None = None) -> BinlogError:
        return BinlogError(expected, file=self.name, offset=offset, event_type=event_type)

    def _open(self) -> tuple[BinaryIO, bool]:
        src = self._source
        if isinstance(src, bytes | bytearray):
            return io.BytesIO(bytes(src)), True
        if isinstance(src, str | os.PathLike):
            try:
                return open(src, "rb"), True  # noqa: SIM115
            except OSError as exc:
                raise BinlogError(f"cannot open: {exc.strerror}", file=self.name) from None
        return src, False

    def __iter__(self) -> Iterator[Event]:
        f, owned = self._open()
        try:
            yield from self._events(f)
        finally:
            if owned:
                f.close()

    def _wait_for(self, f: BinaryIO, pos: int, n: int) -> bytes:
        """Read ``n`` bytes at ``pos``; in follow mode wait until they are there.

        Outside follow mode reads go through a window of up to 1 MiB (events
        are small and consecutive: one read serves many of them)."""
        if not self.follow:
            start = pos - self._win_pos
            if f is self._win_file and 0 <= start and start + n <= len(self._win):
                return self._win[start : start + n]
            if n > _CHUNK:
                f.seek(pos)
                return _read_upto(f, n)
            f.seek(pos)
            self._win, self._win_pos, self._win_file = f.read(_CHUNK) or b"", pos, f
            return self._win[:n]
        while True:
            f.seek(pos)
            data = _read_upto(f, n)
            if len(data) == n or not self.follow:
                return data
            time.sleep(self.poll_interval)

    def _events(self, f: BinaryIO) -> Iterator[Event]:
        magic = self._wait_for(f, 0, 4)
        if magic == MYSQL_ENCRYPTED_MAGIC:
            raise self._err("file is encrypted by MySQL (keyring needed); cannot read", 0)
        if magic != MAGIC:
            raise self._err(f"binlog magic fe 62 69 6e, found {magic.hex(' ') or 'nothing'}", 0)
        pos = 4
        first = True
        while True:
            self.pos = pos
            head = self._wait_for(f, pos, V1_HEADER_LEN)
            if not head:
                return
            if len(head) < V1_HEADER_LEN:
                self._partial(pos, f"an event header, found {len(head)} bytes")
                return
            size = int.from_bytes(head[SIZE_OFFSET : SIZE_OFFSET + 4], "little")
            type_code = head[TYPE_OFFSET]
            if first:
                first = False
                if type_code == EventType.START_V3 and size < _START_V3_V1_SIZE:
                    self.ctx = FormatContext.for_old_version(1, "")
            if size < self.ctx.header_len or size > MAX_EVENT_SIZE:
                raise self._err(
                    f"event_size between {self.ctx.header_len} and {MAX_EVENT_SIZE},"
                    f" found {size}", pos,
                )
            data = self._wait_for(f, pos, size)
            if len(data) < size:
                self._partial(pos, f"{size} bytes of event, found {len(data)}")
                return
            if self.types is not None and not self.encrypted \
                    and self.ctx.canonical(type_code) not in self.types:
                self._skip(data, pos)
                pos += size
                continue
            if self.encrypted:
                ev = Event(
                    type_code=ENCRYPTED, timestamp=0, server_id=0,
                    body=c.Container(data=data), pos=pos, size=size,
                )
            else:
                ev = decode_event(data, self.ctx, pos=pos, verify=self.verify, file=self.name)
                self._after(ev)
            self.events_read += 1
            yield ev
            pos += size
            # Only a file's closing ROTATE names the next file here; a relay
            # log's copy of the source's ROTATE (artificial, or timestamp 0 in
            # old relay logs) names a file of the source.
            if self.follow and self.follow_rotate and ev.type_code == EventType.ROTATE \
                    and not ev.flags & LOG_EVENT_ARTIFICIAL_F and ev.timestamp \
                    and self.name and not self._has_more(f, pos):
                nxt = self._rotated(ev)
                if nxt is not None:
                    self._switch(nxt)
                    f.close()
                    f = open(nxt, "rb")  # noqa: SIM115
                    pos = 4
                    first = True
                    self._wait_for(f, 0, 4)

    def _skip(self, data: bytes, pos: int) -> None:
        """Check a filtered-out event's framing and CRC without parsing its body."""
        code = self.ctx.canonical(data[TYPE_OFFSET])
        if self.verify and self.ctx.crc and self.ctx.checksum_alg == CHECKSUM_CRC32:
            stored = int.from_bytes(data[-4:], "little")
            if event_crc(data[:-4], code) != stored:
                raise self._err(f"CRC32 0x{event_crc(data[:-4], code):08x} (computed),"
                                f" stored 0x{stored:08x}", pos)
        self.events_read += 1

    @staticmethod
    def _has_more(f: BinaryIO, pos: int) -> bool:
        f.seek(pos)
        return bool(f.read(1))

    def _after(self, ev: Event) -> None:
        if ev.type_code == EventType.FORMAT_DESCRIPTION:
            hl = ev.body.header_length
            if hl < 19:
                raise self._err(f"FDE header_length >= 19, found {hl}", ev.pos,
                                "FORMAT_DESCRIPTION")
            self.in_use = bool(ev.flags & LOG_EVENT_BINLOG_IN_USE_F)
            self.encrypted = False
        elif ev.type_code == EventType.START_ENCRYPTION:
            self.encrypted = True
            ev.warnings.append("events after this one are encrypted")
        self.ctx = context_after(ev, self.ctx)

    def _partial(self, pos: int, found: str) -> None:
        if self.in_use:
            self.truncated_at = pos
            return
        raise self._err(f"file ends inside an event: expected {found}", pos)

    def _rotated(self, ev: Event) -> str | None:
        assert self.name is not None
        name = bytes(ev.body.next_file).decode("utf-8", "replace")
        nxt = os.path.join(os.path.dirname(self.name), os.path.basename(name))
        if os.path.abspath(nxt) == os.path.abspath(self.name):
            return None
        deadline = time.monotonic() + 60
        while not os.path.exists(nxt):
            if time.monotonic() > deadline:
                return None
            time.sleep(self.poll_interval)
        return nxt

    def _switch(self, path: str) -> None:
        self.name = path
        self._source = path
        self.ctx = FormatContext()
        self.in_use = False
        self.encrypted = False


def files_from_index(index: str | os.PathLike[str]) -> list[Path]:
    """The files a binlog index (``binlog.index``, ``relay-log.index``) lists, in order."""
    base = Path(index).parent
    out = []
    with open(index, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                out.append(base / Path(line).name)
    return out


def read_files(
    paths: Iterable[str | os.PathLike[str]], **options: object
) -> Iterator[tuple[BinlogReader, Event]]:
    """Events of several files in order, each with the reader that framed it.

    A path ending in ``.index`` is expanded to the files it lists.
    """
    for path in paths:
        if os.fspath(path).endswith(".index"):
            yield from read_files(files_from_index(path), **options)
            continue
        reader = BinlogReader(path, **options)  # type: ignore[arg-type]
        for ev in reader:
            yield reader, ev
